"""The cross-tenant matrix (OWASP API1:2023 Broken Object Level Authorization,
https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/): clinic B's people, tokens and
publishable key aimed at clinic A's call, escalation, clinic, membership and audit ids, in the path, the body and the
query, over every id-bearing API operation, console page and the board socket.

Pass: every attempt answers 404 (never 403, which would confirm the id exists; never data), A's rows are unchanged
byte for byte, and lists hold none of A's ids. The completeness tests enumerate the OpenAPI operations and the URL
resolver and fail when an id-bearing endpoint is not in the matrix below, so a new endpoint must be added here.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from urllib.parse import parse_qs, urlsplit

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from calls.models import AuditEvent, Call, Escalation, Intake, Notification, TranscriptSegment
from calls.notifications import board_group
from organizations.models import (
    BusinessHours,
    Closure,
    EscalationPhrase,
    IntakeField,
    Membership,
    Organization,
    TwilioNumber,
)
from voiceagent.tests.security.conftest import Clinic, token_header

# ---------------------------------------------------------------------------------------------------------------------
# The matrix: one row per (operation, where the foreign id goes). `covers` names the schema inputs it exercises.
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    operation: str  # OpenAPI operationId
    method: str
    url: Callable[[Clinic, Clinic], str]  # (victim A, attacker B) -> URL
    body: Callable[[Clinic, Clinic], dict] | None = None
    covers: tuple[str, ...] = ()  # "path:call_id", "query:organization", "body:call_id"


STAFF_ATTACKS = [
    Attack("calls_retrieve", "GET", lambda a, b: f"/api/calls/{a.call.pk}", covers=("path:call_id",)),
    Attack("calls_retrieve", "GET", lambda a, b: f"/api/calls/{a.ended_call.pk}/"),
    Attack("calls_list", "GET", lambda a, b: f"/api/calls?organization={a.org.pk}", covers=("query:organization",)),
    Attack(
        "call_escalate",
        "POST",
        lambda a, b: f"/api/calls/{a.call.pk}/escalate",
        lambda a, b: {"level": "emergency", "reason": "x"},
        covers=("path:call_id",),
    ),
    Attack(
        "call_deescalate",
        "POST",
        lambda a, b: f"/api/calls/{a.call.pk}/deescalate",
        lambda a, b: {"note": "x"},
        covers=("path:call_id",),
    ),
    Attack(
        "call_end",
        "POST",
        lambda a, b: "/api/call/end",
        lambda a, b: {"call_id": str(a.call.pk), "reason": "caller_hangup"},
        covers=("body:call_id",),
    ),
    Attack(
        "escalations_list",
        "GET",
        lambda a, b: f"/api/escalations?organization={a.org.pk}",
        covers=("query:organization",),
    ),
    Attack(
        "escalation_acknowledge",
        "POST",
        lambda a, b: f"/api/escalations/{a.escalation.pk}/acknowledge",
        covers=("path:escalation_id",),
    ),
    Attack(
        "escalation_resolve",
        "POST",
        lambda a, b: f"/api/escalations/{a.escalation.pk}/resolve",
        lambda a, b: {"note": "x"},
        covers=("path:escalation_id",),
    ),
    Attack("org_config_retrieve", "GET", lambda a, b: f"/api/org/config/{a.org.pk}", covers=("path:org_id",)),
    Attack(
        "org_config_update",
        "POST",
        lambda a, b: f"/api/org/config/{a.org.pk}",
        lambda a, b: {"name": "Pwned"},
        covers=("path:org_id",),
    ),
    Attack(
        "org_config_partial_update",
        "PATCH",
        lambda a, b: f"/api/org/config/{a.org.pk}/",
        lambda a, b: {"name": "Pwned", "webhook_url": "https://evil.example/hook"},
        covers=("path:org_id",),
    ),
    # The clinic's slug names it as well as its id: another clinic's slug answers 404 too.
    Attack("org_config_retrieve", "GET", lambda a, b: f"/api/org/config/{a.org.slug}", covers=("path:org_id",)),
    Attack(
        "org_config_partial_update",
        "PATCH",
        lambda a, b: f"/api/org/config/{a.org.slug}",
        lambda a, b: {"name": "Pwned"},
        covers=("path:org_id",),
    ),
    # An id of the wrong kind in the right place answers like an unknown id.
    Attack("calls_retrieve", "GET", lambda a, b: f"/api/calls/{a.escalation.pk}"),
    Attack("escalation_acknowledge", "POST", lambda a, b: f"/api/escalations/{a.call.pk}/acknowledge"),
]

# Caller side: clinic B's publishable key with clinic A's call id and A's own call token.
CALLER_ATTACKS = [
    Attack(
        "call_end",
        "POST",
        lambda a, b: "/api/call/end",
        lambda a, b: {"call_id": str(a.call.pk), "reason": "caller_hangup"},
        covers=("body:call_id",),
    ),
    Attack(
        "realtime_session",
        "POST",
        lambda a, b: "/api/realtime/session",
        lambda a, b: {"call_id": str(a.call.pk)},
        covers=("body:call_id",),
    ),
    Attack(
        "realtime_attach",
        "POST",
        lambda a, b: f"/api/calls/{a.call.pk}/realtime",
        lambda a, b: {"openai_call_id": "rtc_secsuite"},
        covers=("path:call_id",),
    ),
    Attack(
        "call_events",
        "POST",
        lambda a, b: f"/api/calls/{a.call.pk}/events",
        lambda a, b: {
            "events": [
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": "x1",
                    "transcript": "injected",
                }
            ]
        },
        covers=("path:call_id",),
    ),
    Attack("call_transcript", "GET", lambda a, b: f"/api/calls/{a.call.pk}/transcript", covers=("path:call_id",)),
]

# Console pages with an object id: {model: (A's object id)}; each gets change, delete, history, the bare id and
# the object buttons, GET and POST.
CONSOLE_OBJECTS: dict[str, Callable[[Clinic], object]] = {
    "calls/call": lambda a: a.call.pk,
    "calls/escalation": lambda a: a.escalation.pk,
    "organizations/organization": lambda a: a.org.pk,
    "organizations/membership": lambda a: a.membership.pk,
    "calls/auditevent": lambda a: a.audit_row.pk,
}
CONSOLE_BUTTONS = {
    "calls/call": ["mark-reviewed"],
    "calls/escalation": ["acknowledge", "resolve"],
    "organizations/organization": ["regenerate-key"],
    "organizations/membership": ["x"],
}
CONSOLE_SUFFIXES = ["change/", "delete/", "history/", ""]

# Id-bearing schema inputs that need no foreign-id row: they take none of another clinic's ids.
NOT_TENANT_IDS: set[tuple[str, str]] = set()

# URL patterns with parameters that carry no object id, or whose objects belong to no clinic.
ROUTES_WITHOUT_TENANT_IDS = {
    # An app's index page (the regex lists apps in registration order, which does not matter here).
    *(
        rf"admin/^(?P<app_label>{'|'.join(order)})/$"
        for order in itertools.permutations(["auth", "authtoken", "organizations", "calls"])
    ),
    r"admin/(?P<url>.*)$",  # the admin's catch-all (404 or login redirect)
    r"admin/auth/group/<path:object_id>/",  # groups are global roles, operator-only (tested below: refused)
    r"admin/auth/user/<path:object_id>/",  # users: operator-only (tested below: refused, no oracle)
    r"admin/auth/user/<id>/password/",  # the operator's password form for a user (tested below)
    r"admin/authtoken/tokenproxy/<path:object_id>/",  # API tokens: operator-only (tested below)
    r"^api/",  # the API's catch-all 404
    r"^admin/r/",  # the admin's view-on-site shortcut, shadowed by one plain 404 (test_admin_shortcut.py)
    # An invitation / reset link: a signed one-time token for one user, no clinic object id (test_team.py).
    r"account/set-password/<uidb64>/<token>/",
}


def _personas(b: Clinic) -> list[tuple[str, Client, dict]]:
    """Clinic B's admin and staff, each by session and by API token."""
    out: list[tuple[str, Client, dict]] = []
    for role, user in (("admin", b.admin), ("staff", b.staff)):
        session = Client()
        session.force_login(user)
        out.append((f"B {role} (session)", session, {}))
        out.append((f"B {role} (token)", Client(), token_header(user)))
    return out


