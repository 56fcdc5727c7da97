"""`POST /v1/responses` of the fake: the Responses API with structured output (`text.format` json_schema), answered
deterministically offline.

The "model" reads the request's text and fills the given JSON schema from it: a string property whose name says
`summary` gets a sentence counting the lines and quoting the caller's first one, `reason` the caller's first line,
a boolean whether the text mentions something to act on (a call back, an appointment, an emergency...), an enum its
first value, any other string "". Same request, same answer. Shapes: the `openai` SDK 3.57
(`types/responses/response.py`, `response_create_params.py`, `response_usage.py`); docs/fakes.md names the rest.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from .protocol import ProtocolError, invalid_type, invalid_value, missing_parameter, new_id, unknown_parameter

# The body fields the SDK's ResponseCreateParams declares that this fake reads or accepts (others: unknown_parameter).
KNOWN_FIELDS = frozenset(
    {
        "access_programs",
        "background",
        "background_options",
        "context_management",
        "conversation",
        "image",
        "moderation",
        "prompt_cache_options",
        "prompt_cache_retention",
        "stream_options",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    }
)
FOLLOW_UP_WORDS = re.compile(
    r"\b(call (?:me |them )?back|callback|appointment|book|reschedul\w*|refill|prescription|emergency|urgent|"
    r"voicemail|message|question|results?)\b",
    re.IGNORECASE,
)
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _input_text(body: dict) -> str:
    """The text of `input` (a string, or message items with string or input_text content)."""
    value = body.get("input")
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise invalid_type("input", "a string or an array", value)
    parts: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid_type(f"input[{index}]", "an object", item)
        content = item.get("content")
        if item.get("type", "message") != "message" or item.get("role") not in ("user", "system", "developer"):
            raise invalid_value(f"input[{index}].role", item.get("role"), ("user", "system", "developer"))
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "input_text"]
        else:
            raise missing_parameter(f"input[{index}].content")
    return "\n".join(parts)


def _check_strict_schema(schema: Any, path: str) -> None:
    """Strict mode's rules (OpenAI structured-outputs guide): every object lists all its properties as required and
    sets additionalProperties false."""
    if not isinstance(schema, dict):
        raise invalid_type(path, "an object", schema)
    if schema.get("type") == "object":
        properties = schema.get("properties") or {}
        missing = [name for name in properties if name not in (schema.get("required") or [])]
        if missing:
            raise ProtocolError(
                f"Invalid schema for response_format 'call_summary': In context=(), 'required' is required to be "
                f"supplied and to be an array including every key in properties. Missing '{missing[0]}'.",
                code="invalid_json_schema",
                param="text.format.schema",
            )
        if schema.get("additionalProperties") is not False:
            raise ProtocolError(
                "Invalid schema for response_format 'call_summary': In context=(), 'additionalProperties' is "
                "required to be supplied and to be false.",
                code="invalid_json_schema",
                param="text.format.schema",
            )
        for name, sub in properties.items():
            _check_strict_schema(sub, f"{path}.properties.{name}")


def _text_format(body: dict) -> dict:
    text = body.get("text", {"format": {"type": "text"}})
    if not isinstance(text, dict):
        raise invalid_type("text", "an object", text)
    fmt = text.get("format", {"type": "text"})
    if not isinstance(fmt, dict):
        raise invalid_type("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind not in ("text", "json_schema", "json_object"):
        raise invalid_value("text.format.type", kind, ("text", "json_schema", "json_object"))
    if kind == "json_schema":
        if "name" not in fmt:
            raise missing_parameter("text.format.name")
        if not isinstance(fmt["name"], str) or not _SCHEMA_NAME.match(fmt["name"]):
            raise invalid_value("text.format.name", fmt["name"])
        if "schema" not in fmt:
            raise missing_parameter("text.format.schema")
        if fmt.get("strict"):
            _check_strict_schema(fmt["schema"], "text.format.schema")
    return fmt


def _caller_lines(text: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Caller:")]


def _fill(schema: dict, text: str, name: str = "") -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        return {key: _fill(sub, text, key) for key, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind == "boolean":
        return bool(FOLLOW_UP_WORDS.search(text))
    if kind in ("integer", "number"):
        return len(text.splitlines())
    callers = _caller_lines(text)
    first = callers[0] if callers else ""
    if "summary" in name:
        lines = sum(1 for line in text.splitlines() if line.startswith(("Caller:", "Receptionist:")))
        quoted = f' The caller said: "{first[:120]}"' if first else ""
        return f"A call of {lines} lines with the clinic's receptionist.{quoted}"
    if "reason" in name:
        return first[:120]
    return ""


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)  # ~4 characters a token (a guess, as for the Realtime usage)


def create_response(body: Any, *, now: float | None = None) -> dict:
    """Answer one POST /v1/responses body (raises ProtocolError for what the API refuses)."""
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    for key in body:
        if key not in KNOWN_FIELDS:
            raise unknown_parameter(key)
    model = body.get("model")
    if model is None:
        raise missing_parameter("model")
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    if body.get("stream"):
        raise invalid_value("stream", True)  # not modelled: this fake answers whole responses only
    fmt = _text_format(body)
    instructions = body.get("instructions")
    text = _input_text(body)
    if fmt["type"] == "json_schema":
        output = json.dumps(_fill(fmt["schema"], text), ensure_ascii=False)
    elif fmt["type"] == "json_object":
        output = json.dumps({"text": text[:200]})
    else:
        output = f"Summary: {text[:200]}"
    created = int(now if now is not None else time.time())
    input_tokens = _tokens((instructions or "") + text)
    reasoning_tokens = 64
    output_tokens = _tokens(output) + reasoning_tokens
    return {
        "id": new_id("resp", 48),
        "object": "response",
        "created_at": created,
        "status": "completed",
        "background": False,
        "completed_at": created,
        "error": None,
        "incomplete_details": None,
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": model,
        # A reasoning model's answer starts with a reasoning item: output[0] is not the message.
        "output": [
            {"id": new_id("rs", 48), "type": "reasoning", "summary": []},
            {
                "id": new_id("msg", 48),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": output, "annotations": [], "logprobs": []}],
            },
        ],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "reasoning": {"effort": "medium", "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": 1.0,
        "text": {"format": fmt, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }
