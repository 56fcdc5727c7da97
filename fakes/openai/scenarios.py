"""Scripted callers: what the caller says, turn by turn, and what the fake "model" answers and which tools it calls.

A scenario is a YAML (or JSON) file; the shipped ones live in `fakes/scenarios/`. See README.md for the format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_REPLY = "Is there anything else I can help you with?"
DEFAULT_TOOL_ACK = "Okay, that's done."


class ScenarioError(ValueError):
    """A scenario file that cannot be played; the message names the file and the offending entry."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict


@dataclass(frozen=True)
class AgentReply:
    """One model response: an optional spoken line, then optional tool calls; `then` is what the model says in the
    response the client requests after answering every tool call (default: the scenario's `tool_ack`)."""

    say: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    then: AgentReply | None = None


@dataclass(frozen=True)
class Turn:
    caller: str
    agent: AgentReply
    delay: float = 0.5  # seconds of silence before the caller speaks (times the server's time_scale)
    language: str | None = None  # reported on the input transcription (`languages`)
    interrupt: bool = False  # speak `delay` after the previous reply STARTS: a barge-in
    # `interrupt: playback`: speak `delay` after the previous reply's response is DONE, over its audio still playing
    # on the caller's side (WebRTC/SIP: the model generates faster than real time), so its tool calls all ran.
    over_playback: bool = False
    # Input transcription is asynchronous ("may come before or after the Response events", openai SDK docstring of
    # conversation.item.input_audio_transcription.completed): send it this many seconds after the turn was committed.
    transcript_delay: float = 0.0
    # conversation.item.input_audio_transcription.failed instead of .completed for this turn (the error's type and
    # code are a guess: the SDK types them as free strings).
    transcription_failed: bool = False
    # SIP calls: keypad keys the caller presses (input_audio_buffer.dtmf_event_received, one event per key) before
    # saying `caller` (which may then be empty: a press alone).
    dtmf: str = ""


@dataclass(frozen=True)
class Expectations:
    tools_declared: tuple[str, ...] = ()  # must be in the session's tools before the first turn plays


@dataclass(frozen=True)
class Scenario:
    name: str
    turns: tuple[Turn, ...]
    description: str = ""
    language: str = "en"
    greeting: str | None = None  # said by the first response nobody scripted (a server-initiated greeting)
    default_reply: str = DEFAULT_REPLY
    tool_ack: str = DEFAULT_TOOL_ACK
    start_after: float = 1.0  # playback starts at the first session.update, or this many real seconds after connect
    hangup_after: float | None = 1.0  # after the last reply, the caller hangs up (sideband calls); null = never
    expect: Expectations = field(default_factory=Expectations)
    # The Nth response the client requests (response.create) goes wrong as given: {status: failed, code: ...} or
    # {status: incomplete, reason: max_output_tokens | content_filter}; null entries succeed.
    response_failures: tuple[dict | None, ...] = ()
    source: str = ""

    def tool_calls(self) -> list[ToolCall]:
        """Every tool call the script makes, in order (including follow-ups)."""
        calls: list[ToolCall] = []
        for turn in self.turns:
            reply: AgentReply | None = turn.agent
            while reply is not None:
                calls.extend(reply.tool_calls)
                reply = reply.then
        return calls


def _fail(source: str, where: str, message: str) -> ScenarioError:
    return ScenarioError(f"{source}: {where}: {message}")


def _reply(data: Any, source: str, where: str) -> AgentReply:
    if data is None:
        return AgentReply()
    if isinstance(data, str):
        return AgentReply(say=data)
    if not isinstance(data, dict):
        raise _fail(source, where, "expected a line of text or a mapping with say/tool_calls/then")
    unknown = set(data) - {"say", "tool_calls", "then"}
    if unknown:
        raise _fail(source, where, f"unknown keys {sorted(unknown)}")
    say = data.get("say")
    if say is not None and not isinstance(say, str):
        raise _fail(source, f"{where}.say", "expected text")
    calls = []
    for i, entry in enumerate(data.get("tool_calls") or []):
        cwhere = f"{where}.tool_calls[{i}]"
        if isinstance(entry, dict) and "name" in entry:
            name, arguments = entry["name"], entry.get("arguments", {})
        elif isinstance(entry, dict) and len(entry) == 1:
            ((name, arguments),) = entry.items()  # shorthand: {complete_intake: {...}}
        else:
            raise _fail(source, cwhere, "expected {name: ..., arguments: {...}} or {tool_name: {...}}")
        if not isinstance(name, str) or not isinstance(arguments, dict | None):
            raise _fail(source, cwhere, "tool name must be text and arguments a mapping")
        calls.append(ToolCall(name=name, arguments=arguments or {}))
    then = _reply(data["then"], source, f"{where}.then") if data.get("then") is not None else None
    if then is not None and not calls:
        raise _fail(source, f"{where}.then", "'then' follows tool calls; this reply makes none")
    return AgentReply(say=say, tool_calls=tuple(calls), then=then)


