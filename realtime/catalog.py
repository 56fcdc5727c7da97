"""The OpenAI models a deployment may configure, as the official SDK lists them (openai 3.57): which are current,
which are deprecated and when they shut down, and which transcription options each model takes
(docs/facts.md#transcription-models).

Checked once at start (realtime.apps): an unknown transcription model, or any model past its shutdown date, refuses
to start with ImproperlyConfigured naming the variable; a deprecated one still running is a system-check warning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from django.core.exceptions import ImproperlyConfigured

PromptKind = Literal["", "keywords", "text"]


@dataclass(frozen=True)
class TranscriptionModel:
    """A transcription model of `AudioTranscription.model` and what its field docs say it takes."""

    name: str
    shutdown: dt.date | None = None  # "Announced shutdown date" in the SDK docstring
    hints: bool = False  # `languages` (several possible languages) and `keywords`
    prompt: PromptKind = ""  # `prompt` read as a keyword list (whisper-1), as free text, or not taken at all
    delay: bool = False  # `delay` ("Only supported with gpt-realtime-whisper in GA Realtime sessions")


TRANSCRIBE_SHUTDOWN = dt.date(2027, 2, 26)
TRANSCRIPTION_MODELS: dict[str, TranscriptionModel] = {
    model.name: model
    for model in (
        # "Only supported with gpt-realtime-whisper in GA Realtime sessions" (delay) and "Prompt is not supported
        # with gpt-realtime-whisper in GA Realtime sessions": the model the SDK describes for conversation sessions.
        TranscriptionModel("gpt-realtime-whisper", delay=True),
        TranscriptionModel("gpt-live-transcribe", hints=True),
        TranscriptionModel("gpt-transcribe", hints=True),
        TranscriptionModel("whisper-1", shutdown=TRANSCRIBE_SHUTDOWN, prompt="keywords"),
        TranscriptionModel("gpt-4o-mini-transcribe", shutdown=TRANSCRIBE_SHUTDOWN, prompt="text"),
        TranscriptionModel("gpt-4o-mini-transcribe-2025-12-15", shutdown=TRANSCRIBE_SHUTDOWN, prompt="text"),
        TranscriptionModel("gpt-4o-transcribe", shutdown=TRANSCRIBE_SHUTDOWN, prompt="text"),
        TranscriptionModel("gpt-4o-transcribe-diarize", shutdown=TRANSCRIBE_SHUTDOWN),
    )
}
DEFAULT_TRANSCRIPTION_MODEL = "gpt-realtime-whisper"

# Deprecated Realtime models (`RealtimeSessionCreateRequest.model`); the others the SDK lists are current, and a
# model newer than the SDK is not refused (the API knows models this table does not).
REALTIME_MODEL_SHUTDOWNS: dict[str, dt.date] = dict.fromkeys(
    (
        "gpt-realtime",
        "gpt-realtime-2025-08-28",
        "gpt-realtime-mini",
        "gpt-realtime-mini-2025-12-15",
        "gpt-audio-mini",
        "gpt-audio-mini-2025-12-15",
    ),
    dt.date(2027, 1, 20),
)


def _current_transcription_models() -> str:
    return ", ".join(name for name, model in TRANSCRIPTION_MODELS.items() if model.shutdown is None)


def transcription_model(name: str, *, today: dt.date) -> TranscriptionModel:
    """The configured transcription model, or ImproperlyConfigured if the SDK does not list it or it has shut down."""
    model = TRANSCRIPTION_MODELS.get(name)
    if model is None:
        raise ImproperlyConfigured(
            f"REALTIME_TRANSCRIPTION_MODEL: {name!r} is not a transcription model the OpenAI SDK lists; use one of "
            f"{_current_transcription_models()}"
        )
    if model.shutdown is not None and today >= model.shutdown:
        raise ImproperlyConfigured(
            f"REALTIME_TRANSCRIPTION_MODEL: {name!r} was shut down on {model.shutdown:%Y-%m-%d}; use one of "
            f"{_current_transcription_models()}"
        )
    return model


def check_realtime_model(name: str, *, today: dt.date) -> None:
    shutdown = REALTIME_MODEL_SHUTDOWNS.get(name)
    if shutdown is not None and today >= shutdown:
        raise ImproperlyConfigured(
            f"REALTIME_MODEL: {name!r} was shut down on {shutdown:%Y-%m-%d}; use gpt-realtime-2.1"
        )


def deprecation_notices(*, realtime_model: str, transcription_model_name: str, today: dt.date) -> list[str]:
    """What the configured models' announced shutdowns still ahead mean for this deployment (empty: nothing)."""
    notices = []
    shutdown = REALTIME_MODEL_SHUTDOWNS.get(realtime_model)
    if shutdown is not None and today < shutdown:
        notices.append(f"REALTIME_MODEL {realtime_model!r} is deprecated and shuts down on {shutdown:%Y-%m-%d}.")
    model = TRANSCRIPTION_MODELS.get(transcription_model_name)
    if model is not None and model.shutdown is not None and today < model.shutdown:
        notices.append(
            f"REALTIME_TRANSCRIPTION_MODEL {model.name!r} is deprecated and shuts down on {model.shutdown:%Y-%m-%d}."
        )
    return notices
