"""The agent's tools: their JSON schemas (per clinic) and their execution on the server.

The model only proposes a tool call; the server validates the arguments and does the work, so a tampered browser
can neither forge an intake nor suppress an escalation. Every outcome, including bad arguments, becomes a
function_call_output the model can act on: the agent never falls silent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.utils import timezone

from calls.models import Call, Escalation
from calls.services import IntakeInvalid, call_end, escalation_create, intake_store
from organizations.models import IntakeField, Organization

ESCALATION_LEVELS = [level.value for level in Escalation.Level]

_JSON_TYPES = {
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
        schema = dict(_JSON_TYPES.get(spec.field_type, {"type": "string"}))
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
    output: dict
    ended: bool = False  # the call was ended by this tool
    escalation: Escalation | None = None
    created_escalation: bool = False
    extra: dict = field(default_factory=dict)

    def output_json(self) -> str:
        return json.dumps(self.output, ensure_ascii=False)


def escalation_guidance(organization: Organization, level: str) -> str:
    """What the agent should say after an escalation, per the clinic's policy and whether it is open."""
    if level == Escalation.Level.EMERGENCY:
        return (
            "Tell the caller clearly: hang up and call 911 right now (or call or text 988 for thoughts of "
            "self-harm). Clinic staff have been alerted. Do not continue the intake."
        )
    if organization.is_open(timezone.now()):
        return (
            "Staff have been alerted. Tell the caller briefly that you are getting a staff member to help them, "
            "and keep collecting their name and callback number in case the line drops."
        )
    policy = organization.after_hours_policy
    if policy == Organization.AfterHoursPolicy.FORWARD_ON_CALL:
        return "The clinic is closed. Tell the caller you are connecting them to the on-call provider."
    if policy == Organization.AfterHoursPolicy.EMERGENCY_ONLY:
        return (
            "The clinic is closed. Tell the caller that if this is an emergency they should call 911, and when "
            "the clinic opens again."
        )
    return (
        "The clinic is closed. Staff have been alerted and will call back when the clinic opens: make sure you "
        "have the caller's name and callback number."
    )


def _error(code: str, message: str, **details) -> ToolResult:
    return ToolResult(output={"ok": False, "error": code, "message": message, **details})


def execute_tool(call: Call, name: str, arguments: str) -> ToolResult:
    """Run one tool call proposed by the model. Never raises for bad input: errors are returned to the model."""
    try:
        args = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        return _error("invalid_arguments", "The arguments were not valid JSON. Call the tool again.")
    if not isinstance(args, dict):
        return _error("invalid_arguments", "The arguments must be a JSON object.")

    if name == "escalate_call":
        level = args.get("level")
        if level not in ESCALATION_LEVELS:
            return _error("invalid_level", f"level must be one of {', '.join(ESCALATION_LEVELS)}.")
        escalation, created = escalation_create(
            call=call,
            level=level,
            source=Escalation.Source.AGENT_TOOL,
            reason=str(args.get("reason", ""))[:300],
            evidence=str(args.get("caller_statement", ""))[:2000],
        )
        guidance = escalation_guidance(call.organization, level)
        return ToolResult(
            output={"ok": True, "escalated": level, "next": guidance},
            escalation=escalation,
            created_escalation=created,
        )

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
