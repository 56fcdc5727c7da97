"""Clinics (organizations), their configuration, and who belongs to them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import re
import secrets
import socket
import uuid
import zoneinfo
from collections.abc import Callable, Iterable
from typing import cast
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from organizations.dialing import DEFAULT_DIAL_COUNTRIES, dial_refusal, is_country_code
from organizations.vocabulary import (
    DEFAULT_PAGING,
    PHRASE_LEVEL_CHOICES,
    PHRASE_LEVELS,
    EscalationLevel,
    PagingAction,
    Urgency,
)

E164_REGEX = r"^\+[1-9][0-9]{6,14}$"
e164_validator = RegexValidator(E164_REGEX, "Enter a phone number in E.164 format, e.g. +14155550123.")
ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
FIELD_NAME_REGEX = r"^[a-z][a-z0-9_]{0,49}$"
MAX_RETENTION_DAYS = 36_500  # 100 years: anything longer is a typo, and "keep forever" is an empty field
# Clinic-written text goes into the agent's prompt (realtime/prompt.py): bounded at input (the API's serializer
# says the same), and the prompt truncates again defensively.
CLINIC_TEXT_LIMITS = {
    "name": 200,
    "list_items": 100,  # services, providers
    "list_item": 200,
    "greeting": 1000,
    "after_hours_message": 2000,
    "extra_instructions": 4000,
    "intake_description": 300,
}

# A clinic's scalar settings (Organization field names), defined once: the console form and page, the config
# service and the config API derive from these. The API nests the agent settings under "agent".
AGENT_SETTINGS = (
    "agent_voice",
    "agent_languages",
    "agent_greeting",
    "agent_extra_instructions",
    "max_call_minutes",
    "vad_threshold",
    "vad_silence_ms",
    "turn_detection",
    "vad_eagerness",
    "idle_timeout_ms",
    "noise_reduction",
)
CLINIC_SETTINGS = (
    "name",
    "timezone",
    "after_hours_policy",
    "after_hours_message",
    "services",
    "providers",
    "escalation_phone",
    "on_call_phone",
    "allowed_origins",
    "event_forwarding",
    "webhook_url",
    "record_calls",
    *AGENT_SETTINGS,
)
RETENTION_SETTINGS = ("transcript_retention_days", "intake_retention_days", "call_retention_days")  # console only
# Console only, and operators only: which countries a clinic's calls may be sent to is a toll-fraud guard, so a
# clinic admin's account (taken over or not) cannot widen it.
OPERATOR_SETTINGS = ("dial_countries",)
# Console only: what on-call pages may say (the on-call list and the rules per level are rows, see OnCallPerson).
PAGING_SETTINGS = ("paging_includes_caller_name",)
# The lists of child rows of a clinic's configuration (each replaced wholesale): config name -> Organization relation.
CONFIG_LISTS = {
    "business_hours": "hours",
    "closures": "closures",
    "intake_fields": "intake_fields",
    "escalation_phrases": "escalation_phrases",
    "twilio_numbers": "twilio_numbers",
}

# Languages the agent may answer in (BCP 47 primary tags the Realtime models handle well).
AGENT_LANGUAGES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "pt": "Portuguese",
    "zh": "Chinese",
    "vi": "Vietnamese",
    "ko": "Korean",
    "ar": "Arabic",
    "ru": "Russian",
    "ht": "Haitian Creole",
}


def default_agent_languages() -> list[str]:
    return ["en"]


def generate_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def generate_publishable_key() -> str:
    return "pk_" + secrets.token_urlsafe(24)


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError("%(value)s is not an IANA time zone such as America/New_York.", params={"value": value})


def validate_origin(value: str) -> None:
    if not ORIGIN_RE.match(value):
        raise ValidationError(
            "%(value)s is not a web origin: use scheme and host only, e.g. https://clinic.example.",
            params={"value": value},
        )


def validate_string_list(
    value: object, *, item_validator: Callable[[str], None] | None = None, what: str = "entry"
) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValidationError(f"Expected a list of non-empty texts (one {what} each).")
    if len(set(value)) != len(value):
        raise ValidationError(f"Each {what} may appear only once.")
    if len(value) > CLINIC_TEXT_LIMITS["list_items"]:
        raise ValidationError(f"At most {CLINIC_TEXT_LIMITS['list_items']} entries.")
    limit = CLINIC_TEXT_LIMITS["list_item"]
    for item in value:
        if len(item) > limit:
            raise ValidationError(f"Each {what} may have at most {limit} characters.")
        if any(char in item for char in "\r\n\v\f\x85\u2028\u2029"):
            raise ValidationError(f"Each {what} must be one line.")
    if item_validator:
        for item in value:
            item_validator(item)


_LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def validate_webhook_url(value: str) -> None:
    """An https URL whose host is not obviously internal. This is the early, friendly check at entry; delivery
    resolves the name and refuses any non-public address again (a name can be re-pointed after it was saved)."""
    from django.conf import settings

    if getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False):
        return
    parts = urlsplit(value)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme != "https" or not host:
        raise ValidationError("Use an https:// URL.")
    if parts.username or parts.password:
        raise ValidationError("Do not put credentials in the webhook URL.")
    if host == "localhost" or host.endswith(_LOCAL_NAMES):
        raise ValidationError("The webhook must be reachable on the public internet, not a local name.")
    try:  # every literal form browsers and resolvers accept: 127.0.0.1, 2130706433, 0x7f.1, [::1] ...
        address = ipaddress.ip_address(socket.inet_ntoa(socket.inet_aton(host)) if ":" not in host else host)
    except (OSError, ValueError):
        return  # a host name: checked again, resolved, at delivery
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        raise ValidationError("The webhook must be a public address, not a private, loopback or link-local one.")


def default_dial_countries() -> list[str]:
    return list(DEFAULT_DIAL_COUNTRIES)


def validate_dial_countries(value: object) -> None:
    validate_string_list(value, what="country")
    unknown = [code for code in cast(list[str], value) if not is_country_code(code)]
    if unknown:
        raise ValidationError("Not a country code such as US or CA: %(codes)s.", params={"codes": ", ".join(unknown)})


def validate_origin_list(value: object) -> None:
    validate_string_list(value, item_validator=validate_origin, what="origin")


def validate_service_list(value: object) -> None:
    validate_string_list(value, what="service")


def validate_provider_list(value: object) -> None:
    validate_string_list(value, what="provider")


def validate_language_list(value: object) -> None:
    validate_string_list(value, what="language")
    codes = cast(list[str], value)  # validate_string_list has checked that it is a list of texts
    if not codes:
        raise ValidationError("Choose at least one language.")
    unknown = [code for code in codes if code not in AGENT_LANGUAGES]
    if unknown:
        raise ValidationError("Unsupported language code(s): %(codes)s.", params={"codes": ", ".join(unknown)})


MAX_ACK_TARGET_MINUTES = 24 * 60
# The clinic setting each escalation level is measured against (levels not named use the "other" target).
ACK_TARGET_FIELDS = {
    EscalationLevel.EMERGENCY.value: "ack_target_emergency_minutes",
    EscalationLevel.URGENT.value: "ack_target_urgent_minutes",
    EscalationLevel.HUMAN.value: "ack_target_other_minutes",
    EscalationLevel.UNCERTAIN.value: "ack_target_other_minutes",
}


class Organization(models.Model):
    """A clinic: the tenant every call, user and setting belongs to."""

    class AfterHoursPolicy(models.TextChoices):
        TAKE_MESSAGE = "take_message", "Take a message for a callback"
        FORWARD_ON_CALL = "forward_on_call", "Forward to the on-call phone"
        EMERGENCY_ONLY = "emergency_only", "Emergency instructions only"

    class Voice(models.TextChoices):
        MARIN = "marin", "Marin"
        CEDAR = "cedar", "Cedar"
        ALLOY = "alloy", "Alloy"
        ASH = "ash", "Ash"
        BALLAD = "ballad", "Ballad"
        CORAL = "coral", "Coral"
        ECHO = "echo", "Echo"
        SAGE = "sage", "Sage"
        SHIMMER = "shimmer", "Shimmer"
        VERSE = "verse", "Verse"

    class TurnDetection(models.TextChoices):
        SERVER_VAD = "server_vad", "Voice activity: a pause of the set length ends the caller's turn"
        SEMANTIC_VAD = "semantic_vad", "Semantic: a model judges whether the caller has finished"

    class Eagerness(models.TextChoices):
        AUTO = "auto", "Auto (as medium)"
        LOW = "low", "Low: waits up to 8 s for the caller to go on"
        MEDIUM = "medium", "Medium: up to 4 s"
        HIGH = "high", "High: up to 2 s"

    class NoiseReduction(models.TextChoices):
        AUTO = "auto", "Near field on phone calls, off in the browser"
        NEAR_FIELD = "near_field", "Near field (handsets and headsets)"
        FAR_FIELD = "far_field", "Far field (laptops and speakerphones)"
        OFF = "off", "Off"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_timezone], help_text="IANA time zone."
    )
    after_hours_policy = models.CharField(
        max_length=20, choices=AfterHoursPolicy.choices, default=AfterHoursPolicy.TAKE_MESSAGE
    )
    after_hours_message = models.TextField(
        blank=True,
        validators=[MaxLengthValidator(CLINIC_TEXT_LIMITS["after_hours_message"])],
        help_text="Optional: what the agent says after hours instead of the default for the policy.",
    )
    services = models.JSONField(
        default=list, blank=True, validators=[validate_service_list], help_text="Services the clinic offers."
    )
    providers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_provider_list],
        help_text="Names of the clinic's doctors and other providers (the agent knows them; transcription listens "
        "for them).",
    )
    escalation_phone = models.CharField(
        max_length=16, blank=True, validators=[e164_validator], help_text="Where urgent calls are transferred (E.164)."
    )
    on_call_phone = models.CharField(
        max_length=16, blank=True, validators=[e164_validator], help_text="After-hours on-call phone (E.164)."
    )
    dial_countries = models.JSONField(
        default=default_dial_countries,
        validators=[validate_dial_countries],
        help_text="Countries (ISO codes such as US, CA) whose numbers calls may be sent to; premium-rate and "
        "shared-cost numbers never are. Set by operators.",
    )
    publishable_key = models.CharField(max_length=64, unique=True, default=generate_publishable_key, editable=False)
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_origin_list],
        help_text="Web origins allowed to start calls with the publishable key, e.g. https://clinic.example.",
    )
    # Off: the server attaches to every browser call and alone records the agent's lines and runs the tools; the
    # browser may only report the caller's own lines. On: for a frontend the server cannot attach to, the browser's
    # forwarded events (agent lines, tool calls, usage) are accepted and marked as forwarded on the call.
    event_forwarding = models.BooleanField(
        default=False,
        help_text="Accept agent lines and tool calls forwarded by the website (POST /api/calls/{id}/events) for "
        "calls the server is not attached to. They are marked as forwarded on the call.",
    )
    # Whole-call recordings are the clinic's choice (and its duty to tell callers, which the line below does): off by
    # default. Phone calls the agent answers are recorded by Twilio, both sides; the console plays them.
    record_calls = models.BooleanField(
        default=False,
        help_text="Record phone calls the agent answers (Twilio, both sides, from the first word). Callers hear "
        '"This call is recorded." first. Staff play the recording on the call\'s page. Browser calls are not '
        "recorded.",
    )

    # Agent settings.
    agent_voice = models.CharField(max_length=16, choices=Voice.choices, default=Voice.MARIN)
    agent_languages = models.JSONField(default=default_agent_languages, validators=[validate_language_list])
    agent_greeting = models.TextField(
        blank=True,
        validators=[MaxLengthValidator(CLINIC_TEXT_LIMITS["greeting"])],
        help_text="The agent's opening line.",
    )
    agent_extra_instructions = models.TextField(
        blank=True,
        validators=[MaxLengthValidator(CLINIC_TEXT_LIMITS["extra_instructions"])],
        help_text="Clinic-specific rules for the agent, one per line. They never override the agent's safety rules.",
    )
    max_call_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(60)]
    )
    vad_threshold = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Voice activity threshold (0 to 1); raise it for noisy callers.",
    )
    vad_silence_ms = models.PositiveIntegerField(
        default=500,
        validators=[MinValueValidator(200), MaxValueValidator(3000)],
        help_text="Silence (ms) that ends a caller's turn.",
    )
    turn_detection = models.CharField(
        max_length=16,
        choices=TurnDetection.choices,
        default=TurnDetection.SERVER_VAD,
        help_text="How the end of a caller's turn is detected. Semantic detection waits through pauses while a "
        "caller reads out a date of birth or a member ID.",
    )
    vad_eagerness = models.CharField(
        max_length=8,
        choices=Eagerness.choices,
        default=Eagerness.AUTO,
        help_text="Semantic turn detection only: how soon the agent answers.",
    )
    idle_timeout_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(5000), MaxValueValidator(30000)],
        help_text="Voice-activity turn detection only: after this much silence (ms) from the caller once the agent "
        "has finished speaking, the agent prompts them. Empty: wait.",
    )
    noise_reduction = models.CharField(
        max_length=16,
        choices=NoiseReduction.choices,
        default=NoiseReduction.AUTO,
        help_text="Filtering of the caller's audio before turn detection and the model.",
    )

    # Retention (days; empty = keep forever). `manage.py purge_expired` deletes what is older; audit rows stay.
    transcript_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text="Delete call transcripts this many days after the call started (empty: keep forever).",
    )
    intake_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text="Delete intakes (patient details) this many days after the call started (empty: keep forever).",
    )
    call_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text="Delete whole calls (with transcript, intake and escalations) this many days after they started "
        "(empty: keep forever).",
    )

    # Escalation notifications POSTed to the clinic's own system, signed with webhook_secret (HMAC-SHA256).
    webhook_url = models.URLField(
        blank=True,
        validators=[validate_webhook_url],
        help_text="Optional https URL that receives escalation notifications.",
    )
    webhook_secret = models.CharField(max_length=64, default=generate_webhook_secret, editable=False)

    # On-call pages carry level, clinic, age and a link; the caller's name only when the clinic allows it.
    paging_includes_caller_name = models.BooleanField(
        default=False,
        help_text="Put the caller's name into on-call SMS and e-mail pages (off: level, clinic, age and a link "
        "only). Transcript text is never sent.",
    )

    # How soon staff should acknowledge an escalation, per level: the board colours its age against it (amber past
    # half of it, red past it). Defaults follow a triage desk's habit: emergencies within minutes.
    ack_target_emergency_minutes = models.PositiveIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_ACK_TARGET_MINUTES)],
        help_text="Acknowledge emergencies within this many minutes (the board turns their age red after it).",
    )
    ack_target_urgent_minutes = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_ACK_TARGET_MINUTES)],
        help_text="Acknowledge urgent escalations within this many minutes.",
    )
    ack_target_other_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_ACK_TARGET_MINUTES)],
        help_text="Acknowledge requests for a person and the agent's uncertainty within this many minutes.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(publishable_key__startswith="pk_"), name="org_publishable_key_prefix"),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{field}__gte": 1, f"{field}__lte": MAX_ACK_TARGET_MINUTES}),
                    name=f"org_{field}_range",
                )
                for field in sorted(set(ACK_TARGET_FIELDS.values()))
            ),
            models.CheckConstraint(
                condition=Q(webhook_url="") | Q(webhook_url__startswith="https://"), name="org_webhook_url_https"
            ),
            models.CheckConstraint(
                condition=Q(after_hours_policy__in=["take_message", "forward_on_call", "emergency_only"]),
                name="org_after_hours_policy_valid",
            ),
            models.CheckConstraint(
                condition=Q(escalation_phone="") | Q(escalation_phone__regex=E164_REGEX),
                name="org_escalation_phone_e164",
            ),
            models.CheckConstraint(
                condition=Q(on_call_phone="") | Q(on_call_phone__regex=E164_REGEX), name="org_on_call_phone_e164"
            ),
            models.CheckConstraint(
                condition=Q(max_call_minutes__gte=1, max_call_minutes__lte=60), name="org_max_call_minutes_range"
            ),
            models.CheckConstraint(condition=Q(vad_threshold__gte=0, vad_threshold__lte=1), name="org_vad_range"),
            models.CheckConstraint(
                condition=Q(vad_silence_ms__gte=200, vad_silence_ms__lte=3000), name="org_vad_silence_range"
            ),
            models.CheckConstraint(
                condition=Q(turn_detection__in=["server_vad", "semantic_vad"]), name="org_turn_detection_valid"
            ),
            models.CheckConstraint(
                condition=Q(vad_eagerness__in=["auto", "low", "medium", "high"]), name="org_vad_eagerness_valid"
            ),
            models.CheckConstraint(
                condition=Q(noise_reduction__in=["auto", "near_field", "far_field", "off"]),
                name="org_noise_reduction_valid",
            ),
            # The idle timeout exists for voice-activity detection only (the API supports it for server_vad alone).
            models.CheckConstraint(
                condition=Q(idle_timeout_ms__isnull=True)
                | Q(idle_timeout_ms__gte=5000, idle_timeout_ms__lte=30000, turn_detection="server_vad"),
                name="org_idle_timeout_server_vad_range",
            ),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{field}__isnull": True})
                    | Q(**{f"{field}__gte": 1, f"{field}__lte": MAX_RETENTION_DAYS}),
                    name=f"org_{field}_range",
                )
                for field in ("transcript_retention_days", "intake_retention_days", "call_retention_days")
            ),
            # A forward-to-on-call policy without a phone to forward to would leave callers nowhere.
            models.CheckConstraint(
                condition=~Q(after_hours_policy="forward_on_call") | ~Q(on_call_phone=""),
                name="org_forward_policy_needs_on_call_phone",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.webhook_url and not self.webhook_url.startswith("https://"):
            raise ValidationError({"webhook_url": "Use an https:// URL."})
        if self.after_hours_policy == self.AfterHoursPolicy.FORWARD_ON_CALL and not self.on_call_phone:
            raise ValidationError({"on_call_phone": "Required when after-hours calls are forwarded to on-call."})
        for field in ("escalation_phone", "on_call_phone"):
            number = getattr(self, field)
            refusal = (
                dial_refusal(number, self.dial_countries) if number and isinstance(self.dial_countries, list) else None
            )
            if refusal:
                raise ValidationError({field: refusal})
        if self.idle_timeout_ms is not None and self.turn_detection != self.TurnDetection.SERVER_VAD:
            raise ValidationError(
                {"idle_timeout_ms": "The idle timeout works with voice-activity turn detection only; leave it empty."}
            )

    def paging_for(self, level: str) -> tuple[str, int]:
        """(PagingAction, re-page minutes) for a new escalation of `level`: the clinic's rule, else the default."""
        for rule in self.paging_rules.all():  # a handful of rows (or a prefetch)
            if rule.level == level:
                return rule.action, rule.repage_minutes
        return DEFAULT_PAGING.get(level, (PagingAction.BOARD, 10))

    def on_call_now(self, at: dt.datetime) -> list[OnCallPerson]:
        """The active on-call people covering `at`, in list order (who is paged first, then next)."""
        people = self.on_call_people.filter(active=True).order_by("position", "id")
        return [person for person in people if person.covers(at)]

    def may_dial(self, number: str) -> bool:
        """Checked again when a call is sent to a number (the stored one may predate the rules or the countries)."""
        return bool(number) and dial_refusal(number, self.dial_countries) is None

    def regenerate_publishable_key(self) -> None:
        self.publishable_key = generate_publishable_key()
        self.save(update_fields=["publishable_key", "updated_at"])

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def ack_target_seconds(self, level: str) -> int:
        """How soon an escalation of `level` should be acknowledged (the board's age colour)."""
        return 60 * int(getattr(self, ACK_TARGET_FIELDS.get(level, "ack_target_other_minutes")))

    # --- Business hours -----------------------------------------------------------------------------------------
    # Intervals are fetched once per call of these methods (or taken from a prefetch of `hours`/`closures`).

    def _hours_by_weekday(self) -> dict[int, list[BusinessHours]]:
        by_day: dict[int, list[BusinessHours]] = {}
        for interval in self.hours.all():
            by_day.setdefault(interval.weekday, []).append(interval)
        return by_day

    def _closed_dates(self) -> set[dt.date]:
        return {closure.date for closure in self.closures.all()}

    def _intervals_starting_on(
        self, day: dt.date, by_day: dict[int, list[BusinessHours]], closed: set[dt.date]
    ) -> Iterable[tuple[dt.datetime, dt.datetime]]:
        """Open intervals (UTC) that start on local date `day`; none on a closure date."""
        if day in closed:
            return []
        out = []
        for interval in by_day.get(day.weekday(), []):
            out.append(interval.bounds_on(day, self.tz))
        return sorted(out)

    def is_open(self, at: dt.datetime) -> bool:
        by_day, closed = self._hours_by_weekday(), self._closed_dates()
        at_utc = at.astimezone(dt.UTC)
        local_day = at.astimezone(self.tz).date()
        # Yesterday's overnight interval may still be running.
        for day in (local_day - dt.timedelta(days=1), local_day):
            for start, end in self._intervals_starting_on(day, by_day, closed):
                if start <= at_utc < end:
                    return True
        return False

    def open_intervals(self, since: dt.date, until: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The clinic's open intervals (UTC, by its current hours and closures) that start on local dates `since`
        to `until`, both included, plus the day before's (an overnight interval runs into `since`)."""
        by_day, closed = self._hours_by_weekday(), self._closed_dates()
        out: list[tuple[dt.datetime, dt.datetime]] = []
        day = since - dt.timedelta(days=1)
        while day <= until:
            out += self._intervals_starting_on(day, by_day, closed)
            day += dt.timedelta(days=1)
        return out

    def next_opening(self, at: dt.datetime, *, horizon_days: int = 400) -> dt.datetime | None:
        """When the clinic next opens after `at` (None if it is open at `at`, or has no hours in the horizon)."""
        if self.is_open(at):
            return None
        by_day, closed = self._hours_by_weekday(), self._closed_dates()
        at_utc = at.astimezone(dt.UTC)
        local_day = at.astimezone(self.tz).date()
        for offset in range(horizon_days):
            for start, _end in self._intervals_starting_on(local_day + dt.timedelta(days=offset), by_day, closed):
                if start > at_utc:
                    return start.astimezone(self.tz)
        return None


class BusinessHours(models.Model):
    """One opening interval on a weekday. `closes` at or before `opens` means it ends the next day (overnight);
    equal times mean open around the clock."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        verbose_name = "business hours interval"
        verbose_name_plural = "business hours"
        constraints = [
            models.CheckConstraint(condition=Q(weekday__gte=0, weekday__lte=6), name="hours_weekday_range"),
            models.UniqueConstraint(fields=["organization", "weekday", "opens"], name="hours_unique_start"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"

    @property
    def is_overnight(self) -> bool:
        return self.closes <= self.opens

    def bounds_on(self, day: dt.date, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """UTC start and end of this interval when it starts on local date `day`.

        Local wall times are converted with the zone's rules for that date, so a 9:00 opening stays 9:00 across DST
        changes; a wall time inside a spring-forward gap is read with the offset before the change (02:30 -> 03:30).
        """
        end_day = day + dt.timedelta(days=1) if self.is_overnight else day
        start = dt.datetime.combine(day, self.opens, tzinfo=tz).astimezone(dt.UTC)
        end = dt.datetime.combine(end_day, self.closes, tzinfo=tz).astimezone(dt.UTC)
        return start, end

    def minutes(self) -> tuple[int, int]:
        """Start and end as minutes from the start of the week (end may pass 7 days for Sunday overnight)."""
        start = self.weekday * 1440 + self.opens.hour * 60 + self.opens.minute
        length = (self.closes.hour * 60 + self.closes.minute) - (self.opens.hour * 60 + self.opens.minute)
        if length <= 0:
            length += 1440
        return start, start + length


def validate_hours_do_not_overlap(intervals: Iterable[BusinessHours]) -> None:
    """Raise if any two weekly intervals overlap (including overnight ones spilling into the next day)."""
    week = 7 * 1440
    spans = []
    for interval in intervals:
        start, end = interval.minutes()
        spans.append((start, end, interval))
        if end > week:  # Sunday overnight wraps to Monday morning
            spans.append((start - week, end - week, interval))
    spans.sort(key=lambda span: span[0])
    for (_s1, e1, first), (s2, _e2, second) in itertools.pairwise(spans):
        if s2 < e1 and first is not second:
            raise ValidationError(f"Opening hours overlap: {first} and {second}.")


class Closure(models.Model):
    """A date the clinic is closed (holiday, training day)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="closures")
    date = models.DateField()
    label = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "date"], name="closure_unique_date")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.label}".strip()


