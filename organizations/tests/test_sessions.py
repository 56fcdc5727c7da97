"""Staff sessions and credentials: failed-login lockout without user enumeration, idle and absolute session limits,
expiring and revocable API tokens, and no caching of responses that carry patient data."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from conftest import PASSWORD, make_call
from organizations import auth as auth_module
from organizations.auth import SESSION_LOGIN_AT_KEY, STAFF_AUTHENTICATION, ExpiringTokenAuthentication

LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")


def attempt(username: str, password: str, ip: str = "198.51.100.7") -> tuple[int, str, bool]:
    client = Client(REMOTE_ADDR=ip)
    response = client.post(LOGIN, {"username": username, "password": password, "next": INDEX})
    signed_in = "_auth_user_id" in client.session
    errors = response.context["form"].non_field_errors() if response.context and "form" in response.context else []
    return response.status_code, " ".join(errors), signed_in


# --- Lockout --------------------------------------------------------------------------------------------------------


def test_five_failures_lock_the_account_even_for_the_right_password(staff_a):
    for _ in range(4):
        status, wrong_message, signed_in = attempt("sam", "wrong-password")
        assert (status, signed_in) == (200, False)
    assert "correct username and password" in wrong_message
    fifth = attempt("sam", "wrong-password")

    status, locked_message, signed_in = attempt("sam", PASSWORD)

    assert (status, signed_in) == (200, False)
    # It says what happened and for how long, from the failure that started it.
    assert fifth[1] == locked_message
    assert "locked for 15 minutes" in locked_message and "correct username" not in locked_message


def test_a_locked_out_answer_is_the_same_for_unknown_users(staff_a):
    for _ in range(5):
        attempt("sam", "wrong-password", ip="198.51.100.1")
        attempt("nobody-here", "wrong-password", ip="198.51.100.2")

    known = attempt("sam", "wrong-password", ip="198.51.100.1")
    unknown = attempt("nobody-here", "wrong-password", ip="198.51.100.2")
    known_right_password = attempt("sam", PASSWORD, ip="198.51.100.1")
    fresh_known = attempt("alice-not-tried", "wrong-password", ip="198.51.100.3")
    fresh_unknown = attempt("never-tried", "wrong-password", ip="198.51.100.4")

    assert known == unknown == known_right_password
    assert "locked" in known[1]
    # Without a lockout an existing and a made-up username get the same ordinary answer.
    assert fresh_known == fresh_unknown and "locked" not in fresh_unknown[1]


def test_the_lockout_message_counts_down(staff_a, settings):
    settings.LOGIN_LOCKOUT_SECONDS = 45
    for _ in range(5):
        attempt("sam", "wrong-password")
    assert "locked for 45 seconds" in attempt("sam", PASSWORD)[1]


def test_an_address_over_the_sign_in_rate_is_refused_before_any_password_is_checked(staff_a, settings):
    settings.THROTTLE_LOGIN_IP_RATE = "3/min"
    for _ in range(3):
        assert attempt("sam", PASSWORD, ip="203.0.113.9")[2] is True

    status, message, signed_in = attempt("sam", PASSWORD, ip="203.0.113.9")

    assert (status, signed_in) == (200, False)
    assert "Too many sign-in attempts from your address" in message
    assert attempt("sam", PASSWORD, ip="203.0.113.10")[2] is True  # other addresses are not affected


def test_four_failures_then_the_right_password_signs_in_and_clears_the_count(staff_a):
    for _ in range(4):
        attempt("sam", "wrong-password")
    assert attempt("sam", PASSWORD)[2] is True
    for _ in range(4):
        attempt("sam", "wrong-password")
    assert attempt("sam", PASSWORD)[2] is True  # the earlier four were forgotten on success


def test_the_lockout_ends_after_its_time(staff_a, settings):
    # Short periods so the cache (memory or Redis) expires the lock for real.
    settings.LOGIN_LOCKOUT_SECONDS = 1
    settings.LOGIN_LOCKOUT_WINDOW_SECONDS = 1
    for _ in range(5):
        attempt("sam", "wrong-password")
    assert attempt("sam", PASSWORD)[2] is False

    time.sleep(1.2)

    assert attempt("sam", PASSWORD)[2] is True


def test_one_address_trying_many_usernames_is_locked_out(staff_a, settings):
    settings.LOGIN_LOCKOUT_IP_FAILURES = 6
    for n in range(6):
        attempt(f"guess-{n}", "wrong-password", ip="192.0.2.50")

    assert attempt("sam", PASSWORD, ip="192.0.2.50")[2] is False
    assert attempt("sam", PASSWORD, ip="192.0.2.51")[2] is True  # the account itself is fine


def test_signing_in_issues_a_new_session_key(staff_a):
    client = Client()
    client.get(LOGIN)
    client.session.save()
    before = client.session.session_key
    client.post(LOGIN, {"username": "sam", "password": PASSWORD, "next": INDEX})
    assert client.session.session_key != before


# --- Console sessions -----------------------------------------------------------------------------------------------


def test_sessions_expire_after_fifteen_idle_minutes_and_activity_renews_them(staff_a, monkeypatch):
    assert django_settings.SESSION_COOKIE_AGE == 15 * 60 and django_settings.SESSION_SAVE_EVERY_REQUEST
    start = timezone.now()
    clock = {"now": start}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    client = Client()
    client.force_login(staff_a)

    clock["now"] = start + dt.timedelta(minutes=14, seconds=59)
    assert client.get(INDEX).status_code == 200
    clock["now"] += dt.timedelta(minutes=14, seconds=59)  # still within 15 minutes of the last request
    assert client.get(INDEX).status_code == 200
    clock["now"] += dt.timedelta(minutes=15, seconds=1)

    response = client.get(INDEX)

    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_sessions_end_twelve_hours_after_login_however_active(staff_a, monkeypatch):
    assert django_settings.SESSION_ABSOLUTE_LIFETIME_SECONDS == 12 * 3600
    client = Client()
    client.force_login(staff_a)
    login_at = client.session[SESSION_LOGIN_AT_KEY]

    monkeypatch.setattr(auth_module.time, "time", lambda: login_at + 12 * 3600 - 60)
    assert client.get(INDEX).status_code == 200
    monkeypatch.setattr(auth_module.time, "time", lambda: login_at + 12 * 3600 + 1)

    response = client.get(INDEX)

    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert not Session.objects.filter(session_key=client.cookies["sessionid"].value).exists() or (
        "_auth_user_id" not in client.session
    )
    assert client.get(INDEX).status_code == 302  # the old cookie stays signed out


# --- API tokens -----------------------------------------------------------------------------------------------------


def api(key: str) -> Client:
    return Client(headers={"Authorization": f"Token {key}"})


def test_a_token_works_until_its_ttl_and_then_answers_401_token_expired(org_a, staff_a):
    token = Token.objects.create(user=staff_a)
    assert api(token.key).get("/api/calls").status_code == 200

    Token.objects.filter(pk=token.pk).update(
        created=timezone.now() - dt.timedelta(hours=django_settings.API_TOKEN_TTL_HOURS, minutes=1)
    )
    response = api(token.key).get("/api/calls")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"
    assert "Token" in response["WWW-Authenticate"]
    assert not Token.objects.filter(pk=token.pk).exists()  # an expired token never works again


def test_logout_revokes_the_token(org_a, staff_a):
    token = Token.objects.create(user=staff_a)
    make_call(org_a)

    assert api(token.key).post("/api/auth/logout").status_code == 204

    response = api(token.key).get("/api/calls")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_logout_needs_authentication(db):
    response = Client().post("/api/auth/logout")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_a_deactivated_users_token_stops_working(org_a, staff_a):
    token = Token.objects.create(user=staff_a)
    staff_a.is_active = False
    staff_a.save()
    assert api(token.key).get("/api/calls").status_code == 401


def test_every_staff_api_uses_the_expiring_token_class():
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.settings import api_settings

    assert ExpiringTokenAuthentication in STAFF_AUTHENTICATION
    assert ExpiringTokenAuthentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES
    plain = [
        cls
        for cls in [*STAFF_AUTHENTICATION, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]
        if cls is TokenAuthentication
    ]
    assert plain == []


# --- Caching --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/calls", "/admin/calls/call/", "/board/", "/api/escalations", "/admin/"])
def test_responses_with_patient_data_are_never_stored_by_caches(org_a, staff_a, path):
    call = make_call(org_a)
    client = Client(headers={"Authorization": f"Token {Token.objects.create(user=staff_a).key}"})
    client.force_login(staff_a)
    for url in (path, f"/api/calls/{call.pk}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_errors_carry_no_store_too(db):
    assert "no-store" in Client().get("/api/calls")["Cache-Control"]


def test_retrying_during_a_lockout_does_not_extend_it(staff_a, settings):
    # A user who keeps retrying must get in once the lockout's time is up (each attempt used to re-arm it).
    settings.LOGIN_LOCKOUT_SECONDS = 2
    settings.LOGIN_LOCKOUT_WINDOW_SECONDS = 60
    for _ in range(5):
        attempt("sam", "wrong-password")
    time.sleep(1)
    assert attempt("sam", PASSWORD)[2] is False  # still locked, and this attempt must not re-arm the lock
    assert attempt("sam", "wrong-password")[2] is False

    time.sleep(1.2)

    assert attempt("sam", PASSWORD)[2] is True
