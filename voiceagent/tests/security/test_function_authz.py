"""Function-level authorization (OWASP API5:2023 Broken Function Level Authorization,
https://owasp.org/API-Security/editions/2023/en/0xa5-broken-function-level-authorization/): one table of role x
operation -> allow/deny, checked against every operation of the OpenAPI schema for every role, anonymous included.

"allow" means the handler ran (any answer but 401/403, and never a 5xx); a number is the exact refusal. Anonymous
(no credentials at all) gets 401 everywhere in the API; the only operations a caller (the clinic's publishable key,
no staff login) may use are the public caller-side set. A new operation fails the completeness test until it has a
row here.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.core.cache import cache
from django.test import Client

from calls.models import Call
from calls.services import call_start
from conftest import PASSWORD
from voiceagent.tests.security.conftest import Clinic, token_header

ALLOW = "allow"
ROLES = ("anonymous", "caller", "staff", "admin")
PUBLIC_CALLER_OPERATIONS = {
    "call_start",
    "call_end",
    "realtime_session",
    "realtime_attach",
    "call_events",
    "call_transcript",
}

#                                anonymous  caller  staff  admin
POLICY: dict[str, tuple] = {
    "call_start":                (401,      ALLOW,  401,   401),
    "call_end":                  (401,      ALLOW,  ALLOW, ALLOW),
    "realtime_session":          (401,      ALLOW,  401,   401),
    "realtime_attach":           (401,      ALLOW,  401,   401),
    "call_events":               (401,      ALLOW,  401,   401),
    "call_transcript":           (401,      ALLOW,  401,   401),
    "calls_list":                (401,      401,    ALLOW, ALLOW),
    "calls_retrieve":            (401,      401,    ALLOW, ALLOW),
    "call_escalate":             (401,      401,    ALLOW, ALLOW),
    "call_deescalate":           (401,      401,    ALLOW, ALLOW),
    "escalations_list":          (401,      401,    ALLOW, ALLOW),
    "escalation_acknowledge":    (401,      401,    ALLOW, ALLOW),
    "escalation_resolve":        (401,      401,    ALLOW, ALLOW),
    "org_config_retrieve":       (401,      401,    ALLOW, ALLOW),
    "org_config_update":         (401,      401,    403,   ALLOW),
    "org_config_partial_update": (401,      401,    403,   ALLOW),
    "auth_logout":               (401,      401,    ALLOW, ALLOW),
    # Sign-in: the credentials are the body (a staff username and password), so every role may ask; the body, not
    # the headers, decides (wrong credentials: 401, tested in calls/tests/test_api_auth_token.py).
    "auth_token":                (ALLOW,    ALLOW,  ALLOW, ALLOW),
}  # fmt: skip
SIGN_IN_OPERATIONS = {"auth_token"}

Request = tuple[str, str, dict | None, dict[str, str]]  # method, url, body, extra headers


def _fresh_call(a: Clinic) -> tuple[Call, str]:
    return call_start(organization=a.org, channel=Call.Channel.WEB)


def _requests(a: Clinic) -> dict[str, Callable[[], Request]]:
    """A well-formed request per operation against clinic A's own objects (so only the role decides)."""

    def with_call(build: Callable[[Call, str], Request]) -> Callable[[], Request]:
        return lambda: build(*_fresh_call(a))

    return {
        "call_start": lambda: ("POST", "/api/call/start", {"channel": "web"}, {}),
        "call_end": with_call(lambda c, t: ("POST", "/api/call/end", {"call_id": str(c.pk)}, {"X-Call-Token": t})),
        "realtime_session": lambda: ("POST", "/api/realtime/session", {}, {}),
        "realtime_attach": with_call(
            lambda c, t: (
                "POST",
                f"/api/calls/{c.pk}/realtime",
                {"openai_call_id": f"rtc_authz_{c.pk.hex}"},
                {"X-Call-Token": t},
            )
        ),
        "call_events": with_call(
            lambda c, t: ("POST", f"/api/calls/{c.pk}/events", {"events": []}, {"X-Call-Token": t})
        ),
        "call_transcript": with_call(lambda c, t: ("GET", f"/api/calls/{c.pk}/transcript", None, {"X-Call-Token": t})),
        "calls_list": lambda: ("GET", "/api/calls", None, {}),
        "calls_retrieve": lambda: ("GET", f"/api/calls/{a.call.pk}", None, {}),
        "call_escalate": lambda: ("POST", f"/api/calls/{a.call.pk}/escalate", {"level": "human"}, {}),
        "call_deescalate": with_call(lambda c, t: ("POST", f"/api/calls/{c.pk}/deescalate", {}, {})),
        "escalations_list": lambda: ("GET", "/api/escalations", None, {}),
        "escalation_acknowledge": lambda: ("POST", f"/api/escalations/{a.escalation.pk}/acknowledge", None, {}),
        "escalation_resolve": lambda: ("POST", f"/api/escalations/{a.escalation.pk}/resolve", {"note": "ok"}, {}),
        "org_config_retrieve": lambda: ("GET", f"/api/org/config/{a.org.pk}", None, {}),
        "org_config_update": lambda: ("POST", f"/api/org/config/{a.org.pk}", {"services": ["Primary care"]}, {}),
        "org_config_partial_update": lambda: ("PATCH", f"/api/org/config/{a.org.pk}", {"services": ["Flu shots"]}, {}),
        "auth_logout": lambda: ("POST", "/api/auth/logout", None, {}),
        "auth_token": lambda: ("POST", "/api/auth/token", {"username": a.staff.username, "password": PASSWORD}, {}),
    }


