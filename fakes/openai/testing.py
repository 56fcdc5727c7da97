"""Helpers for tests that talk to the fake: the receptionist's tools, a well-behaved raw WebSocket client, and a strict
check of server events against the official SDK's types (its own parser never raises, so it cannot catch drift)."""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openai.types.realtime import RealtimeToolsConfigParam
    from pydantic import BaseModel

RECEPTIONIST_TOOLS: RealtimeToolsConfigParam = [
    {
        "type": "function",
        "name": "complete_intake",
        "description": "Store the caller's intake once every required field is confirmed.",
        "parameters": {
            "type": "object",
            "properties": {
                "patient_name": {"type": "string"},
                "date_of_birth": {"type": "string", "description": "YYYY-MM-DD"},
                "callback_number": {"type": "string", "description": "E.164"},
                "reason_for_call": {"type": "string"},
                "urgency": {"type": "string", "enum": ["routine", "urgent", "emergency"]},
                "preferred_time": {"type": "string"},
                "is_new_patient": {"type": "boolean"},
                "insurance_provider": {"type": "string"},
            },
            "required": ["patient_name", "date_of_birth", "callback_number", "reason_for_call", "urgency"],
        },
    },
    {
        "type": "function",
        "name": "escalate_call",
        "description": "Hand the call to clinic staff (emergency, urgent, human requested, uncertain).",
        "parameters": {
            "type": "object",
            "properties": {
                "level": {"type": "string", "enum": ["emergency", "urgent", "human", "uncertain"]},
                "reason": {"type": "string"},
                "caller_statement": {"type": "string"},
            },
            "required": ["level", "reason"],
        },
    },
    {
        "type": "function",
        "name": "end_call",
        "description": "End the call.",
        "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]},
    },
]


def receptionist_session(**overrides: Any) -> dict:
    """A GA session like the one the project configures: pcmu both ways, server VAD, transcription, the tools."""
    session = {
        "type": "realtime",
        "instructions": "You are the clinic's receptionist.",
        "audio": {
            "input": {
                "format": {"type": "audio/pcmu"},
                "transcription": {"model": "gpt-realtime-whisper"},
                "turn_detection": {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500},
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
        },
        "tools": RECEPTIONIST_TOOLS,
        "tool_choice": "auto",
    }
    session.update(overrides)
    return session


def default_tool_output(name: str, arguments: dict) -> str:
    return json.dumps({"ok": True, "tool": name})


async def drive_session(
    url: str,
    *,
    api_key: str = "sk-test",
    session: dict | None = None,
    answer: Callable[[str, dict], str] = default_tool_output,
    stop_when: Callable[[list[dict]], bool] | None = None,
    timeout: float = 10.0,
) -> list[dict]:
    """Connect a raw `websockets` client that behaves as the protocol asks: `session.update` first, then for every
    response that called tools, one `function_call_output` per call_id and a single `response.create` after its
    `response.done`. Returns every server event received, until the server closes or `stop_when(events)`."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    events: list[dict] = []
    async with asyncio.timeout(timeout):
        async with connect(url, additional_headers={"Authorization": f"Bearer {api_key}"}) as ws:
            if session is not None:
                await ws.send(json.dumps({"type": "session.update", "session": session}))
            calls: list[dict] = []
            stopping = False
            while True:
                stopping = stopping or bool(stop_when and stop_when(events))
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.05)
                except TimeoutError:
                    if stopping:
                        break  # stopped, and nothing more in flight
                    continue
                except ConnectionClosed:
                    break
                event = json.loads(raw)
                events.append(event)
                # A call is run once its item is finished and completed: arguments.done also comes for cancelled
                # responses (openai SDK docstring), with arguments that may be cut off.
                item = event.get("item") or {}
                if event["type"] == "response.output_item.done" and item.get("type") == "function_call":
                    if item.get("status") == "completed":
                        calls.append(item)
                elif event["type"] == "response.done" and calls:
                    for call in calls:
                        output = answer(call["name"], json.loads(call["arguments"]))
                        item = {"type": "function_call_output", "call_id": call["call_id"], "output": output}
                        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
                    calls = []
                    await ws.send(json.dumps({"type": "response.create"}))
    return events


@cache
def _server_event_models() -> dict[str, type[BaseModel]]:
    from openai.types.realtime import realtime_server_event

    union = typing.get_args(realtime_server_event.RealtimeServerEvent)[0]
    models: dict[str, type[BaseModel]] = {}
    for model in typing.get_args(union):
        (name,) = typing.get_args(model.model_fields["type"].annotation)
        models[name] = model
    return models


def validate_server_event(event: dict[str, Any]) -> BaseModel:
    """Validate one server event against the openai SDK's model for its type (pydantic validation, not the SDK's
    lenient construct); raises KeyError for a type the SDK does not know and ValidationError for a wrong shape."""
    model = _server_event_models()[event["type"]]
    return model.model_validate(event)
