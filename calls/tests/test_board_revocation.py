"""A board socket ends with its user's right to listen: logging out, losing the clinic's membership, deactivation
or a password change close it within BOARD_RECHECK_SECONDS, and no push or refresh reaches it before that."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import Client

from calls.models import Escalation
from calls.services import escalation_create
from conftest import make_call, make_org, make_user
from organizations.models import Membership
from organizations.services import membership_remove, membership_set
from voiceagent.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _quick_recheck(settings):
    settings.BOARD_RECHECK_SECONDS = 0.3


@database_sync_to_async
def _setup():
    clinic_a, clinic_b = make_org("clinic-a"), make_org("clinic-b")
    staff_a = make_user("sam", clinic_a, Membership.Role.STAFF)
    client = Client()
    client.force_login(staff_a)
    return clinic_a, clinic_b, staff_a, client


@database_sync_to_async
def _escalate(clinic) -> Escalation:
    return escalation_create(call=make_call(clinic), level="emergency", source="keyword", reason="chest_pain")[0]


async def _open(client: Client) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost"), (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/board/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=3))["type"] == "snapshot"
    return communicator


async def _closed_with(communicator: WebsocketCommunicator, timeout: float = 3) -> int:
    """The close code; any data frame before the close (a push, a snapshot) fails the test."""
    message = await communicator.receive_output(timeout=timeout)
    assert message["type"] == "websocket.close", message
    return message["code"]


async def _logout(client: Client) -> None:
    await database_sync_to_async(client.logout)()


async def _deactivate(client: Client, user) -> None:
    user.is_active = False
    await database_sync_to_async(user.save)()


@pytest.mark.parametrize("revoke", ["logout", "deactivate"])
async def test_a_signed_out_or_deactivated_users_socket_closes_without_a_timer_push(revoke):
    _a, _b, staff_a, client = await _setup()
    communicator = await _open(client)
    try:
        await (_logout(client) if revoke == "logout" else _deactivate(client, staff_a))
        # Nothing happens on the board: the periodic re-check alone closes the socket.
        assert await _closed_with(communicator) == 4401
    finally:
        await communicator.disconnect()


async def test_losing_the_membership_closes_the_socket():
    clinic_a, _b, staff_a, client = await _setup()
    communicator = await _open(client)
    try:
        await database_sync_to_async(membership_remove)(user=staff_a, organization=clinic_a)
        assert await _closed_with(communicator) == 4403
    finally:
        await communicator.disconnect()


@pytest.mark.parametrize("revoke", ["logout", "deactivate", "membership"])
async def test_no_escalation_or_snapshot_reaches_a_revoked_socket_before_the_timer(settings, revoke):
    settings.BOARD_RECHECK_SECONDS = 60  # the timer does not help here: the push and the refresh check themselves
    clinic_a, _b, staff_a, client = await _setup()
    communicator = await _open(client)
    try:
        if revoke == "logout":
            await _logout(client)
        elif revoke == "deactivate":
            await _deactivate(client, staff_a)
        else:
            await database_sync_to_async(membership_remove)(user=staff_a, organization=clinic_a)

        await _escalate(clinic_a)
        assert await _closed_with(communicator) in (4401, 4403)
    finally:
        await communicator.disconnect()


async def test_a_refresh_after_logout_gets_no_snapshot(settings):
    settings.BOARD_RECHECK_SECONDS = 60
    _a, _b, _staff_a, client = await _setup()
    communicator = await _open(client)
    try:
        await _logout(client)
        await communicator.send_json_to({"type": "refresh"})
        assert await _closed_with(communicator) == 4401
    finally:
        await communicator.disconnect()


async def test_a_session_that_expired_in_the_database_closes_the_socket():
    _a, _b, _staff_a, client = await _setup()
    communicator = await _open(client)
    try:
        await database_sync_to_async(Session.objects.all().delete)()  # what the idle timeout amounts to
        assert await _closed_with(communicator) == 4401
    finally:
        await communicator.disconnect()


async def test_a_member_of_two_clinics_who_leaves_one_keeps_hearing_the_other_only():
    clinic_a, clinic_b, staff_a, client = await _setup()
    await database_sync_to_async(membership_set)(user=staff_a, organization=clinic_b, role=Membership.Role.STAFF)
    communicator = await _open(client)
    try:
        await database_sync_to_async(membership_remove)(user=staff_a, organization=clinic_a)
        await _escalate(clinic_a)
        kept = await _escalate(clinic_b)
        message = await communicator.receive_json_from(timeout=3)
        assert message["escalation"]["id"] == str(kept.pk)
        assert await communicator.receive_nothing(timeout=0.8)  # A's escalation never arrives, the socket stays
    finally:
        await communicator.disconnect()


async def test_a_frame_that_is_not_json_gets_an_error_frame_and_the_socket_stays_open():
    _a, _b, _staff_a, client = await _setup()
    communicator = await _open(client)
    try:
        await communicator.send_to(text_data="this is {not json")
        error = await communicator.receive_json_from(timeout=3)
        assert error["type"] == "error" and error["code"] == "invalid_json"
        await communicator.send_to(bytes_data=b"\x00\x01")
        assert (await communicator.receive_json_from(timeout=3))["type"] == "error"
        await communicator.send_to(text_data="[1, 2]")  # JSON, but not a message
        assert (await communicator.receive_json_from(timeout=3))["code"] == "invalid_message"
        await communicator.send_json_to({"type": "refresh"})
        assert (await communicator.receive_json_from(timeout=3))["type"] == "snapshot"
    finally:
        await communicator.disconnect()
