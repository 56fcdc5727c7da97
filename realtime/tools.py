"""The agent's tools: their JSON schemas (per clinic) and their execution on the server.

The model only proposes a tool call; the server validates the arguments and does the work. Tool calls reach it from
the server's own sideband or phone bridge, or, for a clinic that chose the event-forwarding integration, from the
browser (marked as forwarded on the call; realtime/forwarded.py). Every outcome, including bad arguments, becomes a
function_call_output the model can act on: the agent never falls silent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from calls.conversation import Decision, agent_escalation_raise
from calls.models import Call
from calls.services import IntakeInvalid, call_end, intake_store
from core import jsonsafe
from organizations.models import IntakeField, Organization
from organizations.vocabulary import EscalationLevel

ESCALATION_LEVELS = EscalationLevel.values

_JSON_TYPES: dict[str, dict[str, str]] = {
    IntakeField.FieldType.TEXT: {"type": "string"},
    IntakeField.FieldType.DATE: {"type": "string", "description": "ISO date, YYYY-MM-DD"},
    IntakeField.FieldType.PHONE: {"type": "string", "description": "E.164, e.g. +14155550123"},
    IntakeField.FieldType.BOOLEAN: {"type": "boolean"},
}


def tool_definitions(organization: Organization) -> list[dict]:
    """GA function tools for this clinic (its intake fields shape complete_intake)."""
    properties = {}
    required = []
    for spec in organization.intake_fields.all():
        schema: dict[str, Any] = dict(_JSON_TYPES.get(spec.field_type, {"type": "string"}))
        if spec.field_type == IntakeField.FieldType.CHOICE:
            schema = {"type": "string", "enum": list(spec.choices)}
        description = " ".join(filter(None, [spec.description, schema.pop("description", "")]))
        if description:
            schema["description"] = description
        properties[spec.name] = schema
        if spec.required:
            required.append(spec.name)
    return [
        {
            "type": "function",
            "name": "escalate_call",
            "description": (
                "Escalate this call to clinic staff. Use level emergency for any sign of a medical emergency or "
                "self-harm (after telling the caller to call 911 or 988), urgent for same-day medical concerns, "
                "human when the caller asks for a person, uncertain when you are not sure how to help."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "level": {"type": "string", "enum": ESCALATION_LEVELS},
                    "reason": {"type": "string", "description": "Short reason, e.g. 'chest pain'."},
                    "caller_statement": {"type": "string", "description": "What the caller said, verbatim."},
                },
                "required": ["level", "reason"],
                "additionalProperties": False,
            },
        },
        {
            "type": "function",
            "name": "complete_intake",
            "description": "Save the caller's intake once collected and confirmed. Fix and resend on errors.",
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
        {
            "type": "function",
            "name": "end_call",
            "description": "End the call after saying goodbye.",
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "Why the call is ending."}},
                "required": [],
                "additionalProperties": False,
            },
        },
    ]


@dataclass
class ToolResult:
    output: dict[str, Any]
    ended: bool = False  # the call was ended by this tool
    decision: Decision = field(default_factory=Decision)  # an escalation it raised, and what follows from it

    def output_json(self) -> str:
        return json.dumps(self.output, ensure_ascii=False)


def _error(code: str, message: str, **details: object) -> ToolResult:
    return ToolResult(output={"ok": False, "error": code, "message": message, **details})


def execute_tool(call: Call, name: str, arguments: str) -> ToolResult:
    """Run one tool call proposed by the model. Never raises for bad input: errors are returned to the model."""
    try:
        # Strict and checked (core.jsonsafe): deep nesting is no RecursionError, NUL or a lone surrogate is no
        # database error later.
        args = jsonsafe.loads(arguments or "{}")
    except jsonsafe.UnsafeInput as exc:
        if exc.code == "invalid_json":
            return _error("invalid_arguments", "The arguments were not valid JSON. Call the tool again.")
        return _error("invalid_arguments", exc.message + " Call the tool again.")
    except TypeError:
        return _error("invalid_arguments", "The arguments were not valid JSON. Call the tool again.")
    if not isinstance(args, dict):
        return _error("invalid_arguments", "The arguments must be a JSON object.")

    if name == "escalate_call":
        level = args.get("level")
        if level not in ESCALATION_LEVELS:
            return _error("invalid_level", f"level must be one of {', '.join(ESCALATION_LEVELS)}.")
        decision, guidance = agent_escalation_raise(
            call=call, level=level, reason=str(args.get("reason", "")), statement=str(args.get("caller_statement", ""))
        )
        return ToolResult(output={"ok": True, "escalated": level, "next": guidance}, decision=decision)

    if name == "complete_intake":
        try:
            intake = intake_store(call=call, data=args)
        except IntakeInvalid as exc:
            return _error(
                "intake_invalid",
                "Some fields are missing or wrong. Ask the caller again, then call complete_intake again.",
                fields=exc.result.errors,
            )
        fields = call.organization.intake_fields.all()
        missing = [spec.name for spec in fields if spec.required and spec.name not in intake.data]
        if missing:
            return ToolResult(
                output={
                    "ok": True,
                    "saved": True,
                    "complete": False,
                    "missing": missing,
                    "next": "Ask the caller for the missing fields, then call complete_intake again.",
                }
            )
        return ToolResult(
            output={
                "ok": True,
                "saved": True,
                "complete": True,
                "next": "Tell the caller their details are saved and ask if there is anything else.",
            }
        )

    if name == "end_call":
        ended = call_end(call=call, reason=Call.EndReason.AGENT_ENDED)
        return ToolResult(output={"ok": True, "ended": ended.is_ended}, ended=True)

    return _error("unknown_tool", f"There is no tool named {name!r}. Use escalate_call, complete_intake or end_call.")
