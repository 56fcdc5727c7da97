"""What the OpenAI Realtime GA API accepts, and how it says no.

Pure helpers with no I/O: id generation, the standard OpenAI error shape, validation of GA session objects
(client_secrets, /realtime/calls and `session.update`), conversation items and `response.create` parameters, and the
effective-session merge. Messages and codes follow the real API's wording (`Unknown parameter: 'session.voice'.`,
`integer_below_min_value`, ...) so the code under test sees what production sees.
"""

from __future__ import annotations

import contextvars
import copy
import datetime as dt
import re
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

# Models the GA endpoints accept (openai 3.57 `RealtimeSessionCreateRequest.model`).
REALTIME_MODELS = (
    "gpt-realtime-2",
    "gpt-realtime-2.1",
    "gpt-realtime-2.1-mini",
    "gpt-realtime-1.5",
    "gpt-realtime",
    "gpt-realtime-2025-08-28",
    "gpt-realtime-mini",
    "gpt-realtime-mini-2025-10-06",
    "gpt-realtime-mini-2025-12-15",
    "gpt-audio-1.5",
    "gpt-audio-mini",
    "gpt-audio-mini-2025-10-06",
    "gpt-audio-mini-2025-12-15",
    "gpt-4o-realtime-preview",
    "gpt-4o-realtime-preview-2024-10-01",
    "gpt-4o-realtime-preview-2024-12-17",
    "gpt-4o-realtime-preview-2025-06-03",
    "gpt-4o-mini-realtime-preview",
    "gpt-4o-mini-realtime-preview-2024-12-17",
)
DEFAULT_MODEL = "gpt-realtime-2.1"
TRANSCRIPTION_MODELS = (
    "whisper-1",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-realtime-whisper",
)
# Announced shutdown dates (openai 3.57 docstrings of `RealtimeSessionCreateRequest.model` and
# `AudioTranscription.model`): from that day (UTC) the API refuses the model as it refuses every retired one.
SHUTDOWN_DATES: dict[str, dt.date] = {
    **dict.fromkeys(
        (
            "gpt-realtime",
            "gpt-realtime-2025-08-28",
            "gpt-realtime-mini",
            "gpt-realtime-mini-2025-12-15",
            "gpt-audio-mini",
            "gpt-audio-mini-2025-12-15",
        ),
        dt.date(2027, 1, 20),
    ),
    **dict.fromkeys(
        (
            "whisper-1",
            "gpt-4o-mini-transcribe",
            "gpt-4o-mini-transcribe-2025-12-15",
            "gpt-4o-transcribe",
            "gpt-4o-transcribe-diarize",
        ),
        dt.date(2027, 2, 26),
    ),
}
# Transcription options the SDK says only some models take (`AudioTranscription` field docs); the fake refuses
# them elsewhere (a guess: the docs say "supported by", not what the server answers otherwise).
TRANSCRIPTION_OPTION_MODELS: dict[str, tuple[str, ...]] = {
    "keywords": ("gpt-transcribe", "gpt-live-transcribe"),
    "languages": ("gpt-transcribe", "gpt-live-transcribe"),
    "delay": ("gpt-realtime-whisper",),
    "prompt": tuple(m for m in TRANSCRIPTION_MODELS if m not in ("gpt-realtime-whisper", "gpt-4o-transcribe-diarize")),
}
# The fake's clock (seconds since the epoch) for the validation below: the server sets it to its own `clock` for the
# requests and sockets it serves, so a test can move the fake past a shutdown date.
CLOCK: contextvars.ContextVar[Callable[[], float]] = contextvars.ContextVar("fake_openai_clock", default=time.time)
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
AUDIO_FORMAT_TYPES = ("audio/pcm", "audio/pcmu", "audio/pcma")
DEFAULT_INSTRUCTIONS = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. Act like a human, but remember that "
    "you aren't a human and that you can't do human things in the real world."
)
SERVER_VAD_DEFAULTS = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
SEMANTIC_VAD_DEFAULTS = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}