def _role_headers(role: str, a: Clinic) -> dict[str, str]:
    if role == "caller":
        return {"X-Org-Key": a.org.publishable_key}
    if role == "staff":
        return token_header(a.staff)
    if role == "admin":
        return token_header(a.admin)
    return {}


def test_the_policy_table_names_every_operation_of_the_schema(db):
    schema = Client().get("/api/schema/", headers={"Accept": "application/json"}).json()
    operations = {op["operationId"] for ops in schema["paths"].values() for m, op in ops.items() if m != "parameters"}
    assert operations == set(POLICY), f"not in the table: {operations - set(POLICY)}; gone: {set(POLICY) - operations}"


def test_the_public_set_is_exactly_the_caller_side_operations():
    caller = ROLES.index("caller")
    assert {op for op, row in POLICY.items() if row[caller] == ALLOW} - SIGN_IN_OPERATIONS == PUBLIC_CALLER_OPERATIONS
    anonymous = ROLES.index("anonymous")
    assert all(row[anonymous] == 401 for op, row in POLICY.items() if op not in SIGN_IN_OPERATIONS)


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_each_role_as_the_table_says(world, fake, settings, role):
    a, _b = world
    settings.CALLER_THROTTLE_RATES = {
        "caller_ip": "1000000/min",
        "caller_org": "1000000/min",
        "caller_org_ip": "1000000/min",
    }
    requests = _requests(a)
    differences = []
    for operation, row in POLICY.items():
        cache.clear()
        expected = row[ROLES.index(role)]
        method, url, body, extra = requests[operation]()
        headers = {**_role_headers(role, a), **(extra if role == "caller" else {})}
        if method == "GET":
            response = Client().get(url, headers=headers)
        else:
            response = Client().generic(
                method,
                url,
                json.dumps(body) if body is not None else "",
                content_type="application/json",
                headers=headers,
            )
        status = response.status_code
        got = ALLOW if status not in (401, 403) else status
        if status >= 500 or got != expected:
            differences.append(f"{operation} as {role}: expected {expected}, got {status} {response.content[:160]!r}")
        if expected == 401:
            assert response.headers.get("WWW-Authenticate"), f"{operation}: a 401 says how to authenticate"
    assert not differences, "\n".join(differences)


def test_outside_the_api_only_health_and_signed_twilio_webhooks_are_public(db):
    """Health probes answer anyone; Twilio webhooks need Twilio's signature (403 without); the console and the
    board send an anonymous visitor to the login page."""
    client = Client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)
    for path in (
        "/twilio/voice",
        "/twilio/status",
        "/twilio/stream-ended",
        "/twilio/dial-result",
        "/twilio/voicemail",
        "/twilio/recording-status",
    ):
        assert client.post(path, {"CallSid": "CA" + "0" * 32}).status_code == 403, path
    for path in ("/board/", "/admin/", "/admin/calls/call/", "/admin/calls/auditevent/"):
        response = client.get(path)
        assert response.status_code == 302 and "/login/" in response["Location"], path
