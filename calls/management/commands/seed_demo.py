"""`manage.py seed_demo`: two demo clinics with users, past calls and one open escalation, so the console and the
demo page have something to show on a fresh clone.

Idempotent: clinics, users and calls have fixed ids or natural keys, and nothing that exists is created again, so a
second run leaves exactly the same rows. Demo passwords are public, hence the refusal to run with DEBUG off.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from calls import notifications
from calls.audit import audit_actor
from calls.models import Call, Escalation
from calls.services import (
    SegmentInput,
    call_end,
    call_mark_reviewed,
    call_start,
    escalation_acknowledge,
    escalation_create,
    escalation_resolve,
)
from organizations.auth import api_token_issue
from organizations.models import (
    BusinessHours,
    Closure,
    EscalationPhrase,
    Membership,
    OnCallPerson,
    Organization,
    TwilioNumber,
    validate_hours_do_not_overlap,
    validate_origin,
)
from organizations.services import membership_set, organization_create
from organizations.vocabulary import EscalationLevel, Urgency

ADMIN_URL = "http://127.0.0.1:8000/admin/"
DEMO_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def served_origins(origin: str) -> list[str]:
    """`origin` and, for a loopback address, its other name with the same port (a browser may open either)."""
    validate_origin(origin)
    parts = urlsplit(origin)
    if parts.hostname not in LOOPBACK_NAMES:
        return [origin]
    port = f":{parts.port}" if parts.port else ""
    return [origin, *(f"{parts.scheme}://{name}{port}" for name in LOOPBACK_NAMES if name != parts.hostname)]


MON, TUE, WED, THU, FRI, SAT = range(6)

# The demo operator: a superuser who sees and manages every clinic (Twilio numbers, teams, the whole audit trail).
OPERATOR_USERNAME = "operator"
OPERATOR_PASSWORD = "operator-demo"  # noqa: S105 - a published demo password, like the clinic users'


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    first_name: str
    last_name: str


@dataclass(frozen=True)
class DemoCall:
    id: str
    channel: str
    days_ago: int
    at: str  # local clinic time the call started, HH:MM
    caller_name: str
    caller_phone: str
    lines: list[tuple[str, str]]  # (speaker, text), about 12 s apart
    intake: dict | None = None
    escalation: dict | None = None  # level, source, reason, evidence, then: "open" | "acknowledged" | "resolved"
    reviewed: bool = False


@dataclass(frozen=True)
class DemoClinic:
    id: str
    slug: str
    name: str
    publishable_key: str
    config: dict
    hours: list[tuple[int, str, str]]
    phrases: list[tuple[str, str]]
    twilio_number: str
    users: list[DemoUser]
    calls: list[DemoCall] = field(default_factory=list)


def _holidays(year: int) -> list[tuple[dt.date, str]]:
    november_first = dt.date(year, 11, 1)
    thanksgiving = november_first + dt.timedelta(days=(3 - november_first.weekday()) % 7 + 21)
    return [
        (dt.date(year, 1, 1), "New Year's Day"),
        (dt.date(year, 7, 4), "Independence Day"),
        (thanksgiving, "Thanksgiving"),
        (dt.date(year, 12, 25), "Christmas Day"),
    ]


RIVERSIDE = DemoClinic(
    id="5eed0000-0000-4000-8000-000000000001",
    slug="riverside-family-medicine",
    name="Riverside Family Medicine",
    publishable_key="pk_demo_riverside_family_medicine",
    config={
        "timezone": "America/New_York",
        "after_hours_policy": Organization.AfterHoursPolicy.FORWARD_ON_CALL,
        "after_hours_message": "Our office is closed. If this is urgent, I can connect you with the on-call "
        "doctor; for emergencies, hang up and dial 911.",
        "services": [
            "Annual physicals",
            "Sick visits",
            "Vaccinations and flu shots",
            "Chronic care (diabetes, blood pressure)",
            "Lab work",
            "Telehealth follow-ups",
        ],
        "providers": ["Dr. Amara Okafor", "Dr. Daniel Reyes", "Priya Nair, NP"],
        "escalation_phone": "+16175550100",
        "on_call_phone": "+16175550199",
        "allowed_origins": DEMO_ORIGINS,
        "agent_voice": Organization.Voice.MARIN,
        "agent_languages": ["en", "es"],
        "agent_greeting": "Thank you for calling Riverside Family Medicine, this is the virtual receptionist. "
        "How can I help you today?",
        "agent_extra_instructions": "New patients need a photo ID and insurance card at the first visit. "
        "Flu shots are walk-in on weekday mornings.",
    },
    hours=[
        (MON, "08:00", "18:00"),
        (TUE, "08:00", "18:00"),
        (WED, "08:00", "18:00"),
        (THU, "08:00", "20:30"),  # late evening clinic
        (FRI, "08:00", "17:00"),
        (SAT, "09:00", "13:00"),
    ],
    phrases=[
        (EscalationLevel.EMERGENCY, "fainted"),
        (EscalationLevel.EMERGENCY, "can't feel my arm"),
        (EscalationLevel.URGENT, "fever for three days"),
        (EscalationLevel.HUMAN, "speak to the nurse"),
    ],
    twilio_number="+16175550110",
    users=[
        DemoUser("riverside-admin", "riverside-admin-demo", Membership.Role.ADMIN, "Rita", "Alvarez"),
        DemoUser("riverside-staff", "riverside-staff-demo", Membership.Role.STAFF, "Sam", "Okafor"),
    ],
    calls=[
        DemoCall(
            id="5eed0000-0000-4000-8000-0000000000c1",
            channel=Call.Channel.WEB,
            days_ago=3,
            at="09:14",
            caller_name="Maria Gonzalez",
            caller_phone="+16175550123",
            lines=[
                (
                    "agent",
                    "Thank you for calling Riverside Family Medicine, this is the virtual receptionist. "
                    "How can I help you today?",
                ),
                ("caller", "Hi, I'd like to book my annual physical."),
                ("agent", "Happy to help. May I have your full name and date of birth?"),
                ("caller", "Maria Gonzalez, March 12th, 1984."),
                ("agent", "Thank you, Maria. What's the best number to call you back on?"),
                ("caller", "617 555 0123."),
                ("agent", "Got it. Do you have a preferred day or time?"),
                ("caller", "Tuesday mornings work best."),
                (
                    "agent",
                    "I've noted Tuesday mornings. The front desk will call you to confirm a time. Anything else?",
                ),
                ("caller", "No, that's all. Thanks!"),
            ],
            intake={
                "patient_name": "Maria Gonzalez",
                "date_of_birth": "1984-03-12",
                "callback_number": "+16175550123",
                "reason_for_call": "Annual physical",
                "urgency": Urgency.ROUTINE,
                "preferred_time": "Tuesday mornings",
                "is_new_patient": False,
                "insurance_provider": "Blue Cross",
            },
            reviewed=True,
        ),
        DemoCall(
            id="5eed0000-0000-4000-8000-0000000000c2",
            channel=Call.Channel.PHONE,
            days_ago=2,
            at="16:40",
            caller_name="James Carter",
            caller_phone="+16175550145",
            lines=[
                ("agent", "Thank you for calling Riverside Family Medicine. How can I help you today?"),
                ("caller", "My son has had a fever for three days and it's not going down."),
                ("agent", "I'm sorry to hear that. How high is the fever, and is he drinking fluids?"),
                ("caller", "About 102. He's drinking a bit, but he's very tired."),
                (
                    "agent",
                    "Thank you. I'm flagging this as urgent so a nurse calls you back today. "
                    "What's your son's name and date of birth?",
                ),
                ("caller", "Ethan Carter, June 2nd, 2015."),
                ("agent", "And the best number to reach you?"),
                ("caller", "This one, 617 555 0145."),
                (
                    "agent",
                    "A nurse will call you within the hour. If he has trouble breathing or becomes hard to "
                    "wake, call 911.",
                ),
            ],
            intake={
                "patient_name": "Ethan Carter",
                "date_of_birth": "2015-06-02",
                "callback_number": "+16175550145",
                "reason_for_call": "Fever of 102F for three days, tired",
                "urgency": Urgency.URGENT,
                "is_new_patient": False,
            },
            escalation={
                "level": Escalation.Level.URGENT,
                "source": Escalation.Source.KEYWORD,
                "reason": "Caller reported a fever for three days",
                "evidence": "My son has had a fever for three days and it's not going down.",
                "then": "resolved",
                "note": "Nurse called back at 17:05; appointment booked for the next morning.",
            },
            reviewed=True,
        ),
        DemoCall(
            id="5eed0000-0000-4000-8000-0000000000c3",
            channel=Call.Channel.PHONE,
            days_ago=1,
            at="11:02",
            caller_name="Robert Chen",
            caller_phone="+16175550167",
            lines=[
                ("agent", "Thank you for calling Riverside Family Medicine. How can I help you today?"),
                ("caller", "I've had chest pain since this morning and my left arm feels numb."),
                (
                    "agent",
                    "Chest pain with arm numbness can be an emergency. Please hang up and call 911 now, "
                    "or have someone take you to the nearest emergency room.",
                ),
                ("caller", "Okay. Can someone from the office call my wife?"),
                ("agent", "Yes, I've alerted the clinic staff. What's the best number for her?"),
                ("caller", "617 555 0168."),
                ("agent", "Thank you. Please call 911 now."),
            ],
            intake={
                "patient_name": "Robert Chen",
                "callback_number": "+16175550168",
                "reason_for_call": "Chest pain since the morning, left arm numbness",
                "urgency": Urgency.EMERGENCY,
            },
            escalation={
                "level": Escalation.Level.EMERGENCY,
                "source": Escalation.Source.KEYWORD,
                "reason": "Chest pain with arm numbness",
                "evidence": "I've had chest pain since this morning and my left arm feels numb.",
                "then": "open",
            },
        ),
        DemoCall(
            id="5eed0000-0000-4000-8000-0000000000c4",
            channel=Call.Channel.WEB,
            days_ago=1,
            at="14:25",
            caller_name="Linda Park",
            caller_phone="",
            lines=[
                ("agent", "Thank you for calling Riverside Family Medicine. How can I help you today?"),
                ("caller", "I need a refill of my blood pressure medication, lisinopril."),
                ("agent", "I can pass that to the care team. May I have your full name and date of birth?"),
                ("caller", "Linda Park, October 3rd, 1958."),
                ("agent", "Thank you. Which pharmacy should it go to?"),
                ("caller", "The one on Main Street. Actually I have to go, I'll call back."),
            ],
            intake={
                "patient_name": "Linda Park",
                "date_of_birth": "1958-10-03",
                "reason_for_call": "Refill of lisinopril (blood pressure)",
                "urgency": Urgency.ROUTINE,
            },
        ),
    ],
)

HARBOR = DemoClinic(
    id="5eed0000-0000-4000-8000-000000000002",
    slug="harbor-pediatrics",
    name="Harbor Pediatrics",
    publishable_key="pk_demo_harbor_pediatrics",
    config={
        "timezone": "America/Los_Angeles",
        "after_hours_policy": Organization.AfterHoursPolicy.TAKE_MESSAGE,
        "services": [
            "Well-child visits",
            "Newborn care",
            "Sick visits",
            "Immunizations",
            "Sports physicals",
            "Developmental screenings",
        ],
        "providers": ["Dr. Hannah Nguyen", "Dr. Samuel Whitaker"],
        "escalation_phone": "+12065550150",
        "on_call_phone": "+12065550151",
        "allowed_origins": DEMO_ORIGINS,
        "agent_voice": Organization.Voice.CORAL,
        "agent_languages": ["en", "es", "vi"],
        "agent_greeting": "Hi, you've reached Harbor Pediatrics. I'm the virtual receptionist. "
        "How can I help your family today?",
        "agent_extra_instructions": "Parents of newborns (under 4 weeks) with a fever over 100.4F must be "
        "escalated as urgent.",
    },
    hours=[
        *[(day, "07:30", "12:00") for day in (MON, TUE, WED, THU, FRI)],
        *[(day, "13:00", "21:00") for day in (MON, TUE, WED, THU, FRI)],  # evening sick-visit hours
        (SAT, "09:00", "12:00"),
    ],
    phrases=[
        (EscalationLevel.EMERGENCY, "not breathing"),
        (EscalationLevel.EMERGENCY, "seizure"),
        (EscalationLevel.URGENT, "rash with fever"),
        (EscalationLevel.HUMAN, "talk to a person"),
    ],
    twilio_number="+12065550160",
    users=[DemoUser("harbor-admin", "harbor-admin-demo", Membership.Role.ADMIN, "Hana", "Nguyen")],
    calls=[
        DemoCall(
            id="5eed0000-0000-4000-8000-0000000000d1",
            channel=Call.Channel.PHONE,
            days_ago=2,
            at="10:05",
            caller_name="Sofia Ramirez",
            caller_phone="+12065550133",
            lines=[
                ("agent", "Hi, you've reached Harbor Pediatrics. How can I help your family today?"),
                ("caller", "My daughter is due for her 12-month vaccines. Can we book those?"),
                ("agent", "Of course. What's your daughter's name and date of birth?"),
                ("caller", "Lucia Ramirez, born November 20th last year."),
                ("agent", "Thank you. Is she a new patient with us?"),
                ("caller", "No, she's been seeing Dr. Patel."),
                (
                    "agent",
                    "Great. I've noted the 12-month well-child visit with vaccines. The front desk will "
                    "call you to confirm a time.",
                ),
            ],
            intake={
                "patient_name": "Lucia Ramirez",
                "callback_number": "+12065550133",
                "reason_for_call": "12-month well-child visit and vaccines",
                "urgency": Urgency.ROUTINE,
                "is_new_patient": False,
            },
            reviewed=True,
        ),
        DemoCall(
            id="5eed0000-0000-4000-8000-0000000000d2",
            channel=Call.Channel.WEB,
            days_ago=1,
            at="21:40",
            caller_name="Kevin Brooks",
            caller_phone="+12065550172",
            lines=[
                (
                    "agent",
                    "Hi, you've reached Harbor Pediatrics. We're closed right now, but I can take a "
                    "message for a callback.",
                ),
                ("caller", "My son has a rash on his arms. No fever. I'd like to talk to a person tomorrow."),
                ("agent", "I'll make sure someone calls you first thing tomorrow. What's your son's name?"),
                ("caller", "Noah Brooks."),
                ("agent", "And the best number to reach you?"),
                ("caller", "206 555 0172."),
                (
                    "agent",
                    "Thank you. If he develops a fever or trouble breathing, call 911 or go to the emergency room.",
                ),
            ],
            intake={
                "patient_name": "Noah Brooks",
                "callback_number": "+12065550172",
                "reason_for_call": "Rash on arms, no fever; parent asks for a callback",
                "urgency": Urgency.ROUTINE,
                "preferred_time": "Tomorrow morning",
            },
            escalation={
                "level": Escalation.Level.HUMAN,
                "source": Escalation.Source.AGENT_TOOL,
                "reason": "Parent asked to talk to a person",
                "evidence": "I'd like to talk to a person tomorrow.",
                "then": "acknowledged",
            },
        ),
    ],
)

DEMO_CLINICS = [RIVERSIDE, HARBOR]


class Command(BaseCommand):
    help = "Create (or complete) two demo clinics with users, past calls and an open escalation. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the clinics, users and tokens as JSON only.")
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off (demo passwords are public).")
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="Also allow this web origin (scheme://host:port) to start demo calls, e.g. the address the server is "
            "served on (`make run` passes it). Default: the origin of PUBLIC_BASE_URL. Repeatable.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates users whose passwords are published in the README, so it refuses to run with "
                "DEBUG off. Set DEBUG=true for local development, or pass --force if you really want demo "
                "users in this database."
            )
        requested = options["origin"] or [_origin_of(settings.PUBLIC_BASE_URL)]
        try:
            origins = [served for origin in requested for served in served_origins(origin)]
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        with transaction.atomic(), audit_actor("system", via="command"):
            summary = [self._seed_clinic(clinic, origins) for clinic in DEMO_CLINICS]
            operator = self._seed_operator()
        notifications.wait_for_in_flight()  # the demo escalations' board pushes, before this process exits
        if options["json"]:
            self.stdout.write(json.dumps({"organizations": summary, "operator": operator}, indent=2))
            return
        self._print_logins(summary, operator)

    # Clinics ---------------------------------------------------------------------------------------------------------

    def _seed_clinic(self, spec: DemoClinic, origins: list[str]) -> dict:
        organization = Organization.objects.filter(slug=spec.slug).first()
        if organization is None:
            organization = organization_create(
                name=spec.name,
                slug=spec.slug,
                id=uuid.UUID(spec.id),
                publishable_key=spec.publishable_key,
                **spec.config,
            )
            # Configuration is seeded once: later runs leave a clinic admin's edits alone (and cannot re-add an
            # interval that would now overlap an edited one).
            self._configure(organization, spec)
        self._allow_origins(organization, origins)
        users = [self._seed_user(organization, user_spec) for user_spec in spec.users]
        for call_spec in spec.calls:
            self._seed_call(organization, call_spec, reviewer=users[0][0], handler=users[-1][0])
        return {
            "id": str(organization.pk),
            "slug": organization.slug,
            "name": organization.name,
            "publishable_key": organization.publishable_key,
            # What a script dials to place a simulated call (simulate_call --channel phone | sip).
            "phone_numbers": list(organization.twilio_numbers.order_by("number").values_list("number", flat=True)),
            "users": [
                {"username": user.username, "password": user_spec.password, "role": user_spec.role, "api_token": token}
                for (user, token), user_spec in zip(users, spec.users, strict=True)
            ],
        }

    def _allow_origins(self, organization: Organization, origins: list[str]) -> None:
        """Let the page the server is reached at start demo calls: exactly these origins, added to the demo clinic
        only (what an admin added stays). Nothing is loosened at request time, so a server started with DEBUG on by
        mistake still accepts no other origin."""
        missing = [origin for origin in origins if origin not in organization.allowed_origins]
        if missing:
            organization.allowed_origins = [*organization.allowed_origins, *missing]
            organization.save(update_fields=["allowed_origins", "updated_at"])

    def _configure(self, organization: Organization, spec: DemoClinic) -> None:
        hours = [
            BusinessHours(
                organization=organization,
                weekday=weekday,
                opens=dt.time.fromisoformat(opens),
                closes=dt.time.fromisoformat(closes),
            )
            for weekday, opens, closes in spec.hours
        ]
        validate_hours_do_not_overlap(hours)
        BusinessHours.objects.bulk_create(hours)
        today = timezone.localdate()
        Closure.objects.bulk_create(
            Closure(organization=organization, date=day, label=label)
            for day, label in _holidays(today.year) + _holidays(today.year + 1)
            if today <= day < today + dt.timedelta(days=366)  # the coming year's holidays
        )
        EscalationPhrase.objects.bulk_create(
            EscalationPhrase(organization=organization, level=level, phrase=phrase) for level, phrase in spec.phrases
        )
        # Numbers are unique across clinics: one already routed elsewhere stays where it is.
        TwilioNumber.objects.get_or_create(
            number=spec.twilio_number, defaults={"organization": organization, "label": "Main line (demo)"}
        )
        # Someone on call around the clock, so an emergency in the demo pages: e-mail to the console backend (the
        # server's output), SMS to the Twilio configured, or a failed SMS page on the escalation when there is none.
        OnCallPerson.objects.get_or_create(
            organization=organization,
            name="On-call clinician (demo)",
            defaults={
                "mobile": spec.twilio_number[:-2] + "99",
                "email": f"on-call@{spec.slug}.demo.example",
                "position": 0,
            },
        )

    def _seed_user(self, organization: Organization, spec: DemoUser) -> tuple[User, str]:
        User = get_user_model()
        user = User.objects.filter(username=spec.username).first()
        if user is None:
            user = User.objects.create_user(
                username=spec.username,
                password=spec.password,
                email=f"{spec.username}@demo.example",
                first_name=spec.first_name,
                last_name=spec.last_name,
            )
        elif not user.check_password(spec.password):
            # The printed login must work; re-hashing only when it changed keeps a second run a no-op.
            user.set_password(spec.password)
            user.save(update_fields=["password"])
        membership = Membership.objects.filter(user=user, organization=organization).first()
        if membership is None or membership.role != spec.role:
            membership_set(user=user, organization=organization, role=spec.role)
        return user, self._token_for(user)

    def _seed_operator(self) -> dict[str, str]:
        User = get_user_model()
        user = User.objects.filter(username=OPERATOR_USERNAME).first()
        if user is None:
            user = User.objects.create_superuser(
                username=OPERATOR_USERNAME,
                password=OPERATOR_PASSWORD,
                email=f"{OPERATOR_USERNAME}@demo.example",
                first_name="Olivia",
                last_name="Park",
            )
        else:
            changed = []
            if not (user.is_superuser and user.is_staff and user.is_active):
                user.is_superuser = user.is_staff = user.is_active = True
                changed += ["is_superuser", "is_staff", "is_active"]
            if not user.check_password(OPERATOR_PASSWORD):  # the printed login must work
                user.set_password(OPERATOR_PASSWORD)
                changed.append("password")
            if changed:
                user.save(update_fields=changed)
        return {"username": user.username, "password": OPERATOR_PASSWORD, "api_token": self._token_for(user)}

    def _token_for(self, user: User) -> str:
        # The same token POST /api/auth/token answers: the current one, or a new one once it expired.
        return api_token_issue(user=user).key

    # Calls -----------------------------------------------------------------------------------------------------------

    def _seed_call(self, organization: Organization, spec: DemoCall, *, reviewer: User, handler: User) -> None:
        call_id = uuid.UUID(spec.id)
        if Call.objects.filter(pk=call_id).exists():
            return  # a past call is history: never rewritten
        day = timezone.localdate(timezone=organization.tz) - dt.timedelta(days=spec.days_ago)
        started_at = dt.datetime.combine(day, dt.time.fromisoformat(spec.at), tzinfo=organization.tz)
        step = dt.timedelta(seconds=12)
        with transaction.atomic():
            # The same services a live call uses, with the demo call's fixed id.
            call, _token = call_start(
                call_id=call_id,
                organization=organization,
                channel=spec.channel,
                caller_name=spec.caller_name,
                caller_phone=spec.caller_phone,
                started_at=started_at,
                twilio_call_sid=("CA" + call_id.hex) if spec.channel == Call.Channel.PHONE else None,
                metadata={"demo": True},
            )
            transcript = [
                SegmentInput(
                    speaker=speaker,
                    text=text,
                    occurred_at=started_at + step * index,
                    item_id=f"demo_{call_id.hex[-4:]}_{index}",
                )
                for index, (speaker, text) in enumerate(spec.lines)
            ]
            if spec.escalation:
                self._seed_escalation(call, spec.escalation, started_at + step * 2, handler)
            call_end(
                call=call,
                reason=Call.EndReason.CALLER_HANGUP,
                transcript=transcript,
                intake=spec.intake,
                ended_at=started_at + step * (len(spec.lines) + 1),
            )
            if spec.reviewed:
                call_mark_reviewed(call=call, user=reviewer)

    def _seed_escalation(self, call: Call, spec: dict[str, Any], at: dt.datetime, staff_user: User) -> None:
        # The demo escalation dates from its call, not from the seeding.
        escalation, _ = escalation_create(
            call=call,
            level=spec["level"],
            source=spec["source"],
            reason=spec["reason"],
            evidence=spec["evidence"],
            created_at=at,
        )
        if spec["then"] == "acknowledged":
            escalation_acknowledge(escalation=escalation, user=staff_user)
        elif spec["then"] == "resolved":
            escalation_resolve(escalation=escalation, user=staff_user, note=spec.get("note", ""))

    # Output ----------------------------------------------------------------------------------------------------------

    def _print_logins(self, summary: list[dict], operator: dict[str, str]) -> None:
        self.stdout.write(self.style.SUCCESS("Demo clinics are ready."))
        self.stdout.write(f"Staff console: {ADMIN_URL}")
        self.stdout.write(
            f"\nOperator (every clinic)\n  {'operator':<6} username {operator['username']:<18} "
            f"password {operator['password']}"
        )
        for organization in summary:
            self.stdout.write(f"\n{organization['name']} (publishable key {organization['publishable_key']})")
            for user in organization["users"]:
                self.stdout.write(f"  {user['role']:<6} username {user['username']:<18} password {user['password']}")
        self.stdout.write("\nThese passwords are public: use this data for local demos only.")


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
