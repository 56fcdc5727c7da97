"""The board feed: with the in-memory channel layer (no REDIS_URL), an open board polls the outbox, so an escalation
whose board rows were written by another process (which reached only its own in-memory layer) still arrives, once,
and only on the boards of its clinic."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from calls.models import Escalation, Notification
from calls.notifications import board_group
from conftest import make_call, make_org, make_user
from organizations.models import Membership
from voiceagent.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ARRIVAL_TIMEOUT = 30  # a hang guard on a loaded machine: the test asserts arrival, not speed


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    """The embedded default (no REDIS_URL), whatever this run's environment says: CI sets REDIS_URL, and with a
    shared layer the board does not poll (group sends reach every process)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.BOARD_FEED_POLL_SECONDS = 0.5


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def _board(user) -> WebsocketCommunicator:
    cookie = await database_sync_to_async(_session_cookie)(user)
    headers = [(b"origin", b"http://localhost"), (b"cookie", f"sessionid={cookie}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/board/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=ARRIVAL_TIMEOUT))["type"] == "snapshot"
    return communicator


@database_sync_to_async
def _written_elsewhere(clinic, reason: str = "chest_pain") -> tuple[Escalation, Notification]:
    """What another process leaves behind: the escalation and its board row, and no group send in this process."""
    call = make_call(clinic, caller_name="Jane Roe", caller_phone="+14155550199")
    escalation = Escalation.objects.create(
        call=call, organization=clinic, level="emergency", source="keyword", reason=reason
    )
    row = Notification.objects.create(
        organization=clinic,
        escalation=escalation,
        channel=Notification.Channel.BOARD,
        event="escalation.created",
        next_attempt_at=escalation.created_at,
        status=Notification.Status.DELIVERED,  # its own process delivered it to its own (empty) in-memory layer
        delivered_at=escalation.created_at,
    )
    return escalation, row


@pytest.fixture
def polled(settings):
    settings.BOARD_FEED_POLL_SECONDS = 0.1


async def test_an_escalation_written_by_another_process_reaches_the_open_board(polled):
    clinic_a = await database_sync_to_async(make_org)("clinic-a")
    staff = await database_sync_to_async(make_user)("sam", clinic_a, Membership.Role.STAFF)
    board = await _board(staff)
    try:
        escalation, _row = await _written_elsewhere(clinic_a)
        message = await board.receive_json_from(timeout=ARRIVAL_TIMEOUT)
        assert message["type"] == "escalation"
        assert message["event"] == "escalation.created"
        assert message["escalation"]["id"] == str(escalation.pk)
        assert await board.receive_nothing(timeout=0.5)  # pushed once, not on every poll
    finally:
        await board.disconnect()


async def test_the_feed_never_shows_another_clinics_escalation(polled):
    clinic_a = await database_sync_to_async(make_org)("clinic-a")
    clinic_b = await database_sync_to_async(make_org)("clinic-b")
    staff_a = await database_sync_to_async(make_user)("sam", clinic_a, Membership.Role.STAFF)
    board = await _board(staff_a)
    try:
        await _written_elsewhere(clinic_b)
        ours, _row = await _written_elsewhere(clinic_a)
        message = await board.receive_json_from(timeout=ARRIVAL_TIMEOUT)
        assert message["escalation"]["id"] == str(ours.pk)
        assert await board.receive_nothing(timeout=0.5)
    finally:
        await board.disconnect()


async def test_a_change_heard_both_through_the_layer_and_the_feed_is_pushed_once(polled):
    clinic_a = await database_sync_to_async(make_org)("clinic-a")
    staff = await database_sync_to_async(make_user)("sam", clinic_a, Membership.Role.STAFF)
    board = await _board(staff)
    try:
        escalation, row = await _written_elsewhere(clinic_a)
        assert (await board.receive_json_from(timeout=ARRIVAL_TIMEOUT))["escalation"]["id"] == str(escalation.pk)
        # The same change arriving late over the channel layer (this process's own immediate attempt) is skipped.
        await get_channel_layer().group_send(
            board_group(clinic_a.pk),
            {
                "type": "escalation.changed",
                "escalation_id": str(escalation.pk),
                "call_id": str(escalation.call_id),
                "event": "escalation.created",
                "notification_id": str(row.pk),
            },
        )
        assert await board.receive_nothing(timeout=0.5)
    finally:
        await board.disconnect()


async def test_with_the_poll_turned_off_only_the_channel_layer_pushes(settings):
    settings.BOARD_FEED_POLL_SECONDS = 0
    clinic_a = await database_sync_to_async(make_org)("clinic-a")
    staff = await database_sync_to_async(make_user)("sam", clinic_a, Membership.Role.STAFF)
    board = await _board(staff)
    try:
        await _written_elsewhere(clinic_a)
        await asyncio.sleep(0.5)
        assert await board.receive_nothing(timeout=0.5)
    finally:
        await board.disconnect()