def scenario_from_dict(data: Any, *, source: str = "<dict>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping at the top level")
    known = {
        "name",
        "description",
        "language",
        "greeting",
        "default_reply",
        "tool_ack",
        "start_after",
        "hangup_after",
        "expect",
        "turns",
        "response_failures",
    }
    unknown = set(data) - known
    if unknown:
        raise _fail(source, "top level", f"unknown keys {sorted(unknown)}")
    turns_data = data.get("turns")
    if not isinstance(turns_data, list) or not turns_data:
        raise _fail(source, "turns", "expected a non-empty list of caller turns")
    turns = []
    for i, entry in enumerate(turns_data):
        where = f"turns[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("caller", "" if "dtmf" in entry else None), str):
            raise _fail(source, where, "each turn needs 'caller' text (or 'dtmf' keys)")
        dtmf = entry.get("dtmf", "")
        if not isinstance(dtmf, str) or any(key not in "0123456789*#ABCD" for key in dtmf):
            raise _fail(source, f"{where}.dtmf", "expected keypad keys (0-9, *, #, A-D)")
        unknown = set(entry) - {
            "caller",
            "agent",
            "delay",
            "language",
            "interrupt",
            "transcript_delay",
            "transcription_failed",
            "dtmf",
        }
        interrupt = entry.get("interrupt", False)
        if interrupt not in (True, False, "playback"):
            raise _fail(source, f"{where}.interrupt", "expected true, false or 'playback'")
        if unknown:
            raise _fail(source, where, f"unknown keys {sorted(unknown)}")
        delay = entry.get("delay", 0.5)
        if not isinstance(delay, int | float) or delay < 0:
            raise _fail(source, f"{where}.delay", "expected a number of seconds >= 0")
        transcript_delay = entry.get("transcript_delay", 0.0)
        if not isinstance(transcript_delay, int | float) or transcript_delay < 0:
            raise _fail(source, f"{where}.transcript_delay", "expected a number of seconds >= 0")
        turns.append(
            Turn(
                caller=entry.get("caller", ""),
                agent=_reply(entry.get("agent"), source, f"{where}.agent"),
                delay=float(delay),
                language=entry.get("language"),
                interrupt=bool(interrupt),
                over_playback=interrupt == "playback",
                transcript_delay=float(transcript_delay),
                transcription_failed=bool(entry.get("transcription_failed", False)),
                dtmf=dtmf,
            )
        )
    expect = data.get("expect") or {}
    if not isinstance(expect, dict) or set(expect) - {"tools_declared"}:
        raise _fail(source, "expect", "only 'tools_declared' is supported")
    hangup_after = data.get("hangup_after", 1.0)
    failures = data.get("response_failures") or []
    if not isinstance(failures, list):
        raise _fail(source, "response_failures", "expected a list")
    for i, spec in enumerate(failures):
        if spec is not None and (not isinstance(spec, dict) or spec.get("status") not in ("failed", "incomplete")):
            raise _fail(source, f"response_failures[{i}]", "expected null or {status: failed | incomplete, ...}")
    return Scenario(
        name=str(data.get("name") or Path(source).stem),
        description=str(data.get("description", "")).strip(),
        language=str(data.get("language", "en")),
        turns=tuple(turns),
        greeting=data.get("greeting"),
        default_reply=str(data.get("default_reply", DEFAULT_REPLY)),
        tool_ack=str(data.get("tool_ack", DEFAULT_TOOL_ACK)),
        start_after=float(data.get("start_after", 1.0)),
        hangup_after=None if hangup_after is None else float(hangup_after),
        expect=Expectations(tools_declared=tuple(expect.get("tools_declared", ()))),
        response_failures=tuple(failures),
        source=source,
    )


def load_scenario(name_or_path: str | Path | Scenario) -> Scenario:
    """A shipped scenario by name (`routine_booking`) or any YAML/JSON file by path."""
    if isinstance(name_or_path, Scenario):
        return name_or_path
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIOS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        names = ", ".join(s.name for s in list_scenarios())
        raise ScenarioError(f"No scenario {str(name_or_path)!r}. Shipped scenarios: {names}.")
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return scenario_from_dict(data, source=str(path))


def list_scenarios() -> list[Scenario]:
    """The shipped scenarios, by name."""
    return sorted(
        (
            scenario_from_dict(yaml.safe_load(p.read_text(encoding="utf-8")), source=str(p))
            for p in SCENARIOS_DIR.glob("*.yaml")
        ),
        key=lambda s: s.name,
    )