def _snapshot(org: Organization) -> str:
    """Every row of clinic A that an attack could change, serialised (audit rows excluded: reads append them)."""
    rows = {
        "org": list(Organization.objects.filter(pk=org.pk).values()),
        "calls": list(Call.objects.filter(organization=org).order_by("pk").values()),
        "segments": list(TranscriptSegment.objects.filter(call__organization=org).order_by("pk").values()),
        "intakes": list(Intake.objects.filter(call__organization=org).order_by("pk").values()),
        "escalations": list(Escalation.objects.filter(organization=org).order_by("pk").values()),
        "notifications": list(Notification.objects.filter(organization=org).order_by("pk").values("pk", "event")),
        "memberships": list(Membership.objects.filter(organization=org).order_by("pk").values()),
    }
    for model in (BusinessHours, Closure, IntakeField, EscalationPhrase, TwilioNumber):
        rows[model.__name__] = list(model.objects.filter(organization=org).order_by("pk").values())
    return json.dumps(rows, default=str, sort_keys=True)


def _leaks(text: str, victim: Clinic) -> list[str]:
    return [value for value in (*victim.ids, *victim.canaries, *victim.secrets) if value and value in text]


def _send(client: Client, method: str, url: str, body: dict | None, headers: dict):
    if method == "GET":
        return client.get(url, headers=headers)
    return client.generic(method, url, json.dumps(body or {}), content_type="application/json", headers=headers)


