"""The configured OpenAI models are checked at start against the SDK's lists (realtime/catalog.py)."""

from __future__ import annotations

import datetime as dt
import inspect
import typing

import pytest
from django.core.exceptions import ImproperlyConfigured
from openai.types.realtime import audio_transcription
from openai.types.realtime.audio_transcription import AudioTranscription
from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest

from realtime import catalog
from realtime.apps import model_deprecation_check
from voiceagent.tests.test_settings import load_settings

TODAY = dt.date(2026, 12, 1)


def _literal_values(annotation: object) -> set[str]:
    values: set[str] = set()
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            values.update(typing.get_args(arg))
    return values


def test_the_catalog_lists_exactly_the_sdks_transcription_models():
    assert set(catalog.TRANSCRIPTION_MODELS) == _literal_values(AudioTranscription.model_fields["model"].annotation)


def test_the_realtime_shutdowns_are_models_the_sdk_lists():
    listed = _literal_values(RealtimeSessionCreateRequest.model_fields["model"].annotation)
    assert set(catalog.REALTIME_MODEL_SHUTDOWNS) <= listed


def test_the_shutdown_dates_are_the_ones_the_sdk_docstring_announces():
    # The field's docstring: 'Deprecated values: - "whisper-1", ...: Announced shutdown date: 2027-02-26.'
    source = " ".join(inspect.getsource(audio_transcription).split())
    deprecated = source[source.index("Deprecated values:") : source.index("Announced shutdown date: 2027-02-26")]
    for name, model in catalog.TRANSCRIPTION_MODELS.items():
        assert (model.shutdown == dt.date(2027, 2, 26)) == (f'"{name}"' in deprecated), name


def test_the_default_is_a_current_model():
    assert catalog.transcription_model(catalog.DEFAULT_TRANSCRIPTION_MODEL, today=dt.date(2030, 1, 1)).shutdown is None


def test_an_unknown_transcription_model_is_refused_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match=r"^REALTIME_TRANSCRIPTION_MODEL: 'gpt-4o-mini-transcrib'"):
        catalog.transcription_model("gpt-4o-mini-transcrib", today=TODAY)


def test_a_deprecated_model_is_accepted_until_its_shutdown_date_then_refused():
    assert catalog.transcription_model("gpt-4o-mini-transcribe", today=dt.date(2027, 2, 25))
    with pytest.raises(ImproperlyConfigured, match="was shut down on 2027-02-26"):
        catalog.transcription_model("gpt-4o-mini-transcribe", today=dt.date(2027, 2, 26))
    catalog.check_realtime_model("gpt-realtime", today=dt.date(2027, 1, 19))
    with pytest.raises(ImproperlyConfigured, match=r"^REALTIME_MODEL: 'gpt-realtime' was shut down on 2027-01-20"):
        catalog.check_realtime_model("gpt-realtime", today=dt.date(2027, 1, 20))
    catalog.check_realtime_model(
        "gpt-realtime-3-from-the-future", today=TODAY
    )  # newer than the SDK: not ours to refuse


def test_a_deprecated_model_in_use_is_a_system_check_warning(settings):
    settings.REALTIME_TRANSCRIPTION_MODEL = "whisper-1"
    settings.REALTIME_MODEL = "gpt-realtime-mini"
    warnings = model_deprecation_check()
    assert [w.id for w in warnings] == ["realtime.W001", "realtime.W001"]
    assert "shuts down on 2027-02-26" in warnings[1].msg and "2027-01-20" in warnings[0].msg
    settings.REALTIME_TRANSCRIPTION_MODEL, settings.REALTIME_MODEL = "gpt-realtime-whisper", "gpt-realtime-2.1"
    assert model_deprecation_check() == []


@pytest.mark.slow
def test_the_server_refuses_to_start_with_an_unknown_transcription_model():
    result = load_settings(REALTIME_TRANSCRIPTION_MODEL="gpt-4o-mini-transcrib")
    assert result.returncode != 0
    assert "ImproperlyConfigured: REALTIME_TRANSCRIPTION_MODEL" in result.stderr