# Beta (shut down) session fields and where GA moved them; the message tells a developer what to change.
BETA_SESSION_FIELDS = {
    "voice": "session.audio.output.voice",
    "modalities": "session.output_modalities",
    "input_audio_format": "session.audio.input.format",
    "output_audio_format": "session.audio.output.format",
    "turn_detection": "session.audio.input.turn_detection",
    "input_audio_transcription": "session.audio.input.transcription",
    "input_audio_noise_reduction": "session.audio.input.noise_reduction",
    "temperature": None,
    "max_response_output_tokens": "session.max_output_tokens",
    "speed": "session.audio.output.speed",
    "client_secret": "expires_after (top level of the request)",
}
BETA_RESPONSE_FIELDS = ("modalities", "voice", "output_audio_format", "temperature", "max_response_output_tokens")
BETA_CODE = "beta_api_shape_disabled"

CLIENT_EVENT_FIELDS: dict[str, frozenset[str]] = {
    "session.update": frozenset({"session"}),
    "input_audio_buffer.append": frozenset({"audio"}),
    "input_audio_buffer.commit": frozenset(),
    "input_audio_buffer.clear": frozenset(),
    "conversation.item.create": frozenset({"item", "previous_item_id"}),
    "conversation.item.truncate": frozenset({"item_id", "content_index", "audio_end_ms"}),
    "conversation.item.delete": frozenset({"item_id"}),
    "conversation.item.retrieve": frozenset({"item_id"}),
    "response.create": frozenset({"response"}),
    "response.cancel": frozenset({"response_id"}),
    "output_audio_buffer.clear": frozenset(),
}
MAX_APPEND_BYTES = 15 * 1024 * 1024
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ALPHABET = string.ascii_letters + string.digits


class ProtocolError(Exception):
    """A request the real API refuses: becomes an HTTP error body or an `error` server event."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type: str = "invalid_request_error",  # the wire field is called type
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.type = type
        self.status = status

    def body(self) -> dict:
        """The standard OpenAI REST error body."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def event(self, *, client_event_id: str | None) -> dict:
        """The in-session `error` server event (the connection stays open)."""
        return {
            "type": "error",
            "event_id": new_id("event"),
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
                "event_id": client_event_id,
            },
        }


def new_id(prefix: str, length: int = 22) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_call_id() -> str:
    """A WebRTC/SIP call id as the API mints them (`rtc_` + hex)."""
    return "rtc_" + secrets.token_hex(16)


# --- typed checks with the real API's wording -----------------------------------------------------------------------

_JSON_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _got(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), "an unsupported value")


def unknown_parameter(path: str) -> ProtocolError:
    return ProtocolError(f"Unknown parameter: '{path}'.", code="unknown_parameter", param=path)


def missing_parameter(path: str) -> ProtocolError:
    return ProtocolError(f"Missing required parameter: '{path}'.", code="missing_required_parameter", param=path)


def invalid_type(path: str, expected: str, value: Any) -> ProtocolError:
    return ProtocolError(
        f"Invalid type for '{path}': expected {expected}, but got {_got(value)} instead.",
        code="invalid_type",
        param=path,
    )


def invalid_value(path: str, value: Any, allowed: tuple | list | None = None) -> ProtocolError:
    shown = value if isinstance(value, str) else repr(value)
    message = f"Invalid value: '{shown}'."
    if allowed:
        message += " Supported values are: " + ", ".join(f"'{a}'" for a in allowed) + "."
    return ProtocolError(message, code="invalid_value", param=path)


def retired_model(model: str) -> ProtocolError:
    """A model past its shutdown date, as the API refuses one (404 `model_not_found`)."""
    return ProtocolError(
        f"The model `{model}` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations",
        code="model_not_found",
        status=404,
    )


def check_not_retired(model: str, *, now: float | None = None) -> str:
    """Refuse `model` once its announced shutdown date has come by the fake's clock (CLOCK unless `now` is given)."""
    shutdown = SHUTDOWN_DATES.get(model)
    if shutdown is not None:
        at = CLOCK.get()() if now is None else now
        if dt.datetime.fromtimestamp(at, dt.UTC).date() >= shutdown:
            raise retired_model(model)
    return model