def _strip_echo(text: str, url: str, body: dict | None) -> str:
    """The attacker sent A's id (or searched for A's canary); echoing what was sent is not a leak."""
    query = parse_qs(urlsplit(url).query)
    for sent in [url, *(str(v) for v in (body or {}).values()), *(v for values in query.values() for v in values)]:
        text = text.replace(sent, "").replace(escape(sent), "")
    for value in re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", url + json.dumps(body)):
        text = text.replace(value, "")
    return text


# ---------------------------------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------------------------------


def test_clinic_b_staff_and_admins_get_404_for_every_id_of_clinic_a_and_change_nothing(world, settings):
    a, b = world
    settings.CALLER_THROTTLE_RATES = {
        "caller_ip": "1000000/min",
        "caller_org": "1000000/min",
        "caller_org_ip": "1000000/min",
    }
    before = _snapshot(a.org)
    failures = []
    tried = 0
    for label, client, headers in _personas(b):
        for attack in STAFF_ATTACKS:
            url, body = attack.url(a, b), attack.body(a, b) if attack.body else None
            response = _send(client, attack.method, url, body, headers)
            tried += 1
            text = response.content.decode(errors="replace")
            if response.status_code != 404:
                failures.append(f"{label} {attack.method} {url}: {response.status_code} {text[:200]}")
            elif leaked := _leaks(_strip_echo(text, url, body), a):
                failures.append(f"{label} {attack.method} {url}: leaked {leaked}")
    assert not failures, "\n".join(failures)
    assert _snapshot(a.org) == before
    assert tried == 4 * len(STAFF_ATTACKS)


