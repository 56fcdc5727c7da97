"""`manage.py seed_demo`: demo clinics a newcomer can log into, created once however often it runs."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Model
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from calls.models import Call, Escalation, Intake, Page, TranscriptSegment
from organizations.models import (
    BusinessHours,
    Closure,
    EscalationPhrase,
    IntakeField,
    Membership,
    Organization,
    TwilioNumber,
)

pytestmark = pytest.mark.django_db

MODELS: list[type[Model]] = [
    Organization,
    BusinessHours,
    Closure,
    IntakeField,
    EscalationPhrase,
    TwilioNumber,
    Membership,
    Call,
    TranscriptSegment,
    Intake,
    Escalation,
    Token,
    get_user_model(),
]


@pytest.fixture(autouse=True)
def _debug_on(settings):
    settings.DEBUG = True


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    """Every seeded row's id and the fields that would change if a run re-created or re-keyed anything."""
    state: dict[str, list[Any]] = {
        model.__name__: sorted(str(pk) for pk in model._default_manager.values_list("pk", flat=True))
        for model in MODELS
    }
    state["keys"] = sorted(Organization.objects.values_list("slug", "publishable_key", "webhook_secret"))
    state["passwords"] = sorted(get_user_model().objects.values_list("username", "password"))
    state["escalations"] = sorted(Escalation.objects.values_list("pk", "status", "created_at"))
    return state


def test_seeding_twice_leaves_exactly_the_same_data():
    seed()
    first = snapshot()

    seed()

    assert snapshot() == first
    assert len(first["Organization"]) == 2
    assert len(first["User"]) == 4  # three clinic users and the operator


def test_demo_clinics_are_realistic_and_usable_from_the_demo_page():
    seed()

    for org in Organization.objects.all():
        assert org.allowed_origins == ["http://127.0.0.1:8000", "http://localhost:8000"]
        assert org.services
        assert org.hours.count() >= 5
        assert org.closures.filter(label="Christmas Day").exists()
        assert org.twilio_numbers.count() == 1
        assert org.escalation_phone.startswith("+1") and org.escalation_phone[5:9] == "5550"
        assert org.intake_fields.filter(name="patient_name", required=True).exists()
        # Someone is on call around the clock, so a demo emergency pages (console e-mail, Twilio if configured).
        [on_call] = org.on_call_now(timezone.now())
        assert on_call.mobile and on_call.email.endswith(".demo.example")
        assert Call.objects.filter(organization=org).count() >= 2
        org.full_clean()
    assert Escalation.objects.filter(status=Escalation.Status.OPEN).count() == 1
    assert not Page.objects.exists()  # the seeded history pages no one
    assert TranscriptSegment.objects.count() >= 30
    assert Intake.objects.count() == Call.objects.count()
    # One clinic keeps a late evening, and the hours do not overlap (validated on creation).
    assert BusinessHours.objects.filter(closes__gte="20:00").exists()


def test_json_output_has_exactly_the_documented_shape_and_working_credentials():
    payload = json.loads(seed("--json"))

    assert list(payload) == ["organizations", "operator"]
    assert len(payload["organizations"]) == 2
    roles = []
    for org in payload["organizations"]:
        assert set(org) == {"id", "slug", "name", "publishable_key", "phone_numbers", "users"}
        stored = Organization.objects.get(pk=org["id"])
        assert org["phone_numbers"] and org["phone_numbers"] == sorted(
            stored.twilio_numbers.values_list("number", flat=True)
        )
        assert all(number.startswith("+1") for number in org["phone_numbers"])
        assert (stored.slug, stored.name, stored.publishable_key) == (org["slug"], org["name"], org["publishable_key"])
        for user in org["users"]:
            assert set(user) == {"username", "password", "role", "api_token"}
            roles.append((org["slug"], user["role"]))
            client = Client()
            assert client.login(username=user["username"], password=user["password"])
            assert client.get("/admin/organizations/organization/").status_code == 200
            assert Token.objects.get(key=user["api_token"]).user.username == user["username"]
            assert Membership.objects.get(user__username=user["username"], organization=stored).role == user["role"]
    assert sorted(roles) == [
        ("harbor-pediatrics", "admin"),
        ("riverside-family-medicine", "admin"),
        ("riverside-family-medicine", "staff"),
    ]
    operator = payload["operator"]
    assert set(operator) == {"username", "password", "api_token"}
    client = Client()
    assert client.login(username=operator["username"], password=operator["password"])
    listed = client.get("/admin/organizations/organization/")
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 2  # an operator sees every clinic
    assert Token.objects.get(key=operator["api_token"]).user.is_superuser


