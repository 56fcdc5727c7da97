"""Shared test personas: clinic A (admin, staff), clinic B (admin, staff) and an operator (superuser).

Every tenancy test is written against these: A's people must never see or change B's data and vice versa.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from calls.models import Call
from calls.services import call_start
from organizations.models import Membership, Organization
from organizations.services import membership_set, organization_create

PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - test persona password


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Throttle counters live in the cache: each test starts with fresh windows.
    cache.clear()
    # Tests run with DEBUG off, whose manifest storage needs `collectstatic`; pages only need the URLs.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # DEBUG off would make the API docs and the demo page staff-only; the tests of those pages read them openly
    # (core/tests/test_production_exposure.py checks the production default).
    settings.PUBLIC_API_DOCS = True
    settings.PUBLIC_DEMO_PAGE = True


@pytest.fixture(autouse=True)
def _worker_threads_share_the_test_connection():
    """Caller-side views run their ORM work on worker threads (core.threads); a test's data lives in its one
    uncommitted connection, so those threads use it, as Django's live test server does."""
    from django.db import connections

    from core import threads

    shared = {alias: connections[alias] for alias in connections}
    for connection in shared.values():
        connection.inc_thread_sharing()
    threads.connections_override.update(shared)
    yield
    threads.connections_override.clear()
    for connection in shared.values():
        connection.dec_thread_sharing()


def make_org(slug: str, **config) -> Organization:
    config.setdefault("timezone", "America/New_York")
    config.setdefault("escalation_phone", "+14155550100")
    config.setdefault("allowed_origins", [f"https://{slug}.example"])
    return organization_create(name=slug.replace("-", " ").title(), slug=slug, **config)


def make_user(username: str, org: Organization | None = None, role: str = Membership.Role.STAFF):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, email=f"{username}@example.com")
    if org is not None:
        membership_set(user=user, organization=org, role=role)
        user.refresh_from_db()
    return user


def make_call(org: Organization, *, channel: str = Call.Channel.WEB, minutes_ago: int = 5, **kwargs) -> Call:
    call, _token = call_start(
        organization=org, channel=channel, started_at=timezone.now() - dt.timedelta(minutes=minutes_ago), **kwargs
    )
    return call


@pytest.fixture
def org_a(db) -> Organization:
    return make_org("clinic-a")


@pytest.fixture
def org_b(db) -> Organization:
    return make_org("clinic-b", timezone="America/Los_Angeles")


@pytest.fixture
def admin_a(org_a):
    return make_user("alice", org_a, Membership.Role.ADMIN)


@pytest.fixture
def staff_a(org_a):
    return make_user("sam", org_a, Membership.Role.STAFF)


@pytest.fixture
def admin_b(org_b):
    return make_user("bob", org_b, Membership.Role.ADMIN)


@pytest.fixture
def staff_b(org_b):
    return make_user("betty", org_b, Membership.Role.STAFF)


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser(username="op", password=PASSWORD, email="op@example.com")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


class CanaryListener:
    """A TCP listener on 127.0.0.1 and ::1 (same port) that only counts connections: SSRF tests point hostile URLs
    at it and assert that nothing ever connected."""

    def __init__(self) -> None:
        self.connections = 0
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.bind(("127.0.0.1", 0))
        self.port = v4.getsockname()[1]
        self.sockets = [v4]
        try:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            v6.bind(("::1", self.port))
            self.sockets.append(v6)
        except OSError:
            pass
        for sock in self.sockets:
            sock.listen(16)
            sock.settimeout(0.05)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            for sock in self.sockets:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    continue
                self.connections += 1
                conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(2)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def canary(settings):
    """A connection-counting listener, with the webhook SSRF guard in its production setting."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    listener = CanaryListener()
    yield listener
    listener.close()


@pytest.fixture
def sqlite_readers_do_not_lock():
    """For tests where another thread writes while this one polls: SQLite's in-memory shared cache (the test
    database) fails a writer at once with "table is locked" while a reader holds the table; uncommitted reads take
    no table locks. A no-op on PostgreSQL."""
    from django.db import connection
    from django.db.backends.signals import connection_created

    def read_uncommitted(sender=None, connection=connection, **kwargs):
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA read_uncommitted = 1")

    connection_created.connect(read_uncommitted)
    if connection.vendor == "sqlite" and connection.connection is not None:
        read_uncommitted(connection=connection)
    yield
    connection_created.disconnect(read_uncommitted)
