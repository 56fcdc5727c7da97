"""The media bridge accepts one stream per phone call, and only with that call's fresh, unused token."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from calls.models import Call
from conftest import make_call
from realtime.telephony.services import (
    StreamTokenRefused,
    stream_token_consume,
    stream_token_issue,
)


@pytest.fixture
def phone_call(org_a) -> Call:
    return make_call(org_a, channel=Call.Channel.PHONE, twilio_call_sid="CA" + "f" * 32)


def test_a_fresh_token_opens_the_stream_once(phone_call):
    token = stream_token_issue(phone_call)
    accepted = stream_token_consume(str(phone_call.pk), token)
    assert accepted is not None and accepted.pk == phone_call.pk
    assert accepted.stream_started_at is not None
    assert stream_token_consume(str(phone_call.pk), token) is None  # reused


@pytest.mark.parametrize("bad", [None, "", "st_not-the-token", 12345])
def test_missing_or_wrong_tokens_are_refused(phone_call, bad):
    stream_token_issue(phone_call)
    assert stream_token_consume(phone_call.pk, bad) is None
    phone_call.refresh_from_db()
    assert phone_call.stream_started_at is None


@pytest.mark.parametrize("call_id", [None, "", "not-a-uuid", str(uuid.uuid4())])
def test_an_unknown_call_id_is_refused(phone_call, call_id):
    token = stream_token_issue(phone_call)
    assert stream_token_consume(call_id, token) is None


def test_a_token_is_bound_to_its_call(org_a, phone_call):
    other = make_call(org_a, channel=Call.Channel.PHONE, twilio_call_sid="CA" + "e" * 32)
    token = stream_token_issue(phone_call)
    stream_token_issue(other)
    assert stream_token_consume(other.pk, token) is None


def test_no_second_token_once_the_stream_started(phone_call):
    stream_token_consume(phone_call.pk, stream_token_issue(phone_call))
    with pytest.raises(StreamTokenRefused):
        stream_token_issue(phone_call)


def test_an_ended_call_accepts_no_stream(phone_call):
    token = stream_token_issue(phone_call)
    Call.objects.filter(pk=phone_call.pk).update(status=Call.Status.COMPLETED, ended_at=phone_call.started_at)
    assert stream_token_consume(phone_call.pk, token) is None


def test_a_stale_token_is_refused(phone_call):
    token = stream_token_issue(phone_call)
    phone_call.refresh_from_db()
    stale = dt.datetime.fromisoformat(phone_call.metadata["twilio"]["stream_token_issued_at"]) - dt.timedelta(minutes=5)
    phone_call.metadata["twilio"]["stream_token_issued_at"] = stale.isoformat()
    Call.objects.filter(pk=phone_call.pk).update(metadata=phone_call.metadata)
    assert stream_token_consume(phone_call.pk, token) is None


def test_a_web_call_has_no_stream(org_a):
    web = make_call(org_a)
    token = stream_token_issue(web)
    assert stream_token_consume(web.pk, token) is None
