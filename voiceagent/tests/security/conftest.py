"""Two clinics full of canary patient data, for the security suites (fuzz, cross-tenant matrix, authorization table).

Every value a leak check looks for is planted here: a canary name, phone, transcript line and intake per clinic,
plus each clinic's secrets (publishable key, webhook secret, call tokens). A test acting as clinic A must never see
any of clinic B's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.authtoken.models import Token

from calls.models import AuditEvent, Call, Escalation
from calls.services import call_end, call_start, escalation_create, transcript_segment_append
from conftest import make_org, make_user
from organizations.models import Membership, Organization

# Deployment secrets the application knows; none may ever appear in a response body.
OPENAI_KEY = "sk-secsuite-OPENAIKEY-0123456789abcdef"
TWILIO_TOKEN = "twilio-secsuite-authtoken-0123456789ab"


@dataclass
class Clinic:
    """One clinic's people, rows and the values that must not leak to anybody outside it."""

    org: Organization
    admin: User
    staff: User
    call: Call
    call_token: str
    ended_call: Call
    escalation: Escalation
    audit_row: AuditEvent
    membership: Membership
    canaries: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """Every id of this clinic a response could carry."""
        return [str(self.org.pk), str(self.call.pk), str(self.ended_call.pk), str(self.escalation.pk)]

    @property
    def secrets(self) -> list[str]:
        return [self.org.webhook_secret, self.call_token, self.call.token_hash]


def _clinic(slug: str, letter: str) -> Clinic:
    tag = uuid.uuid4().hex[:8].upper()
    org = make_org(slug)
    admin = make_user(f"{slug}-admin", org, Membership.Role.ADMIN)
    staff = make_user(f"{slug}-staff", org, Membership.Role.STAFF)
    name = f"ZZQX-Canary-{letter}-{tag}"
    phone = f"+1555010{'1' if letter == 'A' else '2'}{uuid.uuid4().int % 1000:03d}"
    line = f"my canary complaint {letter}{tag} is a sore knee"
    call, token = call_start(organization=org, channel=Call.Channel.WEB, caller_name=name, caller_phone=phone)
    transcript_segment_append(call=call, speaker="caller", text=line)
    escalation, _ = escalation_create(call=call, level="urgent", source="keyword", reason="bleeding", evidence=line)
    ended, _ = call_start(organization=org, channel=Call.Channel.PHONE, caller_name=name, caller_phone=phone)
    call_end(
        call=ended,
        intake={
            "patient_name": name,
            "date_of_birth": "1901-02-03",
            "callback_number": phone,
            "reason_for_call": line,
            "urgency": "routine",
        },
    )
    audit_row = AuditEvent.objects.filter(organization_id=org.pk).order_by("-id").first()
    assert audit_row is not None, "the service calls above write audit rows"
    return Clinic(
        org=org,
        admin=admin,
        staff=staff,
        call=call,
        call_token=token,
        ended_call=ended,
        escalation=escalation,
        audit_row=audit_row,
        membership=Membership.objects.get(user=staff, organization=org),
        canaries=[name, phone, line, f"{letter}{tag}"],
    )


@pytest.fixture
def world(db, settings) -> tuple[Clinic, Clinic]:
    """Clinic A and clinic B, each with an admin, a staff member, a live call (with its token), an ended call with
    an intake, an open escalation and audit rows."""
    settings.OPENAI_API_KEY = OPENAI_KEY
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    with transaction.atomic():
        a, b = _clinic("sec-clinic-a", "A"), _clinic("sec-clinic-b", "B")
    return a, b


def token_header(user) -> dict[str, str]:
    return {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}


@pytest.fixture
def fake(settings):
    """The shipped fake OpenAI on loopback, with the app pointed at it, so minting gets real answers."""
    from fakes.openai import FakeOpenAI

    with FakeOpenAI.start_in_thread(time_scale=0.02, pace=0.0, api_key=OPENAI_KEY) as handle:
        settings.OPENAI_BASE_URL = handle.base_url
        settings.OPENAI_API_KEY = OPENAI_KEY
        settings.OPENAI_TIMEOUT_SECONDS = 10.0  # a loaded CI box must not turn minting into 504s
        yield handle
