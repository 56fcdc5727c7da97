"""The GA Realtime session configuration for a clinic (used when minting browser secrets, attaching the sideband,
and configuring the phone bridge). Shapes follow the GA session (docs/facts.md#ga-session); no beta field names."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from django.conf import settings

from organizations.models import Organization
from realtime.catalog import TRANSCRIPTION_MODELS, TranscriptionModel
from realtime.prompt import build_instructions
from realtime.tools import tool_definitions

PCM_24K = {"type": "audio/pcm", "rate": 24000}
PCMU = {"type": "audio/pcmu"}
MAX_KEYWORDS = 50  # the API documents no limit; the clinic's own names come first


def transcription_keywords(organization: Organization) -> list[str]:
    """Names a caller may say that a transcriber would not guess: the clinic's, its providers' and its services'."""
    seen: dict[str, None] = {}
    for name in (organization.name, *organization.providers, *organization.services):
        if name.strip():
            seen.setdefault(name.strip(), None)
    return list(seen)[:MAX_KEYWORDS]


def transcription_config(organization: Organization, *, model: str | None = None) -> dict[str, Any]:
    """`audio.input.transcription` for the configured model (REALTIME_TRANSCRIPTION_MODEL), with the clinic's
    languages and names in the fields that model takes (docs/facts.md#transcription-models): `language` for a
    one-language clinic; `languages` and `keywords` for gpt-transcribe and gpt-live-transcribe; a `prompt` (a list
    of keywords for whisper-1, a sentence for gpt-4o-transcribe) where the model reads one."""
    name = model or settings.REALTIME_TRANSCRIPTION_MODEL
    spec = TRANSCRIPTION_MODELS.get(name) or TranscriptionModel(name)
    config: dict[str, Any] = {"model": name}
    languages = list(organization.agent_languages)
    if len(languages) == 1:
        config["language"] = languages[0]
    elif languages and spec.hints:
        config["languages"] = languages
    keywords = transcription_keywords(organization)
    if spec.hints and keywords:
        config["keywords"] = keywords
    if spec.prompt == "keywords" and keywords:
        config["prompt"] = ", ".join(keywords)
    elif spec.prompt == "text":
        config["prompt"] = f"A phone call to the receptionist of {organization.name}, a medical clinic." + (
            f" Names and terms that may come up: {', '.join(keywords)}." if keywords else ""
        )
    return config


def turn_detection_config(organization: Organization) -> dict[str, Any]:
    """`audio.input.turn_detection`: the clinic's voice-activity settings, or semantic detection with its eagerness
    (which takes no threshold, silence or idle timeout: the API refuses them there)."""
    if organization.turn_detection == Organization.TurnDetection.SEMANTIC_VAD:
        return {
            "type": "semantic_vad",
            "eagerness": organization.vad_eagerness,
            "create_response": True,
            "interrupt_response": True,
        }
    config: dict[str, Any] = {
        "type": "server_vad",
        "threshold": organization.vad_threshold,
        "silence_duration_ms": organization.vad_silence_ms,
        "prefix_padding_ms": 300,
        "create_response": True,
        "interrupt_response": True,
    }
    if organization.idle_timeout_ms is not None:
        config["idle_timeout_ms"] = organization.idle_timeout_ms
    return config


def noise_reduction_config(organization: Organization, *, phone: bool) -> dict[str, str] | None:
    """`audio.input.noise_reduction`, or None for none: by default near field on the phone (a handset held to the
    ear) and none in the browser, as before; a clinic may choose near field, far field or off for both."""
    choice = organization.noise_reduction
    if choice == Organization.NoiseReduction.AUTO:
        return {"type": "near_field"} if phone else None
    if choice == Organization.NoiseReduction.OFF:
        return None
    return {"type": choice}


def build_session(
    organization: Organization, *, audio_format: dict | None = None, now: dt.datetime | None = None, sip: bool = False
) -> dict:
    """A GA `session` object (type realtime) with the clinic's prompt, voice, tools, transcription and turn detection.

    `audio_format` is PCM 24 kHz for browsers (WebRTC negotiates its own codec anyway) and `audio/pcmu` for Twilio,
    whose μ-law frames then pass through untouched. `sip`: a phone call OpenAI answers itself (realtime/sip.py); the
    SIP leg negotiates its codec, so no format is named, and the phone's noise reduction applies.
    """
    audio_format = audio_format or PCM_24K
    audio_input: dict[str, Any] = {
        "format": audio_format,
        "transcription": transcription_config(organization),
        "turn_detection": turn_detection_config(organization),
    }
    noise_reduction = noise_reduction_config(organization, phone=sip or audio_format == PCMU)
    if noise_reduction is not None:
        audio_input["noise_reduction"] = noise_reduction
    audio_output: dict[str, Any] = {"format": audio_format, "voice": organization.agent_voice}
    if sip:
        del audio_input["format"], audio_output["format"]
    return {
        "type": "realtime",
        "model": settings.REALTIME_MODEL,
        "instructions": build_instructions(organization, now=now),
        "output_modalities": ["audio"],
        "audio": {"input": audio_input, "output": audio_output},
        "tools": tool_definitions(organization),
        "tool_choice": "auto",
    }


def session_update_event(session: dict, *, event_id: str | None = None) -> dict:
    """A `session.update` client event; `model` cannot change on a live session, so it is left out. With an
    `event_id`, the server's `error` for this event carries it back (error.event_id), so a refusal can be told
    apart from other errors (docs/facts.md#session-update-confirmed)."""
    event: dict[str, Any] = {"type": "session.update", "session": {k: v for k, v in session.items() if k != "model"}}
    if event_id:
        event["event_id"] = event_id
    return event


def new_session_update_id() -> str:
    return "evt_session_" + uuid.uuid4().hex[:20]


SESSION_ACCEPTED = ""
_SAFE_CODE = re.compile(r"[^A-Za-z0-9_.-]")


def session_update_outcome(event: dict, event_id: str) -> str | None:
    """What a server event says about our `session.update` `event_id`: SESSION_ACCEPTED for `session.updated`, the
    refusal's error code (made safe for a log line) for an `error` naming that event, None for anything else."""
    kind = event.get("type")
    if kind == "session.updated":
        return SESSION_ACCEPTED
    if kind == "error":
        error = event.get("error")
        if isinstance(error, dict) and error.get("event_id") == event_id:
            return _SAFE_CODE.sub("?", str(error.get("code") or error.get("type") or "unknown"))[:64]
    return None
