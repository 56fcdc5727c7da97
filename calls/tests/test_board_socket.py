"""The board's WebSocket: session-authenticated before accept, origin-checked, scoped to the user's clinics, with
a database snapshot on every connect."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from calls.models import Escalation
from calls.notifications import board_group
from calls.services import escalation_acknowledge, escalation_create, escalation_resolve
from conftest import make_call, make_org, make_user
from organizations.models import Membership
from voiceagent.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@database_sync_to_async
def _setup():
    clinic_a, clinic_b = make_org("clinic-a"), make_org("clinic-b")
    staff_a = make_user("sam", clinic_a, Membership.Role.STAFF)
    staff_b = make_user("betty", clinic_b, Membership.Role.STAFF)
    return clinic_a, clinic_b, staff_a, staff_b


@database_sync_to_async
def _escalate(clinic, level="emergency", reason="chest_pain") -> Escalation:
    return escalation_create(call=make_call(clinic), level=level, source="keyword", reason=reason)[0]


async def _socket(user=None, origin: str = "http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())]
    if user is not None:
        cookie = await database_sync_to_async(_session_cookie)(user)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/board/", headers=headers)


async def _refused(communicator: WebsocketCommunicator) -> bool:
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return not connected


async def test_an_anonymous_socket_is_refused():
    await _setup()
    assert await _refused(await _socket())


async def test_a_user_of_no_clinic_is_refused():
    await _setup()
    drifter = await database_sync_to_async(make_user)("drifter")
    assert await _refused(await _socket(drifter))


async def test_an_inactive_member_is_refused():
    _a, _b, staff_a, _sb = await _setup()
    staff_a.is_active = False
    await database_sync_to_async(staff_a.save)()
    assert await _refused(await _socket(staff_a))


async def test_a_foreign_origin_is_refused():
    _a, _b, staff_a, _sb = await _setup()
    assert await _refused(await _socket(staff_a, origin="https://evil.example"))


async def test_clinic_a_staff_get_a_snapshot_and_live_changes_of_clinic_a_only():
    clinic_a, clinic_b, staff_a, _staff_b = await _setup()
    earlier = await _escalate(clinic_a, "urgent", "bleeding")
    await _escalate(clinic_b, "emergency", "stroke_signs")

    communicator = await _socket(staff_a)
    try:
        connected, _ = await communicator.connect()
        assert connected
        snapshot = await communicator.receive_json_from(timeout=3)
        assert snapshot["type"] == "snapshot"
        assert [item["id"] for item in snapshot["escalations"]] == [str(earlier.pk)]

        emergency = await _escalate(clinic_a)
        message = await communicator.receive_json_from(timeout=3)
        assert (message["type"], message["event"]) == ("escalation", "escalation.created")
        assert message["escalation"]["id"] == str(emergency.pk)
        assert message["escalation"]["level"] == "emergency" and message["escalation"]["status"] == "open"

        await _escalate(clinic_b, "emergency", "overdose")  # clinic B's news never reaches clinic A's board
        assert await communicator.receive_nothing(timeout=0.5)

        await database_sync_to_async(escalation_acknowledge)(escalation=emergency, user=staff_a)
        update = await communicator.receive_json_from(timeout=3)
        assert update["event"] == "escalation.updated"
        assert update["escalation"]["status"] == "acknowledged" and update["escalation"]["acknowledged_by"] == "sam"

        await database_sync_to_async(escalation_resolve)(escalation=emergency, user=staff_a)
        resolved = await communicator.receive_json_from(timeout=3)
        assert resolved["escalation"]["status"] == "resolved"
    finally:
        await communicator.disconnect()


async def test_clinic_b_staff_never_see_clinic_a():
    clinic_a, _clinic_b, _staff_a, staff_b = await _setup()
    await _escalate(clinic_a)
    communicator = await _socket(staff_b)
    try:
        assert (await communicator.connect())[0]
        assert (await communicator.receive_json_from(timeout=3))["escalations"] == []
        await _escalate(clinic_a, "human", "human_request")
        assert await communicator.receive_nothing(timeout=0.5)
    finally:
        await communicator.disconnect()


async def test_a_message_naming_another_clinics_escalation_pushes_nothing():
    clinic_a, clinic_b, staff_a, _staff_b = await _setup()
    communicator = await _socket(staff_a)
    try:
        assert (await communicator.connect())[0]
        await communicator.receive_json_from(timeout=3)
        foreign = await _escalate(clinic_b)
        # Even if a message for B's escalation landed in A's group, the consumer's scoped re-read drops it.
        await get_channel_layer().group_send(
            board_group(clinic_a.pk),
            {"type": "escalation.changed", "escalation_id": str(foreign.pk), "call_id": "x", "event": "forged"},
        )
        assert await communicator.receive_nothing(timeout=0.5)
    finally:
        await communicator.disconnect()


async def test_a_reconnecting_socket_catches_up_from_the_database():
    clinic_a, _b, staff_a, _sb = await _setup()
    first = await _socket(staff_a)
    assert (await first.connect())[0]
    await first.receive_json_from(timeout=3)
    await first.disconnect()

    missed = await _escalate(clinic_a)  # while nobody was listening (a Redis outage looks the same)
    second = await _socket(staff_a)
    try:
        assert (await second.connect())[0]
        snapshot = await second.receive_json_from(timeout=3)
        assert [item["id"] for item in snapshot["escalations"]] == [str(missed.pk)]
        await second.send_json_to({"type": "refresh"})
        assert (await second.receive_json_from(timeout=3))["type"] == "snapshot"
    finally:
        await second.disconnect()


async def test_when_the_channel_layer_is_down_the_socket_is_refused_so_the_page_retries(monkeypatch):
    _a, _b, staff_a, _sb = await _setup()

    async def down(self, group, channel):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(type(get_channel_layer()), "group_add", down)
    assert await _refused(await _socket(staff_a))


async def test_the_operator_hears_every_clinic():
    clinic_a, clinic_b, _sa, _sb = await _setup()
    operator = await database_sync_to_async(lambda: make_user("op-user"))()
    operator.is_superuser = True
    await database_sync_to_async(operator.save)()
    communicator = await _socket(operator)
    try:
        assert (await communicator.connect())[0]
        await communicator.receive_json_from(timeout=3)
        for clinic in (clinic_a, clinic_b):
            escalation = await _escalate(clinic)
            assert (await communicator.receive_json_from(timeout=3))["escalation"]["id"] == str(escalation.pk)
    finally:
        await communicator.disconnect()
