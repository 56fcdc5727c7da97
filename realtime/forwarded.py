"""Server events a browser forwards to POST /api/calls/{id}/events: their shapes, and which of them a caller may send.

Pure helpers (no database). A forwarded event is caller input: it is checked against the GA server-event shapes the
pipeline reads before anything is stored, and only caller lines (input transcription) are accepted from a clinic
that has not chosen the event-forwarding integration; agent lines, tool calls, usage and errors come from the
server's own sideband or phone bridge there.
"""

from __future__ import annotations

from typing import Any

from realtime.pipeline import MAX_ID_CHARS, PIPELINE_EVENT_TYPES

MAX_TEXT_CHARS = 20_000  # one transcript line (as calls.api.serializers.MAX_SEGMENT_CHARS)
MAX_ARGUMENTS_CHARS = 16_000  # one tool call's JSON arguments
MAX_NAME_CHARS = 64
MAX_TOKENS = 10_000_000  # one response's token count; more is not a real response
# Tool calls in one batch: a response proposes a few at most, and each runs server-side work (a batch of 200 was
# the costliest request an anonymous caller could make).
MAX_TOOL_CALLS_PER_BATCH = 16
MAX_OUTPUT_ITEMS = 32  # items in one response.done's output

# Caller lines: what any caller may forward (the caller's own words, triaged like every other caller line).
CALLER_EVENT_TYPES = frozenset(
    {
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
    }
)
# Agent lines, responses, tool calls and errors: only from a clinic with event forwarding, for a call the server
# is not attached to.
AGENT_EVENT_TYPES = PIPELINE_EVENT_TYPES - CALLER_EVENT_TYPES

_ID_FIELDS = ("item_id", "call_id", "response_id", "event_id", "previous_item_id")
_TEXT_FIELDS = {
    "conversation.item.input_audio_transcription.completed": "transcript",
    "response.output_audio_transcript.done": "transcript",
    "response.output_text.done": "text",
}


def event_problems(event: Any) -> dict[str, str]:
    """What is wrong with one forwarded event, by field name ({} when the pipeline can read it). Events of types
    the pipeline does not act on are not looked into (they are skipped)."""
    if not isinstance(event, dict) or event.get("type") not in PIPELINE_EVENT_TYPES:
        return {}
    kind = event["type"]
    problems: dict[str, str] = {}
    for name in _ID_FIELDS:
        value = event.get(name)
        if value is not None and not (isinstance(value, str) and len(value) <= MAX_ID_CHARS):
            problems[name] = f"Expected a string of at most {MAX_ID_CHARS} characters."
    text_field = _TEXT_FIELDS.get(kind)
    if text_field is not None:
        value = event.get(text_field)
        if value is not None and not (isinstance(value, str) and len(value) <= MAX_TEXT_CHARS):
            problems[text_field] = f"Expected a string of at most {MAX_TEXT_CHARS} characters."
    if kind in ("response.created", "response.done"):
        problems.update(_response_problems(event.get("response")))
    if kind in ("error", "conversation.item.input_audio_transcription.failed"):
        error = event.get("error")
        if error is not None and not isinstance(error, dict):
            problems["error"] = "Expected an object."
        elif isinstance(error, dict):
            for name in ("code", "type", "message"):
                value = error.get(name)
                if value is not None and not isinstance(value, str):
                    problems[f"error.{name}"] = "Expected a string."
    if kind in ("response.output_item.done", "conversation.item.added"):
        item = event.get("item")
        if not isinstance(item, dict):
            problems["item"] = "Expected the item object."
        else:
            problems.update(_item_problems(item, "item"))
    if kind == "conversation.item.truncated":
        heard = event.get("audio_end_ms")
        if heard is not None and not (type(heard) is int and 0 <= heard <= MAX_AUDIO_MS):
            problems["audio_end_ms"] = f"Expected a whole number from 0 to {MAX_AUDIO_MS}."
    return problems


MAX_AUDIO_MS = 4 * 3600 * 1000  # longer than any session


