"""Helpers for tests that play Twilio against the Django test client (no sockets)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.test import Client

from fakes.twilio.webhooks import signed_headers
from organizations.models import BusinessHours, Organization, TwilioNumber

if TYPE_CHECKING:  # the test client's response type exists in django-stubs only
    from django.test.client import _MonkeyPatchedWSGIResponse

TEST_ACCOUNT_SID = "AC" + "a1" * 16
TEST_AUTH_TOKEN = "test-twilio-auth-token"  # noqa: S105 - a fake credential for tests
TEST_PUBLIC_BASE_URL = "https://voice.clinic.example"


def twilio_post(
    client: Client,
    path_and_query: str,
    params: Mapping[str, str],
    *,
    idempotency_token: str | None = None,
    signature: str | None = None,
    signed_url: str | None = None,
    **extra_headers: str,
) -> _MonkeyPatchedWSGIResponse:
    """POST a form the way Twilio does, signed over PUBLIC_BASE_URL + path (or `signed_url`)."""
    url = signed_url or settings.PUBLIC_BASE_URL + path_and_query
    headers = signed_headers(settings.TWILIO_AUTH_TOKEN, url, params, idempotency_token=idempotency_token)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    headers.update(extra_headers)
    parts = urlsplit(path_and_query)
    return client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=dict(params), headers=headers)


def open_around_the_clock(organization: Organization) -> None:
    for weekday in range(7):  # equal open and close times mean 24 hours
        BusinessHours.objects.create(organization=organization, weekday=weekday, opens=dt.time(0), closes=dt.time(0))


def add_number(organization: Organization, number: str) -> TwilioNumber:
    return TwilioNumber.objects.create(organization=organization, number=number)
