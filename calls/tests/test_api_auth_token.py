"""POST /api/auth/token: a staff username and password for an expiring API token, under the console login's rules
(the address's sign-in rate, the lockout that says how long in the same words for any username), audited."""

from __future__ import annotations

import datetime as dt
import json
import time

from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from calls.models import AuditEvent
from conftest import PASSWORD, make_user

TOKEN = "/api/auth/token"


def sign_in(username: str, password: str = PASSWORD, ip: str = "198.51.100.20", **extra):
    client = Client(REMOTE_ADDR=ip)
    body = json.dumps({"username": username, "password": password, **extra})
    return client.post(TOKEN, data=body, content_type="application/json")


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def test_a_staff_member_gets_a_token_that_works_and_says_when_it_expires(org_a, staff_a):
    response = sign_in("sam")

    assert response.status_code == 200, response.content
    body = response.json()
    token = Token.objects.get(user=staff_a)
    assert body["token"] == token.key
    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    assert abs(expires_at - (token.created + dt.timedelta(hours=12))) < dt.timedelta(seconds=1)
    assert body["user"] == {
        "username": "sam",
        "operator": False,
        "clinics": [{"id": str(org_a.pk), "slug": "clinic-a", "name": org_a.name, "role": "staff"}],
    }
    listed = Client().get("/api/calls", headers={"Authorization": f"Token {body['token']}"})
    assert listed.status_code == 200


def test_signing_in_again_answers_the_same_token_until_it_expires(org_a, staff_a, settings):
    first = sign_in("sam").json()
    assert sign_in("sam").json()["token"] == first["token"]

    Token.objects.filter(key=first["token"]).update(created=timezone.now() - dt.timedelta(hours=13))
    renewed = sign_in("sam").json()

    assert renewed["token"] != first["token"]
    assert dt.datetime.fromisoformat(renewed["expires_at"]) > timezone.now() + dt.timedelta(hours=11)
    assert not Token.objects.filter(key=first["token"]).exists()


def test_each_sign_in_is_audited_for_each_of_the_users_clinics_without_the_token(org_a, org_b, staff_a):
    from organizations.services import membership_set

    membership_set(user=staff_a, organization=org_b, role="admin")

    body = sign_in("sam").json()

    rows = AuditEvent.objects.filter(object_type="apitoken")
    assert sorted(str(row.organization_id) for row in rows) == sorted([str(org_a.pk), str(org_b.pk)])
    for row in rows:
        assert (row.action, row.actor_user_id, row.object_id, row.via) == ("create", staff_a.pk, str(staff_a.pk), "api")
        assert row.ip == "198.51.100.20"
        assert body["token"] not in json.dumps(row.details)
    assert {c["role"] for c in body["user"]["clinics"]} == {"staff", "admin"}


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(org_a, staff_a):
    wrong = error_of(sign_in("sam", "wrong-password"), 401)
    unknown = error_of(sign_in("nobody", "wrong-password", ip="198.51.100.21"), 401)

    assert wrong == unknown and wrong["code"] == "invalid_credentials"
    assert not Token.objects.exists() and not AuditEvent.objects.filter(object_type="apitoken").exists()


def test_an_account_that_cannot_use_the_console_gets_no_token(db):
    make_user("no-clinic")  # not staff: no membership

    assert error_of(sign_in("no-clinic"), 401)["code"] == "invalid_credentials"
    assert not Token.objects.exists()


def test_an_inactive_account_gets_no_token(org_a, staff_a):
    staff_a.is_active = False
    staff_a.save(update_fields=["is_active"])

    assert error_of(sign_in("sam"), 401)["code"] == "invalid_credentials"


def test_five_failures_lock_signing_in_and_the_answer_says_for_how_long_for_any_username(org_a, staff_a):
    for _ in range(4):
        error_of(sign_in("sam", "wrong-password", ip="198.51.100.31"), 401)
        error_of(sign_in("ghost", "wrong-password", ip="198.51.100.32"), 401)
    fifth = sign_in("sam", "wrong-password", ip="198.51.100.31")
    sign_in("ghost", "wrong-password", ip="198.51.100.32")

    right_password = sign_in("sam", ip="198.51.100.31")
    ghost = sign_in("ghost", "anything", ip="198.51.100.32")

    assert error_of(fifth, 429) == error_of(right_password, 429) == error_of(ghost, 429)
    locked = error_of(right_password, 429)
    assert locked["code"] == "login_locked" and "locked for 15 minutes" in locked["message"]
    assert 890 <= int(right_password["Retry-After"]) <= 900
    assert not Token.objects.exists()


def test_the_console_and_the_token_endpoint_share_one_lockout(org_a, staff_a):
    for _ in range(5):
        sign_in("sam", "wrong-password", ip="198.51.100.40")

    browser = Client(REMOTE_ADDR="198.51.100.41")
    console = browser.post(reverse("admin:login"), {"username": "sam", "password": PASSWORD, "next": "/admin/"})

    assert "_auth_user_id" not in browser.session
    assert "locked for 15 minutes" in " ".join(console.context["form"].non_field_errors())


def test_the_lockout_ends_after_its_time_and_the_right_password_then_works(org_a, staff_a, settings):
    settings.LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(5):
        sign_in("sam", "wrong-password")
    assert error_of(sign_in("sam"), 429)["code"] == "login_locked"

    time.sleep(1.2)  # the cache (memory or Redis) expires the lock for real

    assert sign_in("sam").status_code == 200


def test_one_address_over_the_sign_in_rate_is_throttled_right_or_wrong(org_a, staff_a, settings):
    settings.THROTTLE_LOGIN_IP_RATE = "3/min"
    assert sign_in("sam", ip="203.0.113.5").status_code == 200
    sign_in("sam", "wrong-password", ip="203.0.113.5")
    sign_in("ghost", "wrong-password", ip="203.0.113.5")

    response = sign_in("sam", ip="203.0.113.5")

    assert error_of(response, 429)["code"] == "throttled"
    assert int(response["Retry-After"]) >= 1
    assert sign_in("sam", ip="203.0.113.6").status_code == 200


def test_bad_bodies_answer_400_naming_the_field(db):
    client = Client()
    missing = client.post(TOKEN, data=json.dumps({"username": "sam"}), content_type="application/json")
    not_json = client.post(TOKEN, data="{", content_type="application/json")

    assert "password" in error_of(missing, 400)["fields"]
    assert error_of(not_json, 400)["code"] == "invalid_json"


def test_a_stale_authorization_header_does_not_stop_a_sign_in(org_a, staff_a):
    response = Client(headers={"Authorization": "Token expired-or-revoked"}).post(
        TOKEN, data=json.dumps({"username": "sam", "password": PASSWORD}), content_type="application/json"
    )
    assert response.status_code == 200


def test_the_schema_documents_the_sign_in_with_examples_and_its_refusals(db):
    schema = Client().get("/api/schema/", headers={"Accept": "application/json"}).json()
    operation = schema["paths"]["/api/auth/token"]["post"]

    assert "examples" in operation["requestBody"]["content"]["application/json"]
    assert {"200", "400", "401", "429"} <= set(operation["responses"])
    assert "login_locked" in json.dumps(operation["responses"]["429"])