class IntakeField(models.Model):
    """One field of the structured intake the agent collects."""

    class FieldType(models.TextChoices):
        TEXT = "text", "Text"
        DATE = "date", "Date (ISO, YYYY-MM-DD)"
        PHONE = "phone", "Phone number (E.164)"
        CHOICE = "choice", "One of a list"
        BOOLEAN = "boolean", "Yes / no"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="intake_fields")
    name = models.CharField(
        max_length=50,
        validators=[RegexValidator(FIELD_NAME_REGEX, "Use lowercase letters, digits and underscores.")],
    )
    field_type = models.CharField(max_length=10, choices=FieldType.choices, default=FieldType.TEXT)
    required = models.BooleanField(default=False)
    description = models.CharField(max_length=300, blank=True, help_text="What the agent should ask for.")
    choices = models.JSONField(default=list, blank=True, help_text="For 'one of a list' fields: the allowed values.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="intake_field_unique_name"),
            models.CheckConstraint(condition=Q(name__regex=FIELD_NAME_REGEX), name="intake_field_name_format"),
            models.CheckConstraint(
                condition=Q(field_type__in=["text", "date", "phone", "choice", "boolean"]),
                name="intake_field_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.field_type == self.FieldType.CHOICE:
            validate_string_list(self.choices, what="choice")
            if not self.choices:
                raise ValidationError({"choices": "List the allowed values for a 'one of a list' field."})
        elif self.choices:
            raise ValidationError({"choices": "Only 'one of a list' fields take choices."})


DEFAULT_INTAKE_FIELDS: list[dict] = [
    {"name": "patient_name", "field_type": "text", "required": True, "description": "Patient's full name."},
    {"name": "date_of_birth", "field_type": "date", "required": True, "description": "Date of birth (YYYY-MM-DD)."},
    {
        "name": "callback_number",
        "field_type": "phone",
        "required": True,
        "description": "Phone number to call back (E.164).",
    },
    {"name": "reason_for_call", "field_type": "text", "required": True, "description": "Why the caller is calling."},
    {
        "name": "urgency",
        "field_type": "choice",
        "required": True,
        "description": "How urgent the need is.",
        "choices": [urgency.value for urgency in Urgency],
    },
    {"name": "preferred_time", "field_type": "text", "required": False, "description": "Preferred appointment time."},
    {"name": "is_new_patient", "field_type": "boolean", "required": False, "description": "New to the clinic?"},
    {
        "name": "insurance_provider",
        "field_type": "text",
        "required": False,
        "description": "Insurance provider, if any.",
    },
]


class EscalationPhrase(models.Model):
    """A clinic-specific phrase that triggers an escalation of the given level when a caller says it."""

    Level = EscalationLevel  # restricted to PHRASE_LEVELS by the field's choices and a constraint

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="escalation_phrases")
    level = models.CharField(max_length=10, choices=PHRASE_LEVEL_CHOICES)
    phrase = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "level", "phrase"], name="escalation_phrase_unique"),
            models.CheckConstraint(
                condition=Q(level__in=[level.value for level in PHRASE_LEVELS]), name="escalation_phrase_level_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.level}: {self.phrase}"


class TwilioNumber(models.Model):
    """A phone number (E.164) routed to this clinic by Twilio; incoming calls find their clinic by it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="twilio_numbers")
    number = models.CharField(max_length=16, unique=True, validators=[e164_validator])
    label = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(number__regex=E164_REGEX), name="twilio_number_e164")]

    def __str__(self) -> str:
        return self.number


class Membership(models.Model):
    """A user's role in one clinic. A user may belong to several clinics."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Clinic admin"
        STAFF = "staff", "Staff"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org"),
            models.CheckConstraint(condition=Q(role__in=["admin", "staff"]), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"


def all_weekdays() -> list[int]:
    return list(range(7))


def validate_weekdays(value: object) -> None:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 6 for day in value)
        or len(set(value)) != len(value)
    ):
        raise ValidationError("Choose one or more weekdays (0 = Monday … 6 = Sunday), each once.")


