"""The GA Realtime session configuration for a clinic (used when minting browser secrets, attaching the sideband,
and configuring the phone bridge). Shapes follow the GA session (docs/facts.md#ga-session); no beta field names."""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from organizations.models import Organization
from realtime.prompt import build_instructions
from realtime.tools import tool_definitions

TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
PCM_24K = {"type": "audio/pcm", "rate": 24000}
PCMU = {"type": "audio/pcmu"}


def build_session(
    organization: Organization, *, audio_format: dict | None = None, now: dt.datetime | None = None
) -> dict:
    """A GA `session` object (type realtime) with the clinic's prompt, voice, tools and turn detection.

    `audio_format` is PCM 24 kHz for browsers (WebRTC negotiates its own codec anyway) and `audio/pcmu` for Twilio,
    whose μ-law frames then pass through untouched.
    """
    audio_format = audio_format or PCM_24K
    transcription: dict = {"model": TRANSCRIPTION_MODEL}
    if len(organization.agent_languages) == 1:
        transcription["language"] = organization.agent_languages[0]
    return {
        "type": "realtime",
        "model": settings.REALTIME_MODEL,
        "instructions": build_instructions(organization, now=now),
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": audio_format,
                "transcription": transcription,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": organization.vad_threshold,
                    "silence_duration_ms": organization.vad_silence_ms,
                    "prefix_padding_ms": 300,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": audio_format, "voice": organization.agent_voice},
        },
        "tools": tool_definitions(organization),
        "tool_choice": "auto",
    }


def session_update_event(session: dict) -> dict:
    """A `session.update` client event; `model` cannot change on a live session, so it is left out."""
    return {"type": "session.update", "session": {k: v for k, v in session.items() if k != "model"}}