def _item_problems(item: dict, prefix: str) -> dict[str, str]:
    """A conversation item as the pipeline reads it (ids, and a function call's name and arguments)."""
    problems: dict[str, str] = {}
    for name in ("id", "call_id", "previous_item_id", "status", "type"):
        value = item.get(name)
        if value is not None and not (isinstance(value, str) and len(value) <= MAX_ID_CHARS):
            problems[f"{prefix}.{name}"] = f"Expected a string of at most {MAX_ID_CHARS} characters."
    if item.get("type") == "function_call":
        if not isinstance(item.get("call_id"), str) or not item["call_id"]:
            problems[f"{prefix}.call_id"] = "Required: the tool call's id."
        tool_name = item.get("name")
        if tool_name is not None and not (isinstance(tool_name, str) and len(tool_name) <= MAX_NAME_CHARS):
            problems[f"{prefix}.name"] = f"Expected a string of at most {MAX_NAME_CHARS} characters."
        arguments = item.get("arguments")
        if arguments is not None and not (isinstance(arguments, str) and len(arguments) <= MAX_ARGUMENTS_CHARS):
            problems[f"{prefix}.arguments"] = f"Expected a JSON string of at most {MAX_ARGUMENTS_CHARS} characters."
    return problems


def _tool_calls_in(event: Any) -> int:
    """Function-call items an event can make the pipeline run (completed items of output_item.done and of a
    response.done's output)."""
    if not isinstance(event, dict):
        return 0
    if event.get("type") == "response.output_item.done":
        item = event.get("item")
        return int(isinstance(item, dict) and item.get("type") == "function_call")
    if event.get("type") == "response.done" and isinstance(event.get("response"), dict):
        output = event["response"].get("output")
        if isinstance(output, list):
            return sum(1 for item in output if isinstance(item, dict) and item.get("type") == "function_call")
    return 0


def batch_problems(events: list[Any]) -> dict[str, str]:
    """What is wrong with a batch as a whole ({} when nothing; the error names the list itself)."""
    tool_calls = sum(_tool_calls_in(event) for event in events)
    if tool_calls > MAX_TOOL_CALLS_PER_BATCH:
        message = f"At most {MAX_TOOL_CALLS_PER_BATCH} tool calls per batch; send the rest in the next one."
        return {"non_field_errors": message}
    return {}


def _response_problems(response: Any) -> dict[str, str]:
    if not isinstance(response, dict):
        return {"response": "Expected the response object."}
    problems = {}
    response_id = response.get("id")
    if response_id is not None and not (isinstance(response_id, str) and len(response_id) <= MAX_ID_CHARS):
        problems["response.id"] = f"Expected a string of at most {MAX_ID_CHARS} characters."
    output = response.get("output")
    if output is not None and not (isinstance(output, list) and len(output) <= MAX_OUTPUT_ITEMS):
        problems["response.output"] = f"Expected a list of at most {MAX_OUTPUT_ITEMS} items."
    elif isinstance(output, list):
        for index, item in enumerate(output):
            if not isinstance(item, dict):
                problems[f"response.output.{index}"] = "Expected an item object."
            else:
                problems.update(_item_problems(item, f"response.output.{index}"))
    usage = response.get("usage")
    if usage is not None and not isinstance(usage, dict):
        problems["response.usage"] = "Expected an object or null."
    elif isinstance(usage, dict):
        for name in ("input_tokens", "output_tokens", "total_tokens"):
            value = usage.get(name)
            if value is not None and not (type(value) is int and 0 <= value <= MAX_TOKENS):
                problems[f"response.usage.{name}"] = f"Expected a whole number from 0 to {MAX_TOKENS}."
    return problems


def is_pipeline_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("type") in PIPELINE_EVENT_TYPES


def is_caller_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("type") in CALLER_EVENT_TYPES


def is_agent_event(event: Any) -> bool:
    """An event only the server's own connection (or a clinic's chosen forwarding integration) may report."""
    return isinstance(event, dict) and event.get("type") in AGENT_EVENT_TYPES
