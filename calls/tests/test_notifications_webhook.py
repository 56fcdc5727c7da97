"""Clinic webhooks: signed so a receiver can verify them, no patient data, retried with back-off against a real
local HTTPS receiver, never redirected, and never sent to internal addresses (SSRF)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import OperationalError
from django.utils import timezone

from calls import notifications
from calls.models import Escalation, Notification
from calls.notifications import UnsafeWebhookTarget, post_webhook, sign, verify_signature
from calls.services import escalation_create, transcript_segment_append
from conftest import make_call, make_org
from organizations.models import Organization

pytestmark = pytest.mark.django_db

PATIENT_NAME = "Marisol Quintanilla"
PATIENT_PHONE = "+14155550177"
UTTERANCE = "my husband has crushing chest pain and his left arm is numb"


# --- A local HTTPS receiver -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and localhost."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "voiceagent test receiver")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Receiver:
    """Records every request; answers `fail_first` requests with 503 (or `status`), the rest with 204."""

    def __init__(self, certificate, *, fail_first: int = 0, status: int = 503, location: str = "") -> None:
        self.requests: list[dict] = []
        self.fail_first, self.status, self.location = fail_first, status, location
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.release.wait(10)
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(receiver.status if failing else 204)
                if failing and receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/hooks/escalations"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory(certificate, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver lives on 127.0.0.1
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    monkeypatch.setattr(notifications, "ssl_context", lambda: trusting)
    made = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(certificate, **kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def _escalate(clinic) -> tuple[Escalation, Notification]:
    call = make_call(clinic, caller_name=PATIENT_NAME, caller_phone=PATIENT_PHONE)
    transcript_segment_append(call=call, speaker="caller", text=UTTERANCE)
    escalation, _ = escalation_create(
        call=call, level="emergency", source="keyword", reason="chest_pain, arm_numbness", evidence=UTTERANCE
    )
    return escalation, escalation.notifications.get(channel="webhook")


# --- Signature --------------------------------------------------------------------------------------------------------


class TestSignature:
    def test_the_header_is_a_timestamp_and_an_hmac_of_timestamp_dot_body(self):
        body = b'{"id":"x"}'
        header = sign("whsec_test", 1_700_000_000, body)
        expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
        assert header == f"t=1700000000,v1={expected}"

    def test_a_receiver_accepts_it_and_rejects_tampering_replay_and_the_wrong_secret(self):
        body = b'{"id":"x","type":"escalation.created"}'
        now = 1_700_000_000
        header = sign("whsec_test", now, body)
        assert verify_signature(header, "whsec_test", body, now=now + 10)
        assert not verify_signature(header, "whsec_test", body + b" ", now=now)
        assert not verify_signature(header, "whsec_other", body, now=now)
        assert not verify_signature(header, "whsec_test", body, now=now + 301)  # replayed later
        assert not verify_signature("garbage", "whsec_test", body, now=now)

    def test_during_secret_rotation_any_v1_may_match(self):
        body = b"{}"
        old = sign("whsec_old", 1_700_000_000, body)
        new_v1 = sign("whsec_new", 1_700_000_000, body).split(",")[1]
        assert verify_signature(f"{old},{new_v1}", "whsec_new", body, now=1_700_000_000)


# --- Delivery against a local receiver --------------------------------------------------------------------------------


class TestDelivery:
    def test_the_receiver_can_verify_the_signature_and_the_body_carries_ids_and_levels_only(self, receiver_factory):
        receiver = receiver_factory()
        clinic = make_org("hooked", webhook_url=receiver.url)
        escalation, row = _escalate(clinic)

        assert notifications.deliver_ids([row.pk])["delivered"] == 1
        [request] = receiver.requests
        body = request["body"]
        header = request["headers"]["X-Voiceagent-Signature"]
        timestamp, digest = (part.split("=", 1)[1] for part in header.split(","))
        expected = hmac.new(clinic.webhook_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        assert hmac.compare_digest(digest, expected.hexdigest())
        assert abs(time.time() - int(timestamp)) < 60
        assert request["headers"]["Content-Type"] == "application/json"

        payload = json.loads(body)
        assert payload == {
            "id": str(row.pk),
            "type": "escalation.created",
            "data": {
                "escalation_id": str(escalation.pk),
                "call_id": str(escalation.call_id),
                "organization_id": str(clinic.pk),
                "level": "emergency",
                "reason_code": "chest_pain",
                "reason_codes": ["chest_pain", "arm_numbness"],
                "source": "keyword",
                "status": "open",
                "created_at": escalation.created_at.isoformat(),
            },
        }
        text = body.decode()
        for secret in (PATIENT_NAME, PATIENT_PHONE, "chest pain", "husband", clinic.webhook_secret):
            assert secret not in text
        row.refresh_from_db()
        assert row.status == "delivered"

    def test_free_text_reasons_never_leave_as_codes(self, receiver_factory):
        receiver = receiver_factory()
        clinic = make_org("hooked", webhook_url=receiver.url)
        call = make_call(clinic)
        escalation, _ = escalation_create(
            call=call, level="urgent", source="agent_tool", reason=f"{PATIENT_NAME} says her ankle is swollen"
        )
        notifications.deliver_ids([escalation.notifications.get(channel="webhook").pk])
        data = json.loads(receiver.requests[0]["body"])["data"]
        assert (data["reason_code"], data["reason_codes"]) == ("agent_reported", ["agent_reported"])
        assert PATIENT_NAME not in receiver.requests[0]["body"].decode()

    def test_failures_are_retried_with_back_off_until_the_receiver_answers(self, receiver_factory):
        receiver = receiver_factory(fail_first=2)
        _escalation, row = _escalate(make_org("hooked", webhook_url=receiver.url))

        notifications.deliver_ids([row.pk])
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "http_503")
        first_retry = row.next_attempt_at
        assert notifications.deliver_due(now=first_retry - dt.timedelta(seconds=1))["pending"] == 0  # not yet due
        notifications.deliver_due(now=first_retry)
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("pending", 2)
        assert round((row.next_attempt_at - first_retry).total_seconds()) == 30
        notifications.deliver_due(now=row.next_attempt_at)
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_error) == ("delivered", 3, "")
        assert len(receiver.requests) == 3
        assert len({json.loads(r["body"])["id"] for r in receiver.requests}) == 1  # one event id for the dedupe

    def test_after_the_last_attempt_the_notification_gives_up(self, receiver_factory):
        receiver = receiver_factory(fail_first=100, status=500)
        _escalation, row = _escalate(make_org("hooked", webhook_url=receiver.url))
        now = timezone.now()
        for _ in range(notifications.MAX_ATTEMPTS + 2):
            notifications.deliver_due(now=now)
            now += dt.timedelta(hours=2)
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_error) == ("failed", notifications.MAX_ATTEMPTS, "http_500")
        assert len(receiver.requests) == notifications.MAX_ATTEMPTS

    def test_redirects_are_not_followed(self, receiver_factory):
        receiver = receiver_factory(fail_first=1, status=302, location="/elsewhere")
        _escalation, row = _escalate(make_org("hooked", webhook_url=receiver.url))
        notifications.deliver_ids([row.pk])
        row.refresh_from_db()
        assert [r["path"] for r in receiver.requests] == ["/hooks/escalations"]
        assert (row.status, row.last_error) == ("pending", "http_302")

    def test_a_slow_receiver_times_out_and_is_retried(self, receiver_factory, monkeypatch):
        monkeypatch.setattr(notifications, "WEBHOOK_TIMEOUTS", {"connect": 1.0, "read": 0.3, "write": 1.0, "pool": 1})
        receiver = receiver_factory()
        receiver.release.clear()  # the receiver holds every request until released
        _escalation, row = _escalate(make_org("hooked", webhook_url=receiver.url))
        notifications.deliver_ids([row.pk])
        row.refresh_from_db()
        assert (row.status, row.last_error) == ("pending", "ReadTimeout")


def notifications_of(escalation: Escalation, channel: str):
    for _ in range(100):
        try:
            return Notification.objects.filter(escalation=escalation, channel=channel).values_list("pk", flat=True)[0]
        except OperationalError:  # the delivery thread's claim holds SQLite's shared-cache table lock for a moment
            time.sleep(0.02)
    raise AssertionError("the notification table stayed locked")


def _status_when(row_id, wanted: str, timeout: float = 10.0) -> str | None:
    """The row's status once it is `wanted` (or the last seen after `timeout`). Reads retry while SQLite's shared
    cache reports the delivery thread's brief lock on the table."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        try:
            status = Notification.objects.filter(pk=row_id).values_list("status", flat=True).first()
        except OperationalError:
            status = None
        if status == wanted:
            break
        time.sleep(0.05)
    return status