class OnCallPerson(models.Model):
    """Someone paged by SMS and/or e-mail when an escalation needs a person (calls.paging). The list is tried in
    `position` order among those covering the moment, in the clinic's time zone."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="on_call_people")
    name = models.CharField(max_length=100)
    mobile = models.CharField(
        max_length=16, blank=True, validators=[e164_validator], help_text="Mobile number for SMS pages (E.164)."
    )
    email = models.EmailField(max_length=254, blank=True, help_text="Address for e-mail pages.")
    position = models.PositiveSmallIntegerField(default=0, help_text="Paged in this order (lowest first).")
    weekdays = models.JSONField(default=all_weekdays, validators=[validate_weekdays])
    starts = models.TimeField(default=dt.time(0), help_text="Covers from (clinic time).")
    ends = models.TimeField(
        default=dt.time(0),
        help_text="Covers until (clinic time); at or before the start means overnight, equal means all day.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "on-call person"
        verbose_name_plural = "on-call people"
        constraints = [
            models.CheckConstraint(condition=~Q(mobile="") | ~Q(email=""), name="on_call_has_mobile_or_email"),
            models.CheckConstraint(condition=Q(mobile="") | Q(mobile__regex=E164_REGEX), name="on_call_mobile_e164"),
        ]
        indexes = [
            # Organization.on_call_now: a clinic's list in paging order.
            models.Index(fields=["organization", "position"], name="on_call_org_position_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if not self.mobile and not self.email:
            raise ValidationError("Give a mobile number, an e-mail address or both.")
        if self.mobile and isinstance(getattr(self.organization, "dial_countries", None), list):
            refusal = dial_refusal(self.mobile, self.organization.dial_countries)
            if refusal:
                raise ValidationError({"mobile": refusal})

    def covers(self, at: dt.datetime) -> bool:
        """Whether this person is on call at `at` (hours read in the clinic's time zone)."""
        local = at.astimezone(self.organization.tz)
        days, moment, weekday = set(self.weekdays or []), local.time(), local.weekday()
        if self.starts == self.ends:
            return weekday in days
        if self.starts < self.ends:
            return weekday in days and self.starts <= moment < self.ends
        # Overnight: the evening of a listed day, or the morning after one.
        return (weekday in days and moment >= self.starts) or ((weekday - 1) % 7 in days and moment < self.ends)

    @property
    def hours_label(self) -> str:
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        days = "every day" if len(self.weekdays) == 7 else ", ".join(names[day] for day in sorted(self.weekdays))
        hours = "all day" if self.starts == self.ends else f"{self.starts:%H:%M} to {self.ends:%H:%M}"
        return f"{days}, {hours}"


class PagingRule(models.Model):
    """What a clinic does with a new escalation of one level: page the on-call list (re-paging the next person
    after `repage_minutes` until someone acknowledges) or show it on the board only. A level without a row follows
    organizations.vocabulary.DEFAULT_PAGING."""

    Action = PagingAction

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="paging_rules")
    level = models.CharField(max_length=10, choices=EscalationLevel.choices)
    action = models.CharField(max_length=8, choices=PagingAction.choices, default=PagingAction.PAGE)
    repage_minutes = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text="Minutes without an acknowledgement before the next person is paged.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "level"], name="paging_rule_unique_level"),
            models.CheckConstraint(condition=Q(level__in=EscalationLevel.values), name="paging_rule_level_valid"),
            models.CheckConstraint(condition=Q(action__in=PagingAction.values), name="paging_rule_action_valid"),
            models.CheckConstraint(
                condition=Q(repage_minutes__gte=1, repage_minutes__lte=120), name="paging_rule_repage_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()}: {self.get_action_display()}"
