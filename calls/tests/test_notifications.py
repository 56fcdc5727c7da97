"""The escalation outbox: rows written with the escalation, delivered to the clinic's board group after commit,
retried with back-off by the worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time

import pytest
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.db import OperationalError, transaction
from django.utils import timezone

from calls import notifications
from calls.models import Escalation, Notification
from calls.services import escalation_acknowledge, escalation_create, escalation_resolve
from conftest import make_call, make_org, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def inline_delivery(monkeypatch):
    """Run the after-commit attempt on the test's thread, so a test can look at its outcome right away."""
    monkeypatch.setattr(notifications, "_submit", lambda fn, *args: fn(*args))


def _emergency(call):
    escalation, created = escalation_create(
        call=call, level=Escalation.Level.EMERGENCY, source=Escalation.Source.KEYWORD, reason="chest_pain"
    )
    assert created
    return escalation


@pytest.fixture
def listen():
    """Subscribe test channels to groups and read them, all on one event loop (channels-redis binds a channel's
    receive buffer to the loop that first reads it)."""
    loop = asyncio.new_event_loop()
    layer = get_channel_layer()

    class Listener:
        def channel(self, group: str) -> str:
            async def subscribe():
                name = await layer.new_channel()
                await layer.group_add(group, name)
                return name

            return loop.run_until_complete(subscribe())

        def receive(self, channel: str, timeout: float = 2.0) -> dict | None:
            async def receive():
                try:
                    return await asyncio.wait_for(layer.receive(channel), timeout)
                except TimeoutError:
                    return None

            return loop.run_until_complete(receive())

    yield Listener()
    loop.close()


class TestOutboxRows:
    def test_a_new_escalation_writes_one_board_row_in_its_transaction(self, org_a, django_capture_on_commit_callbacks):
        call = make_call(org_a)
        with django_capture_on_commit_callbacks() as callbacks:
            escalation = _emergency(call)
            rows = list(Notification.objects.filter(escalation=escalation))
        assert [(row.channel, row.event, row.status) for row in rows] == [("board", "escalation.created", "pending")]
        assert rows[0].organization_id == org_a.pk
        assert len(callbacks) == 1  # delivery is scheduled for after commit, not run inside the transaction

    def test_a_clinic_with_a_webhook_also_gets_a_webhook_row(self, db):
        clinic = make_org("hooked", webhook_url="https://hooks.clinic.example/escalations")
        escalation = _emergency(make_call(clinic))
        channels = sorted(escalation.notifications.values_list("channel", flat=True))
        assert channels == ["board", "webhook"]

    def test_a_rolled_back_escalation_leaves_no_rows_and_schedules_nothing(
        self, org_a, django_capture_on_commit_callbacks
    ):
        call = make_call(org_a)
        with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
            _emergency(call)
            raise RuntimeError("the surrounding work failed")
        assert not Escalation.objects.exists()
        assert not Notification.objects.exists()
        assert callbacks == []

    def test_a_repeated_trigger_of_the_same_level_notifies_once(self, org_a):
        call = make_call(org_a)
        _emergency(call)
        _again, created = escalation_create(call=call, level="emergency", source="keyword", reason="chest_pain")
        assert not created
        assert Notification.objects.count() == 1

    def test_acknowledge_and_resolve_notify_the_board_once_each(self, org_a, staff_a):
        escalation = _emergency(make_call(org_a))
        escalation_acknowledge(escalation=escalation, user=staff_a)
        escalation_acknowledge(escalation=escalation, user=staff_a)  # no change, no notification
        escalation_resolve(escalation=escalation, user=staff_a, note="called back")
        escalation_resolve(escalation=escalation, user=staff_a)
        events = list(escalation.notifications.order_by("created_at").values_list("channel", "event"))
        assert events == [
            ("board", "escalation.created"),
            ("board", "escalation.updated"),
            ("board", "escalation.updated"),
        ]