@pytest.mark.django_db(transaction=True)
def test_the_escalation_is_committed_and_returned_while_the_webhook_is_still_in_flight(
    receiver_factory, monkeypatch, sqlite_readers_do_not_lock
):
    monkeypatch.setattr(notifications, "_inline_only", lambda: False)  # the real background thread, even on SQLite
    receiver = receiver_factory()
    receiver.release.clear()
    clinic = make_org("hooked", webhook_url=receiver.url)
    escalation, created = escalation_create(call=make_call(clinic), level="emergency", source="keyword")
    assert created
    # The receiver is holding the request: the caller got its escalation back without waiting for it.
    row_id = notifications_of(escalation, "webhook")
    assert _status_when(row_id, "pending", timeout=0.5) == "pending"
    receiver.release.set()
    assert _status_when(row_id, "delivered") == "delivered"


# --- SSRF -------------------------------------------------------------------------------------------------------------


def test_internal_and_non_https_targets_are_refused_without_a_connection(canary):
    port = canary.port
    refused = [
        f"https://127.0.0.1:{port}/hook",
        f"https://localhost:{port}/hook",
        f"https://[::1]:{port}/hook",
        f"https://[::ffff:127.0.0.1]:{port}/hook",
        f"https://0.0.0.0:{port}/hook",
        "https://10.0.0.5/hook",
        "https://172.16.0.1/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://224.0.0.1/hook",
        "https://240.0.0.1/hook",
        f"http://127.0.0.1:{port}/hook",
        "http://example.com/hook",
        "file:///etc/passwd",
        "ftp://example.com/hook",
        "https://user:pass@example.com/hook",
        "https:///no-host",
        "https://example.com:99999/hook",
    ]
    for url in refused:
        with pytest.raises(UnsafeWebhookTarget):
            post_webhook(url, "whsec_test", b"{}")
    time.sleep(0.3)  # give the canary a chance to see anything that did get through
    assert canary.connections == 0