def test_a_random_id_and_a_foreign_id_get_the_same_answer(world):
    """No existence oracle: A's id and an id nobody has answer with the same status and body."""
    a, b = world
    _label, client, headers = _personas(b)[0]
    unknown = uuid.uuid4()
    pairs = [
        (f"/api/calls/{a.call.pk}", f"/api/calls/{unknown}"),
        (f"/api/escalations/{a.escalation.pk}/acknowledge", f"/api/escalations/{unknown}/acknowledge"),
        (f"/api/org/config/{a.org.pk}", f"/api/org/config/{unknown}"),
    ]
    for foreign, missing in pairs:
        method = "POST" if foreign.endswith("acknowledge") else "GET"
        one = _send(client, method, foreign, None, headers)
        two = _send(client, method, missing, None, headers)
        assert (one.status_code, one.json()) == (two.status_code, two.json())
        assert (one.status_code, one.json()["error"]["code"]) == (404, "not_found")


def test_clinic_b_lists_and_searches_hold_none_of_clinic_a(world):
    a, b = world
    for label, client, headers in _personas(b):
        for url in [
            "/api/calls",
            "/api/calls?page_size=100",
            f"/api/calls?q={a.canaries[0]}",
            "/api/calls?escalated=true",
            "/api/escalations",
            "/api/escalations?status=open&page_size=100",
        ]:
            response = client.get(url, headers=headers)
            assert response.status_code in (200, 400), f"{label} {url}: {response.status_code}"
            text = _strip_echo(response.content.decode(), url, None)
            assert not _leaks(text, a), f"{label} {url} leaked {_leaks(text, a)}"
        # B's own rows are there: the lists above were not simply empty.
        listed = client.get("/api/calls?page_size=100", headers=headers).json()
        assert str(b.call.pk) in json.dumps(listed)


def test_clinic_b_publishable_key_with_clinic_a_call_and_token_gets_404_and_changes_nothing(world, settings, fake):
    a, b = world
    before = _snapshot(a.org)
    failures = []
    for attack in CALLER_ATTACKS:
        cache.clear()
        url, body = attack.url(a, b), attack.body(a, b) if attack.body else None
        headers = {"X-Org-Key": b.org.publishable_key, "X-Call-Token": a.call_token}
        response = _send(Client(), attack.method, url, body, headers)
        if response.status_code != 404:
            failures.append(f"{attack.operation}: {response.status_code} {response.content[:200]!r}")
        elif _leaks(_strip_echo(response.content.decode(), url, body), a):
            failures.append(f"{attack.operation}: leaked")
    assert not failures, "\n".join(failures)
    assert _snapshot(a.org) == before
    assert not fake.requests_to("/realtime/client_secrets"), "nothing was minted for a foreign call"


def test_another_calls_token_or_no_token_is_401_even_with_the_right_clinic_key(world, settings, fake):
    a, b = world
    before = _snapshot(a.org)
    for attack in CALLER_ATTACKS:
        for token in (b.call_token, None, "ct_" + "x" * 40):
            cache.clear()
            headers = {"X-Org-Key": a.org.publishable_key, **({"X-Call-Token": token} if token else {})}
            url, body = attack.url(a, b), attack.body(a, b) if attack.body else None
            response = _send(Client(), attack.method, url, body, headers)
            if attack.operation == "realtime_session" and token is None:
                # Without a token the body's call_id cannot be used: still refused, nothing minted for A's call.
                assert response.status_code == 401, response.content
            else:
                assert response.status_code == 401, (attack.operation, token, response.content)
    assert _snapshot(a.org) == before