def unsupported_parameter(path: str) -> ProtocolError:
    return ProtocolError(
        f"Unsupported parameter: '{path}' is not supported with this model.", code="unsupported_parameter", param=path
    )


def _expect_object(path: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise invalid_type(path, "an object", value)
    return value


def _expect_str(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_type(path, "a string", value)
    return value


def _expect_bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid_type(path, "a boolean", value)
    return value


def _expect_int(path: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(path, "an integer", value)
    if lo is not None and value < lo:
        raise ProtocolError(
            f"Invalid '{path}': integer below minimum value. Expected a value >= {lo}, but got {value} instead.",
            code="integer_below_min_value",
            param=path,
        )
    if hi is not None and value > hi:
        raise ProtocolError(
            f"Invalid '{path}': integer above maximum value. Expected a value <= {hi}, but got {value} instead.",
            code="integer_above_max_value",
            param=path,
        )
    return value


def _expect_number(path: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(path, "a decimal", value)
    if value < lo:
        raise ProtocolError(
            f"Invalid '{path}': decimal below minimum value. Expected a value >= {lo}, but got {value} instead.",
            code="decimal_below_min_value",
            param=path,
        )
    if value > hi:
        raise ProtocolError(
            f"Invalid '{path}': decimal above maximum value. Expected a value <= {hi}, but got {value} instead.",
            code="decimal_above_max_value",
            param=path,
        )
    return value


def _expect_choice(path: str, value: Any, allowed: tuple) -> str:
    _expect_str(path, value)
    if value not in allowed:
        raise invalid_value(path, value, allowed)
    return value


def _only_keys(path: str, obj: dict, allowed: set[str] | frozenset[str]) -> None:
    for key in obj:
        if key not in allowed:
            raise unknown_parameter(f"{path}.{key}")


# --- GA session -----------------------------------------------------------------------------------------------------

_SESSION_KEYS = frozenset(
    {
        "type",
        "model",
        "instructions",
        "output_modalities",
        "audio",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "max_output_tokens",
        "truncation",
        "tracing",
        "prompt",
        "include",
    }
)


def beta_shape_error(path: str, moved_to: str | None) -> ProtocolError:
    """A beta field after the beta shutdown: `beta_api_shape_disabled`, saying where GA moved it."""
    where = f" Use '{moved_to}' instead." if moved_to else " It is not supported by the GA Realtime API."
    return ProtocolError(
        f"The Realtime API beta interface has been shut down: '{path}' is a beta parameter.{where} "
        "See the GA migration guide.",
        code=BETA_CODE,
        param=path,
    )


def validate_audio_format(path: str, value: Any) -> dict:
    fmt = _expect_object(path, value)
    _only_keys(path, fmt, {"type", "rate"})
    if "type" not in fmt:
        raise missing_parameter(f"{path}.type")
    kind = _expect_choice(f"{path}.type", fmt["type"], AUDIO_FORMAT_TYPES)
    if kind == "audio/pcm":
        rate = fmt.get("rate", 24000)
        if _expect_int(f"{path}.rate", rate) != 24000:
            raise invalid_value(f"{path}.rate", rate, (24000,))
        return {"type": kind, "rate": 24000}
    if "rate" in fmt:
        raise unknown_parameter(f"{path}.rate")
    return {"type": kind}


def _validate_turn_detection(path: str, value: Any) -> dict | None:
    if value is None:
        return None
    td = _expect_object(path, value)
    if "type" not in td:
        raise missing_parameter(f"{path}.type")
    kind = _expect_choice(f"{path}.type", td["type"], ("server_vad", "semantic_vad"))
    if kind == "server_vad":
        _only_keys(path, td, set(SERVER_VAD_DEFAULTS))
        if "threshold" in td:
            _expect_number(f"{path}.threshold", td["threshold"], 0.0, 1.0)
        for key in ("prefix_padding_ms", "silence_duration_ms"):
            if key in td:
                _expect_int(f"{path}.{key}", td[key], 0)
        if td.get("idle_timeout_ms") is not None:
            _expect_int(f"{path}.idle_timeout_ms", td["idle_timeout_ms"], 5000, 30000)
        result = {**SERVER_VAD_DEFAULTS, **td}
    else:
        _only_keys(path, td, set(SEMANTIC_VAD_DEFAULTS))
        if "eagerness" in td:
            _expect_choice(f"{path}.eagerness", td["eagerness"], ("low", "medium", "high", "auto"))
        result = {**SEMANTIC_VAD_DEFAULTS, **td}
    for key in ("create_response", "interrupt_response"):
        _expect_bool(f"{path}.{key}", result[key])
    return result


def _validate_transcription(path: str, value: Any) -> dict | None:
    if value is None:
        return None
    tr = _expect_object(path, value)
    _only_keys(path, tr, {"model", "language", "languages", "keywords", "prompt", "delay"})
    if "model" in tr:
        check_not_retired(_expect_choice(f"{path}.model", tr["model"], TRANSCRIPTION_MODELS))
        for option, models in TRANSCRIPTION_OPTION_MODELS.items():
            if option in tr and tr["model"] not in models:
                raise unsupported_parameter(f"{path}.{option}")
    for key in ("language", "prompt"):
        if key in tr:
            _expect_str(f"{path}.{key}", tr[key])
    for key in ("languages", "keywords"):
        if key in tr and not (isinstance(tr[key], list) and all(isinstance(x, str) for x in tr[key])):
            raise invalid_type(f"{path}.{key}", "an array of strings", tr[key])
    if "delay" in tr:
        _expect_choice(f"{path}.delay", tr["delay"], ("minimal", "low", "medium", "high", "xhigh"))
    return dict(tr)


def _validate_audio(path: str, value: Any) -> dict:
    audio = _expect_object(path, value)
    _only_keys(path, audio, {"input", "output"})
    out: dict = {}
    if "input" in audio:
        inp = _expect_object(f"{path}.input", audio["input"])
        _only_keys(f"{path}.input", inp, {"format", "transcription", "turn_detection", "noise_reduction"})
        clean: dict = {}
        if "format" in inp:
            clean["format"] = validate_audio_format(f"{path}.input.format", inp["format"])
        if "transcription" in inp:
            clean["transcription"] = _validate_transcription(f"{path}.input.transcription", inp["transcription"])
        if "turn_detection" in inp:
            clean["turn_detection"] = _validate_turn_detection(f"{path}.input.turn_detection", inp["turn_detection"])
        if "noise_reduction" in inp:
            nr = inp["noise_reduction"]
            if nr is not None:
                nr = _expect_object(f"{path}.input.noise_reduction", nr)
                _only_keys(f"{path}.input.noise_reduction", nr, {"type", "strength"})
                if "type" in nr:
                    _expect_choice(f"{path}.input.noise_reduction.type", nr["type"], ("near_field", "far_field"))
            clean["noise_reduction"] = nr
        out["input"] = clean
    if "output" in audio:
        outp = _expect_object(f"{path}.output", audio["output"])
        _only_keys(f"{path}.output", outp, {"format", "voice", "speed"})
        clean = {}
        if "format" in outp:
            clean["format"] = validate_audio_format(f"{path}.output.format", outp["format"])
        if "voice" in outp:
            voice = outp["voice"]
            if isinstance(voice, dict):
                _only_keys(f"{path}.output.voice", voice, {"id"})
                _expect_str(f"{path}.output.voice.id", voice.get("id"))
            else:
                _expect_choice(f"{path}.output.voice", voice, VOICES)
            clean["voice"] = voice
        if "speed" in outp:
            clean["speed"] = _expect_number(f"{path}.output.speed", outp["speed"], 0.25, 1.5)
        out["output"] = clean
    return out


def validate_tools(path: str, value: Any) -> list:
    if not isinstance(value, list):
        raise invalid_type(path, "an array", value)
    names: set[str] = set()
    for i, tool in enumerate(value):
        tpath = f"{path}[{i}]"
        _expect_object(tpath, tool)
        kind = tool.get("type", "function")
        _expect_choice(f"{tpath}.type", kind, ("function", "mcp"))
        if kind == "mcp":
            continue  # MCP tools are not modelled beyond their presence
        _only_keys(tpath, tool, {"type", "name", "description", "parameters"})
        if "name" not in tool:
            raise missing_parameter(f"{tpath}.name")
        name = _expect_str(f"{tpath}.name", tool["name"])
        if not _TOOL_NAME.match(name):
            raise ProtocolError(
                f"Invalid '{tpath}.name': string does not match pattern. Expected a string that matches the pattern "
                "'^[a-zA-Z0-9_-]+$'.",
                code="invalid_value",
                param=f"{tpath}.name",
            )
        if name in names:
            raise ProtocolError(f"Duplicate tool name: '{name}'.", code="invalid_value", param=f"{tpath}.name")
        names.add(name)
        if "description" in tool:
            _expect_str(f"{tpath}.description", tool["description"])
        if "parameters" in tool:
            _expect_object(f"{tpath}.parameters", tool["parameters"])
    return copy.deepcopy(value)


def validate_tool_choice(path: str, value: Any) -> Any:
    if isinstance(value, str):
        return _expect_choice(path, value, ("none", "auto", "required"))
    choice = _expect_object(path, value)
    kind = _expect_choice(f"{path}.type", choice.get("type"), ("function", "mcp"))
    if kind == "function":
        _only_keys(path, choice, {"type", "name"})
        _expect_str(f"{path}.name", choice.get("name"))
    return dict(choice)


def validate_max_output_tokens(path: str, value: Any) -> int | str:
    if value == "inf":
        return value
    return _expect_int(path, value, 1, 4096)


def validate_output_modalities(path: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise invalid_type(path, "an array", value)
    for i, mode in enumerate(value):
        _expect_choice(f"{path}[{i}]", mode, ("audio", "text"))
    if len(value) != 1:
        raise ProtocolError(
            f"Invalid '{path}': exactly one of 'audio' or 'text' is supported.", code="invalid_value", param=path
        )
    return list(value)


def validate_session(value: Any, *, path: str = "session", beta_code: str = "unknown_parameter") -> dict:
    """Validate a GA realtime session object; returns the cleaned partial session (only fields that were given).

    `beta_code` picks how beta field names are refused: REST endpoints answer `beta_api_shape_disabled`, the
    in-session `session.update` answers `unknown_parameter` (as the GA WebSocket does).
    """
    session = _expect_object(path, value)
    for key in session:
        if key in BETA_SESSION_FIELDS:
            if beta_code == BETA_CODE:
                raise beta_shape_error(f"{path}.{key}", BETA_SESSION_FIELDS[key])
            raise unknown_parameter(f"{path}.{key}")
    _only_keys(path, session, _SESSION_KEYS)
    if "type" not in session:
        raise missing_parameter(f"{path}.type")
    kind = _expect_str(f"{path}.type", session["type"])
    if kind == "transcription":
        raise ProtocolError(
            "Transcription sessions are not supported by this server.", code="invalid_value", param=f"{path}.type"
        )
    _expect_choice(f"{path}.type", kind, ("realtime", "transcription"))
    clean: dict = {"type": "realtime"}
    if "model" in session:
        clean["model"] = check_not_retired(_expect_choice(f"{path}.model", session["model"], REALTIME_MODELS))
    if "instructions" in session:
        clean["instructions"] = _expect_str(f"{path}.instructions", session["instructions"])
    if "output_modalities" in session:
        clean["output_modalities"] = validate_output_modalities(
            f"{path}.output_modalities", session["output_modalities"]
        )
    if "audio" in session:
        clean["audio"] = _validate_audio(f"{path}.audio", session["audio"])
    if "tools" in session:
        clean["tools"] = validate_tools(f"{path}.tools", session["tools"])
    if "tool_choice" in session:
        clean["tool_choice"] = validate_tool_choice(f"{path}.tool_choice", session["tool_choice"])
    if "parallel_tool_calls" in session:
        clean["parallel_tool_calls"] = _expect_bool(f"{path}.parallel_tool_calls", session["parallel_tool_calls"])
    if "max_output_tokens" in session:
        clean["max_output_tokens"] = validate_max_output_tokens(
            f"{path}.max_output_tokens", session["max_output_tokens"]
        )
    if "truncation" in session:
        trunc = session["truncation"]
        if isinstance(trunc, str):
            _expect_choice(f"{path}.truncation", trunc, ("auto", "disabled"))
        else:
            _expect_object(f"{path}.truncation", trunc)
        clean["truncation"] = trunc
    if "tracing" in session:
        tracing = session["tracing"]
        if tracing is not None and tracing != "auto":
            _expect_object(f"{path}.tracing", tracing)
        clean["tracing"] = tracing
    if "reasoning" in session:
        reasoning = session["reasoning"]
        if reasoning is not None:
            _expect_object(f"{path}.reasoning", reasoning)
            if "effort" in reasoning:
                _expect_choice(
                    f"{path}.reasoning.effort", reasoning["effort"], ("minimal", "low", "medium", "high", "xhigh")
                )
        clean["reasoning"] = reasoning
    if "prompt" in session:
        if session["prompt"] is not None:
            _expect_object(f"{path}.prompt", session["prompt"])
        clean["prompt"] = session["prompt"]
    if "include" in session:
        include = session["include"]
        if include is not None:
            if not isinstance(include, list):
                raise invalid_type(f"{path}.include", "an array", include)
            for i, entry in enumerate(include):
                _expect_choice(f"{path}.include[{i}]", entry, ("item.input_audio_transcription.logprobs",))
        clean["include"] = include
    return clean


def default_session(*, model: str, session_id: str, expires_at: int) -> dict:
    """The full effective session a new realtime session starts with (as `session.created` shows it)."""
    session = {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(SERVER_VAD_DEFAULTS),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
        },
    }
    if model.startswith("gpt-realtime-2"):
        session["reasoning"] = {"effort": "low"}
    return session


def merge_session(current: dict, update: dict) -> dict:
    """Apply a validated partial session to an effective one: present fields change, the rest stay."""
    merged = copy.deepcopy(current)
    for key, value in update.items():
        if key == "audio":
            for side in ("input", "output"):
                if side in value:
                    merged["audio"][side].update(copy.deepcopy(value[side]))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# --- items and responses --------------------------------------------------------------------------------------------

_USER_PARTS = ("input_text", "input_audio", "input_image")


def validate_item(value: Any, *, path: str = "item") -> dict:
    """Validate a client-created conversation item; returns a normalised copy (id/object/status filled later)."""
    item = _expect_object(path, value)
    if "type" not in item:
        raise missing_parameter(f"{path}.type")
    kind = _expect_choice(
        f"{path}.type", item["type"], ("message", "function_call", "function_call_output", "mcp_approval_response")
    )
    common = {"id", "type", "object", "status"}
    if "id" in item:
        _expect_str(f"{path}.id", item["id"])
    if kind == "message":
        _only_keys(path, item, common | {"role", "content"})
        role = _expect_choice(f"{path}.role", item.get("role"), ("user", "system", "assistant"))
        content = item.get("content")
        if not isinstance(content, list):
            raise invalid_type(f"{path}.content", "an array", content)
        allowed = ("output_text",) if role == "assistant" else (_USER_PARTS if role == "user" else ("input_text",))
        for i, part in enumerate(content):
            ppath = f"{path}.content[{i}]"
            _expect_object(ppath, part)
            _expect_choice(f"{ppath}.type", part.get("type"), allowed)
            _only_keys(ppath, part, {"type", "text", "audio", "transcript", "image_url", "detail"})
            if part["type"] in ("input_text", "output_text"):
                _expect_str(f"{ppath}.text", part.get("text"))
    elif kind == "function_call":
        _only_keys(path, item, common | {"call_id", "name", "arguments"})
        for key in ("call_id", "name", "arguments"):
            if key not in item:
                raise missing_parameter(f"{path}.{key}")
            _expect_str(f"{path}.{key}", item[key])
    elif kind == "function_call_output":
        _only_keys(path, item, common | {"call_id", "output"})
        for key in ("call_id", "output"):
            if key not in item:
                raise missing_parameter(f"{path}.{key}")
            _expect_str(f"{path}.{key}", item[key])
    return copy.deepcopy(item)


_RESPONSE_KEYS = frozenset(
    {
        "audio",
        "conversation",
        "input",
        "instructions",
        "max_output_tokens",
        "metadata",
        "output_modalities",
        "parallel_tool_calls",
        "prompt",
        "reasoning",
        "tool_choice",
        "tools",
    }
)


def validate_response_params(value: Any, *, path: str = "response") -> dict:
    params = _expect_object(path, value)
    _only_keys(path, params, _RESPONSE_KEYS)  # beta names (modalities, voice, temperature...) land here too
    if "instructions" in params:
        _expect_str(f"{path}.instructions", params["instructions"])
    if "conversation" in params:
        conv = params["conversation"]
        if conv not in ("auto", "none"):
            _expect_str(f"{path}.conversation", conv)
    if "output_modalities" in params:
        validate_output_modalities(f"{path}.output_modalities", params["output_modalities"])
    if "tools" in params:
        validate_tools(f"{path}.tools", params["tools"])
    if "tool_choice" in params:
        validate_tool_choice(f"{path}.tool_choice", params["tool_choice"])
    if "max_output_tokens" in params:
        validate_max_output_tokens(f"{path}.max_output_tokens", params["max_output_tokens"])
    if "metadata" in params and params["metadata"] is not None:
        _expect_object(f"{path}.metadata", params["metadata"])
    if "audio" in params:
        audio = _expect_object(f"{path}.audio", params["audio"])
        _only_keys(f"{path}.audio", audio, {"output"})
        if "output" in audio:
            outp = _expect_object(f"{path}.audio.output", audio["output"])
            _only_keys(f"{path}.audio.output", outp, {"format", "voice"})
            if "format" in outp:
                validate_audio_format(f"{path}.audio.output.format", outp["format"])
            if "voice" in outp and not isinstance(outp["voice"], dict):
                _expect_choice(f"{path}.audio.output.voice", outp["voice"], VOICES)
    if "input" in params and not isinstance(params["input"], list):
        raise invalid_type(f"{path}.input", "an array", params["input"])
    return dict(params)


def check_client_event(event: Any) -> tuple[str, str | None]:
    """Structural check of a client event: a known GA type and only that type's fields. Returns (type, event_id)."""
    if not isinstance(event, dict):
        raise ProtocolError("Expected a JSON object as the client event.", code="invalid_event")
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    kind = event.get("type")
    if kind is None:
        raise ProtocolError("Missing required parameter: 'type'.", code="invalid_event", param="type")
    if not isinstance(kind, str) or kind not in CLIENT_EVENT_FIELDS:
        raise ProtocolError(
            f"Invalid value: '{kind}'. Supported values are: "
            + ", ".join(f"'{name}'" for name in CLIENT_EVENT_FIELDS)
            + ".",
            code="invalid_event",
            param="type",
        )
    allowed = CLIENT_EVENT_FIELDS[kind] | {"type", "event_id"}
    for key in event:
        if key not in allowed:
            raise unknown_parameter(key)
    return kind, event_id


def client_secret_body_check(body: Any) -> tuple[dict, int]:
    """Validate a `POST /realtime/client_secrets` body; returns (clean session, ttl seconds)."""
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    for key in body:
        if key in BETA_SESSION_FIELDS or key == "model":
            # The old `/realtime/sessions` flat body posted here.
            raise beta_shape_error(key, BETA_SESSION_FIELDS.get(key, "session.model"))
    _only_keys("body", body, {"expires_after", "session"})
    ttl = 600
    if "expires_after" in body:
        exp = _expect_object("expires_after", body["expires_after"])
        _only_keys("expires_after", exp, {"anchor", "seconds"})
        if "anchor" in exp:
            _expect_choice("expires_after.anchor", exp["anchor"], ("created_at",))
        if "seconds" in exp:
            ttl = _expect_int("expires_after.seconds", exp["seconds"], 10, 7200)
    session = validate_session(body.get("session", {"type": "realtime"}), beta_code=BETA_CODE)
    return session, ttl