def test_a_name_that_resolves_to_any_internal_address_is_refused(canary, monkeypatch):
    def rebinding(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(notifications.socket, "getaddrinfo", rebinding)
    with pytest.raises(UnsafeWebhookTarget):
        post_webhook(f"https://hooks.clinic.example:{canary.port}/x", "whsec_test", b"{}")
    assert canary.connections == 0


def test_a_refused_clinic_webhook_fails_for_good_and_the_board_still_gets_its_push(canary):
    # Entry validation refuses this URL now; a row saved before it (or a name re-pointed later) still exists.
    clinic = make_org("hooked")
    Organization.objects.filter(pk=clinic.pk).update(webhook_url=f"https://127.0.0.1:{canary.port}/hook")
    clinic.refresh_from_db()
    escalation, row = _escalate(clinic)
    counts = notifications.deliver_due()
    row.refresh_from_db()
    assert (row.status, row.last_error) == ("failed", "refused:address_not_public")
    assert escalation.notifications.get(channel="board").status == "delivered"
    assert counts == {"delivered": 1, "pending": 0, "failed": 1}
    assert canary.connections == 0


def test_a_name_that_does_not_resolve_is_retried(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(notifications.socket, "getaddrinfo", no_dns)
    _escalation, row = _escalate(make_org("hooked", webhook_url="https://hooks.clinic.example/x"))
    notifications.deliver_ids([row.pk])
    row.refresh_from_db()
    assert row.status == "pending" and row.last_error


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("239.255.255.250", False),
        ("fe80::1%eth0", False),
    ],
)
def test_only_global_unicast_addresses_count_as_public(address, public):
    assert notifications._address_is_public(address) is public