def test_clinic_a_openai_call_id_cannot_be_attached_to_a_clinic_b_call(world, fake):
    """`openai_call_id` (body of realtime_attach) names an upstream call: B's caller sending A's cannot attach the
    server's sideband to A's conversation (the id is unique across our calls), and A's call keeps it."""
    a, b = world
    Call.objects.filter(pk=a.call.pk).update(openai_call_id="rtc_secsuite_clinic_a")
    before = _snapshot(a.org)
    response = Client().post(
        f"/api/calls/{b.call.pk}/realtime",
        {"openai_call_id": "rtc_secsuite_clinic_a"},
        content_type="application/json",
        headers={"X-Org-Key": b.org.publishable_key, "X-Call-Token": b.call_token},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_attached"
    assert not _leaks(response.content.decode(), a)
    assert _snapshot(a.org) == before
    b.call.refresh_from_db()
    assert b.call.openai_call_id is None


OTHER_COVERED = {("realtime_attach", "body:openai_call_id")}  # the test just above


def test_a_foreign_id_inside_the_body_of_an_own_object_changes_only_the_own_object(world):
    """Mass assignment: B's admin sends A's clinic id as `id` while changing B's configuration."""
    a, b = world
    before = _snapshot(a.org)
    client = Client()
    response = client.patch(
        f"/api/org/config/{b.org.pk}",
        {"id": str(a.org.pk), "slug": a.org.slug, "name": "B renamed"},
        content_type="application/json",
        headers=token_header(b.admin),
    )
    assert response.status_code == 200
    assert response.json()["id"] == str(b.org.pk)
    assert _snapshot(a.org) == before
    b.org.refresh_from_db()
    assert (b.org.name, b.org.slug) == ("B renamed", "sec-clinic-b")


# ---------------------------------------------------------------------------------------------------------------------
# Console
# ---------------------------------------------------------------------------------------------------------------------


def _console_urls(a: Clinic) -> list[tuple[str, str]]:
    urls = []
    for model, get_id in CONSOLE_OBJECTS.items():
        object_id = get_id(a)
        for suffix in CONSOLE_SUFFIXES:
            urls.append((model, f"/admin/{model}/{object_id}/{suffix}"))
        for button in CONSOLE_BUTTONS.get(model, []):
            urls.append((model, f"/admin/{model}/{object_id}/do/{button}/"))
    call_type = ContentType.objects.get_for_model(Call)
    urls.append(("view_on_site", f"/admin/r/{call_type.pk}/{a.call.pk}/"))
    urls.append(("clinic_home", f"/admin/home/{a.org.pk}/"))
    urls.append(("clinic_export", f"/admin/home/{a.org.pk}/export/?kind=calls&since=2020-01-01&until=2020-01-02"))
    urls.append(("clinic_team", f"/admin/organizations/organization/{a.org.pk}/team/"))
    urls.append(("call_recording", f"/console/calls/{a.call.pk}/recording.wav"))
    urls.append(("call_recording_whole", f"/console/calls/{a.call.pk}/call-recording.wav"))
    return urls


def test_clinic_b_in_the_console_gets_404_for_clinic_a_objects_and_changes_nothing(world):
    a, b = world
    before = _snapshot(a.org)
    audit_before = AuditEvent.objects.filter(pk=a.audit_row.pk).values().get()
    failures = []
    for user in (b.admin, b.staff):
        client = Client()
        client.force_login(user)
        for _model, url in _console_urls(a):
            for method in ("GET", "POST"):
                response = (
                    client.get(url, follow=True)
                    if method == "GET"
                    else client.post(url, {"post": "yes", "note": "x"}, follow=True)
                )
                text = _strip_echo(response.content.decode(errors="replace"), url, None)
                if response.status_code != 404:
                    failures.append(
                        f"{user.username} {method} {url}: {response.status_code} via {response.redirect_chain}"
                    )
                elif leaked := _leaks(text, a):
                    failures.append(f"{user.username} {method} {url}: leaked {leaked}")
    assert not failures, "\n".join(failures)
    assert _snapshot(a.org) == before
    assert AuditEvent.objects.filter(pk=a.audit_row.pk).values().get() == audit_before


def test_clinic_b_console_lists_searches_and_autocomplete_hold_none_of_clinic_a(world):
    a, b = world
    client = Client()
    client.force_login(b.admin)
    urls = [
        "/admin/calls/call/",
        f"/admin/calls/call/?q={a.canaries[0]}",
        f"/admin/calls/call/?q={a.canaries[3]}",
        f"/admin/calls/call/?organization__id__exact={a.org.pk}",
        "/admin/calls/escalation/",
        f"/admin/calls/escalation/?organization__id__exact={a.org.pk}",
        "/admin/organizations/organization/",
        "/admin/organizations/membership/",
        f"/admin/organizations/membership/?organization__id__exact={a.org.pk}",
        "/admin/calls/auditevent/",
        f"/admin/calls/auditevent/?clinic={a.org.pk}",
        f"/admin/calls/auditevent/?q={a.call.pk}",
        "/admin/autocomplete/?app_label=calls&model_name=escalation&field_name=call&term=",
        f"/admin/autocomplete/?app_label=calls&model_name=escalation&field_name=call&term={a.canaries[0]}",
        "/admin/autocomplete/?app_label=organizations&model_name=membership&field_name=organization&term=",
        "/admin/autocomplete/?app_label=organizations&model_name=membership&field_name=user&term=",
        "/admin/",
    ]
    for url in urls:
        response = client.get(url, follow=True)
        assert response.status_code in (200, 403, 404), (url, response.status_code)
        text = _strip_echo(response.content.decode(), url, None)
        leaked = _leaks(text, a) + [name for name in (a.admin.username, a.staff.username) if name in text]
        assert not leaked, f"{url} leaked {leaked}"


OPERATOR_ONLY_PAGES = [
    (model, suffix)
    for model in ("auth/user", "auth/group", "authtoken/tokenproxy")
    for suffix in [*CONSOLE_SUFFIXES, *(["password/"] if model == "auth/user" else [])]
]
# Django's own history_view looks the object up before checking permissions (a missing id redirected, an existing
# one answered 403: an oracle for user ids); organizations/admin_operator.py answers 404 for both.


@pytest.mark.parametrize(("model", "suffix"), OPERATOR_ONLY_PAGES)
def test_operator_only_console_pages_refuse_clinic_admins_alike_for_any_id(world, model, suffix):
    a, b = world
    client = Client()
    client.force_login(b.admin)
    ids = {
        "auth/user": (a.admin.pk, 999_999),
        "auth/group": (1, 999_999),
        "authtoken/tokenproxy": (token_header(a.admin)["Authorization"].split()[1], "0" * 40),
    }[model]
    real, missing = (client.get(f"/admin/{model}/{object_id}/{suffix}", follow=True) for object_id in ids)
    assert real.status_code in (403, 404)
    assert real.status_code == missing.status_code  # no oracle: an existing id looks like a missing one
    assert a.admin.username not in real.content.decode()


# ---------------------------------------------------------------------------------------------------------------------
# Board socket
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_clinic_a_board_socket_never_receives_clinic_b_escalations(world):
    from calls.services import escalation_create
    from conftest import make_call

    a, b = world
    cookie = await database_sync_to_async(lambda: _session_cookie(a.staff))()
    socket = WebsocketCommunicator(
        _asgi(), "/ws/board/", headers=[(b"origin", b"http://localhost"), (b"cookie", f"sessionid={cookie}".encode())]
    )
    connected, _ = await socket.connect()
    assert connected
    try:
        snapshot = await socket.receive_json_from(timeout=30)
        assert snapshot["type"] == "snapshot"
        assert str(b.escalation.pk) not in json.dumps(snapshot) and str(a.escalation.pk) in json.dumps(snapshot)

        @database_sync_to_async
        def b_escalations(count: int) -> list[str]:
            ids = []
            for _ in range(count):
                ids.append(
                    str(
                        escalation_create(
                            call=make_call(b.org), level="emergency", source="keyword", reason="chest_pain"
                        )[0].pk
                    )
                )
            return ids

        foreign = await b_escalations(40)
        layer = get_channel_layer()
        # Forged group messages naming B's escalations, sent to A's own group: re-read under A's scope, dropped.
        for escalation_id in foreign:
            await layer.group_send(
                board_group(a.org.pk),
                {
                    "type": "escalation.changed",
                    "escalation_id": escalation_id,
                    "call_id": str(uuid.uuid4()),
                    "event": "created",
                },
            )
        assert await socket.receive_nothing(timeout=1.0)
        # ...while A's own escalation does arrive on the same socket (the socket was listening).
        mine = await database_sync_to_async(
            lambda: escalation_create(
                call=make_call(a.org), level="emergency", source="keyword", reason="stroke_signs"
            )[0]
        )()
        await layer.group_send(
            board_group(a.org.pk),
            {
                "type": "escalation.changed",
                "escalation_id": str(mine.pk),
                "call_id": str(mine.call_id),
                "event": "created",
            },
        )
        # Wait for A's own push (generously: a loaded machine re-reads slowly), then for anything that trails it.
        received: list[dict] = []
        while str(mine.pk) not in json.dumps(received):
            received.append(await socket.receive_json_from(timeout=30))
        while not await socket.receive_nothing(timeout=1.0):
            received.append(await socket.receive_json_from(timeout=30))
        text = json.dumps(received)
        assert str(mine.pk) in text
        assert not any(escalation_id in text for escalation_id in foreign)
        assert not any(canary in text for canary in b.canaries)
    finally:
        await socket.disconnect()


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _asgi():
    from voiceagent.asgi import application

    return application


# ---------------------------------------------------------------------------------------------------------------------
# Completeness: a new id-bearing endpoint fails here until it is in the matrix.
# ---------------------------------------------------------------------------------------------------------------------

ID_NAME = re.compile(r"(^|_)(id|ids|pk|organization|org|call|escalation)$")


def _schema_id_inputs(schema: dict) -> set[tuple[str, str]]:
    """(operationId, "where:name") for every path/query parameter and JSON body property that can carry an id."""
    components = schema.get("components", {}).get("schemas", {})

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = components[node["$ref"].rsplit("/", 1)[-1]]
        return node

    found = set()
    for _path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            op = operation["operationId"]
            for parameter in operation.get("parameters", []):
                fmt = parameter.get("schema", {}).get("format")
                if parameter["in"] == "path" or fmt == "uuid" or ID_NAME.search(parameter["name"]):
                    found.add((op, f"{parameter['in']}:{parameter['name']}"))
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                body = resolve(media.get("schema", {}))
                for name, prop in body.get("properties", {}).items():
                    prop = resolve(prop)
                    if prop.get("format") == "uuid" or ID_NAME.search(name):
                        found.add((op, f"body:{name}"))
    return found


def _covered() -> set[tuple[str, str]]:
    return OTHER_COVERED | {
        (attack.operation, where) for attack in STAFF_ATTACKS + CALLER_ATTACKS for where in attack.covers
    }


def test_every_id_bearing_api_operation_is_in_the_matrix(db):
    schema = Client().get("/api/schema/", headers={"Accept": "application/json"}).json()
    inputs = _schema_id_inputs(schema)
    assert ("calls_retrieve", "path:call_id") in inputs  # the enumeration itself works
    missing = sorted(inputs - _covered() - NOT_TENANT_IDS)
    assert not missing, f"id-bearing inputs not in the cross-tenant matrix: {missing}"


def _routes(patterns, prefix: str = "") -> list[str]:
    out = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            out += _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            out.append(prefix + str(pattern.pattern))
    return out


def _route_is_covered(route: str) -> bool:
    if any(route.startswith(allowed) for allowed in ROUTES_WITHOUT_TENANT_IDS):
        return True
    if route in (
        "admin/organizations/organization/<path:object_id>/team/",
        "console/calls/<uuid:call_id>/recording.wav",
        "console/calls/<uuid:call_id>/call-recording.wav",
    ):
        return True  # the team page and the recording proxy, in _console_urls
    console = re.match(r"^admin/(\w+/\w+)/<path:object_id>/(.*)$", route)
    if console:
        model, rest = console.groups()
        return model in CONSOLE_OBJECTS and (
            rest in CONSOLE_SUFFIXES or (rest == "do/<slug:button>/" and model in CONSOLE_BUTTONS)
        )
    if route == "admin/r/<path:content_type_id>/<path:object_id>/":
        return True  # view_on_site, in _console_urls
    if route in ("admin/home/<uuid:organization_id>/", "admin/home/<uuid:organization_id>/export/"):
        return True  # the clinic home page and its export, in _console_urls
    api_paths = {
        "api/calls/<uuid:call_id>": "calls_retrieve",
        "api/calls/<uuid:call_id>/escalate": "call_escalate",
        "api/calls/<uuid:call_id>/deescalate": "call_deescalate",
        "api/escalations/<uuid:escalation_id>/acknowledge": "escalation_acknowledge",
        "api/escalations/<uuid:escalation_id>/resolve": "escalation_resolve",
        "api/org/config/<str:org_id>": "org_config_retrieve",  # by id or by slug
    }
    if route.rstrip("/") == "api/calls/<uuid:call_id>/transcript":
        return "call_transcript" in {attack.operation for attack in CALLER_ATTACKS}
    if route.rstrip("/") in api_paths:
        return api_paths[route.rstrip("/")] in {attack.operation for attack in STAFF_ATTACKS}
    caller = re.match(r"^api/\^calls/\(\?P<call_id>.*\)/(realtime|events)/\?\$$", route)
    if caller:
        return {"realtime": "realtime_attach", "events": "call_events"}[caller.group(1)] in {
            attack.operation for attack in CALLER_ATTACKS
        }
    return False


def test_every_url_with_a_parameter_is_in_the_matrix_or_named_as_tenant_free():
    routes = _routes(get_resolver().url_patterns)
    with_params = [route for route in routes if "<" in route or "(?P<" in route]
    assert "admin/calls/call/<path:object_id>/change/" in with_params  # the enumeration itself works
    missing = [route for route in with_params if not _route_is_covered(route)]
    assert not missing, f"routes with parameters not in the cross-tenant matrix: {missing}"


def test_every_socket_route_is_covered():
    from calls.routing import websocket_urlpatterns as board
    from realtime.routing import websocket_urlpatterns as media

    routes = {str(pattern.pattern) for pattern in [*board, *media]}
    # /ws/board/ is covered above; /twilio/media carries no clinic id in its URL (its call id and one-time token
    # arrive in the signed `start` message and are tested in realtime/tests/test_twilio_stream_tokens.py).
    assert routes == {"ws/board/", "twilio/media"}, f"a new socket route needs a cross-tenant test: {routes}"


@pytest.mark.django_db
def test_a_sip_call_lands_in_the_clinic_whose_number_was_dialled_and_the_answer_names_no_clinic(settings):
    """POST /openai/webhook carries no clinic id: the dialled number alone picks the clinic (one number table for
    Twilio and SIP), and the answer says only what was done."""
    from django.test import Client

    from calls.models import Call
    from conftest import make_org
    from fakes.openai.webhooks import encode, incoming_call_event, new_secret, signed_headers
    from fakes.twilio.testing import add_number, open_around_the_clock

    secret = new_secret()
    settings.OPENAI_WEBHOOK_SECRET = secret
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # the accept fails fast; the call row is what matters here
    clinic_a, clinic_b = make_org("sip-a"), make_org("sip-b")
    add_number(clinic_a, "+14155550121")
    add_number(clinic_b, "+14155550122")
    for clinic in (clinic_a, clinic_b):
        open_around_the_clock(clinic)
    body = encode(incoming_call_event("rtc_for_a", to="+14155550121", caller="+16175550123"))
    headers = {k: v for k, v in signed_headers(secret, body).items() if k != "content-type"}
    response = Client().post("/openai/webhook", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    call = Call.objects.get(openai_call_id="rtc_for_a")
    assert call.organization == clinic_a and not Call.objects.filter(organization=clinic_b).exists()
    text = response.content.decode()
    for marker in (str(clinic_a.pk), str(clinic_b.pk), clinic_a.name, clinic_b.name, str(call.pk)):
        assert marker not in text