def test_the_printed_logins_include_an_operator():
    printed = seed()

    assert "Operator (every clinic)" in printed
    assert "username operator" in printed
    assert "password operator-demo" in printed


def test_json_output_is_stable_across_runs():
    assert json.loads(seed("--json")) == json.loads(seed("--json"))


def test_plain_output_says_how_to_log_in():
    out = seed()

    assert "http://127.0.0.1:8000/admin/" in out
    assert "riverside-admin" in out
    assert "riverside-admin-demo" in out


def test_a_changed_demo_password_is_reset_so_the_printed_login_works():
    seed()
    user = get_user_model().objects.get(username="harbor-admin")
    user.set_password("something-else")
    user.save()

    seed()

    assert Client().login(username="harbor-admin", password="harbor-admin-demo")


def test_refuses_to_run_with_debug_off_unless_forced(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        seed()
    assert not Organization.objects.exists()

    seed("--force")
    assert Organization.objects.count() == 2


@pytest.mark.django_db
def test_an_expired_demo_token_is_replaced_so_the_printed_token_works(settings):
    import datetime as dt
    import io
    import json

    from django.core.management import call_command
    from django.test import Client
    from rest_framework.authtoken.models import Token

    settings.DEBUG = True

    def seeded_tokens() -> list[str]:
        out = io.StringIO()
        call_command("seed_demo", "--json", stdout=out)
        return [u["api_token"] for o in json.loads(out.getvalue())["organizations"] for u in o["users"]]

    first = seeded_tokens()
    Token.objects.filter(key=first[0]).update(created=Token.objects.get(key=first[0]).created - dt.timedelta(days=2))
    second = seeded_tokens()
    assert second[0] != first[0] and second[1:] == first[1:]
    response = Client().get("/api/calls", headers={"Authorization": f"Token {second[0]}"})
    assert response.status_code == 200


def demo_origins() -> list[list[str]]:
    return [org.allowed_origins for org in Organization.objects.order_by("slug")]


def test_the_demo_clinics_allow_the_address_the_server_is_started_on(settings):
    seed("--origin", "http://127.0.0.1:8123")
    for origins in demo_origins():
        # The address `make run` prints, and its loopback alias: a browser may open either.
        assert "http://127.0.0.1:8123" in origins and "http://localhost:8123" in origins
        assert "http://127.0.0.1:8000" in origins  # the defaults stay


def test_without_an_origin_the_public_base_url_is_allowed(settings):
    settings.PUBLIC_BASE_URL = "https://demo.clinic.example"
    seed()
    for origins in demo_origins():
        assert "https://demo.clinic.example" in origins and "http://localhost:8000" in origins


def test_adding_an_origin_is_idempotent_and_keeps_a_clinic_admins_origins():
    seed("--origin", "http://127.0.0.1:9000")
    riverside = Organization.objects.get(slug="riverside-family-medicine")
    riverside.allowed_origins = [*riverside.allowed_origins, "https://riverside.example"]
    riverside.save(update_fields=["allowed_origins"])
    seed("--origin", "http://127.0.0.1:9000")
    seed("--origin", "http://127.0.0.1:9000")
    riverside.refresh_from_db()
    assert riverside.allowed_origins.count("http://127.0.0.1:9000") == 1
    assert "https://riverside.example" in riverside.allowed_origins


def test_a_malformed_origin_is_refused():
    with pytest.raises(CommandError, match="not a web origin"):
        seed("--origin", "http://127.0.0.1:9000/demo/call/")


def test_the_demo_page_address_may_start_a_call_once_seeded(fake_openai_for_seed):
    seed("--origin", "http://127.0.0.1:8123")
    key = Organization.objects.get(slug="riverside-family-medicine").publishable_key
    headers = {"X-Org-Key": key, "Origin": "http://127.0.0.1:8123"}
    started = Client().post("/api/realtime/session", {}, content_type="application/json", headers=headers)
    assert started.status_code == 201, started.content
    other_port = {**headers, "Origin": "http://127.0.0.1:8124"}
    refused = Client().post("/api/realtime/session", {}, content_type="application/json", headers=other_port)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"


@pytest.fixture
def fake_openai_for_seed(settings):
    from fakes.openai import FakeOpenAI

    with FakeOpenAI.start_in_thread(time_scale=0.02, pace=0.0) as handle:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = handle.base_url, "sk-test-seed"
        yield handle