@pytest.mark.django_db(transaction=True)
class TestBoardDelivery:
    def test_after_commit_the_clinic_group_gets_ids_only_and_the_row_is_delivered(self, inline_delivery, listen):
        clinic_a, clinic_b = make_org("clinic-a"), make_org("clinic-b")
        channel_a = listen.channel(notifications.board_group(clinic_a.pk))
        channel_b = listen.channel(notifications.board_group(clinic_b.pk))
        call = make_call(clinic_a, caller_name="Jane Doe", caller_phone="+14155550199")
        escalation = _emergency(call)

        message = listen.receive(channel_a)
        row = escalation.notifications.get(channel="board")
        assert message == {
            "type": "escalation.changed",
            "escalation_id": str(escalation.pk),
            "call_id": str(call.pk),
            "event": "escalation.created",
            "notification_id": str(row.pk),
        }
        assert listen.receive(channel_b, timeout=0.3) is None  # clinic B's board hears nothing of clinic A
        row = escalation.notifications.get()
        assert row.status == Notification.Status.DELIVERED and row.delivered_at and row.attempts == 1

    def test_nothing_is_sent_before_the_transaction_commits(self, inline_delivery, listen):
        clinic = make_org("clinic-a")
        channel = listen.channel(notifications.board_group(clinic.pk))
        call = make_call(clinic)
        with transaction.atomic():
            _emergency(call)
            assert listen.receive(channel, timeout=0.2) is None
        assert listen.receive(channel) is not None

    def test_the_real_background_thread_delivers_after_commit(self, listen, monkeypatch, sqlite_readers_do_not_lock):
        monkeypatch.setattr(notifications, "_inline_only", lambda: False)  # a thread even on SQLite in memory
        clinic = make_org("clinic-a")
        channel = listen.channel(notifications.board_group(clinic.pk))
        escalation = _emergency(make_call(clinic))
        status = None
        for _ in range(250):  # until the thread recorded its attempt
            try:
                status = escalation.notifications.get().status
            except OperationalError:  # SQLite's shared cache reports the thread's lock for a moment
                status = None
            if status == "delivered":
                break
            time.sleep(0.02)
        assert status == "delivered"
        message = listen.receive(channel)
        assert message is not None and message["escalation_id"] == str(escalation.pk)

    def test_on_an_in_memory_sqlite_database_the_attempt_runs_on_the_committing_thread(self, monkeypatch):
        monkeypatch.setattr(notifications, "_inline_only", lambda: True)
        escalation = _emergency(make_call(make_org("clinic-a")))
        assert escalation.notifications.get().status == "delivered"  # already, with no thread to wait for

    def test_a_frozen_channel_layer_is_cut_off_and_left_pending_for_the_worker(self, inline_delivery, monkeypatch):
        class FrozenLayer:
            async def group_send(self, group, message):
                await asyncio.sleep(30)

        monkeypatch.setattr(notifications, "get_channel_layer", lambda: FrozenLayer())
        escalation = _emergency(make_call(make_org("clinic-a")))
        row = escalation.notifications.get()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "TimeoutError")
        assert row.next_attempt_at > timezone.now()

        monkeypatch.undo()
        later = timezone.now() + dt.timedelta(seconds=6)
        assert notifications.deliver_due(now=later)["delivered"] == 1
        row.refresh_from_db()
        assert row.status == "delivered" and row.attempts == 2


class TestRetries:
    def test_board_pushes_retry_every_few_seconds_then_give_up_to_the_snapshot(self, org_a, monkeypatch):
        class DeadLayer:
            async def group_send(self, group, message):
                raise ConnectionError("redis is down")

        monkeypatch.setattr(notifications, "get_channel_layer", lambda: DeadLayer())
        escalation = _emergency(make_call(org_a))
        row = escalation.notifications.get()
        now = timezone.now()
        delays = []
        for _ in range(len(notifications.BOARD_BACKOFF_SECONDS) + 1):
            notifications.deliver_due(now=now)
            row.refresh_from_db()
            if row.status == "pending":
                delays.append(round((row.next_attempt_at - now).total_seconds()))
                assert notifications.deliver_due(now=row.next_attempt_at - dt.timedelta(seconds=1)) == {
                    "delivered": 0,
                    "pending": 0,
                    "failed": 0,
                }  # not due yet
                now = row.next_attempt_at
        # Fresh or not at all: about a minute of quick retries (a reconnecting board reads the database anyway).
        assert delays == [2, 2, 3, 3, 5, 5, 10, 10, 20]
        assert (row.status, row.attempts, row.last_error) == ("failed", 10, "ConnectionError")
        assert notifications.deliver_due(now=now + dt.timedelta(days=1))["failed"] == 0  # given up for good

    def test_the_worker_command_delivers_what_is_pending(self, org_a, django_capture_on_commit_callbacks):
        escalation = _emergency(make_call(org_a))  # no on_commit here: the immediate attempt never ran
        out = io.StringIO()
        call_command("deliver_notifications", "--once", stdout=out)
        assert "delivered=1" in out.getvalue()
        assert escalation.notifications.get().status == "delivered"

    def test_a_claimed_row_is_not_claimed_twice_while_its_lease_runs(self, org_a):
        _emergency(make_call(org_a))
        first = notifications._claim()
        assert len(first) == 1
        assert notifications._claim() == []
        assert len(notifications._claim(now=timezone.now() + notifications.CLAIM_LEASE)) == 1

    def test_old_delivered_rows_are_pruned_but_failed_ones_kept(self, org_a):
        escalation = _emergency(make_call(org_a))
        escalation_acknowledge(escalation=escalation, user=make_user("nina", org_a))
        long_ago = timezone.now() - dt.timedelta(days=40)
        rows = list(escalation.notifications.order_by("created_at"))
        Notification.objects.filter(pk=rows[0].pk).update(status="delivered", delivered_at=long_ago)
        Notification.objects.filter(pk=rows[1].pk).update(status="failed")
        assert notifications.notifications_prune() == 1
        assert list(escalation.notifications.values_list("status", flat=True)) == ["failed"]
