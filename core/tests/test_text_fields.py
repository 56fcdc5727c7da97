"""Request strings are accepted exactly as the published schema says (core.api.fields.TextField): the schema fuzz
found DRF's CharField turning numbers into text, checking length after trimming, and calling a one-character
control string blank."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.test import Client

from calls.models import Call


def _start(org, caller: dict):
    cache.clear()  # throttle windows
    return Client().post(
        "/api/call/start",
        data=json.dumps({"caller": caller}),
        content_type="application/json",
        headers={"X-Org-Key": org.publishable_key},
    )


def _fields(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


def test_a_number_where_text_is_expected_is_refused_not_turned_into_text(org_a):
    assert "caller.name" in _fields(_start(org_a, {"name": 12}))


def test_the_length_limit_counts_what_was_sent_not_what_is_left_after_trimming(org_a):
    assert "caller.name" in _fields(_start(org_a, {"name": " " * 300 + "Ana"}))  # max 200


def test_a_sign_in_with_a_blank_username_is_refused_and_says_which_field(org_a):
    response = Client().post(
        "/api/auth/token", data=json.dumps({"username": "   ", "password": "x"}), content_type="application/json"
    )
    assert "username" in _fields(response)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("+14155550123", "+14155550123"),
        ("(415) 555-0123", "+14155550123"),
        ("1 415.555.0123", "+14155550123"),
        ("0044 20 7946 0018", "+442079460018"),
        ("", ""),
    ],
)
def test_a_callers_number_in_the_forms_the_schema_lists_is_stored_as_e164(org_a, sent, stored):
    response = _start(org_a, {"name": "Ana", "phone": sent})
    assert response.status_code == 201, response.content
    assert Call.objects.get(pk=response.json()["call_id"]).caller_phone == stored


@pytest.mark.parametrize("sent", ["\t+14155550123", "555-0123", "call me", "+1 415 555 0123 ext 4"])
def test_a_callers_number_outside_those_forms_is_a_400_naming_the_field(org_a, sent):
    assert "caller.phone" in _fields(_start(org_a, {"name": "Ana", "phone": sent}))
