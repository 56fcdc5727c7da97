"""call_end is the one way a call ends: the reason decides the status unless the caller says, and a carrier's own
duration wins over ours."""

from __future__ import annotations

import datetime as dt

import pytest

from calls.models import Call
from calls.services import call_end
from conftest import make_call

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (Call.EndReason.CALLER_HANGUP, Call.Status.COMPLETED),
        (Call.EndReason.AGENT_ENDED, Call.Status.COMPLETED),
        (Call.EndReason.TIMEOUT, Call.Status.COMPLETED),
        (Call.EndReason.ERROR, Call.Status.FAILED),
        (Call.EndReason.INTERRUPTED, Call.Status.ABANDONED),
    ],
)
def test_the_end_reason_decides_the_status(org_a, reason, status):
    ended = call_end(call=make_call(org_a), reason=reason)
    assert (ended.status, ended.end_reason) == (status, reason)


def test_an_explicit_status_and_a_carriers_duration_are_kept(org_a):
    call = make_call(org_a, minutes_ago=10)
    at = call.started_at + dt.timedelta(minutes=2)

    ended = call_end(call=call, status=Call.Status.ABANDONED, ended_at=at, duration_seconds=125)

    ended.refresh_from_db()
    assert (ended.status, ended.end_reason) == (Call.Status.ABANDONED, Call.EndReason.CALLER_HANGUP)
    assert (ended.ended_at, ended.duration_seconds) == (at, 125)


def test_an_end_before_the_start_ends_at_the_start(org_a):
    call = make_call(org_a, minutes_ago=1)
    ended = call_end(call=call, ended_at=call.started_at - dt.timedelta(hours=1))
    assert (ended.ended_at, ended.duration_seconds) == (call.started_at, 0)
