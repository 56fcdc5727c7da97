"""Calls and what happens in them: transcript segments, the intake, escalations."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.base import ModelBase

from organizations.clock import clinic_time
from organizations.models import OnCallPerson, Organization
from organizations.vocabulary import (
    ESCALATION_SEVERITY,
    EscalationLevel,
    PageChannel,
    PageStatus,
    Urgency,
)

# A call's caller-side token outlives the call by this much (the browser's hang-up and the caller's last words may
# arrive late), then stops working.
CALLER_GRACE = dt.timedelta(minutes=2)


# What the browser reported rather than the server saw: TranscriptSegment.metadata[SEGMENT_SOURCE_KEY] is
# SOURCE_FORWARDED on such lines, and Call.metadata[FORWARDED_KEY] is true once a call took forwarded events.
SEGMENT_SOURCE_KEY = "source"
SOURCE_FORWARDED = "forwarded"
FORWARDED_KEY = "forwarded_events"


def hash_call_token(token: str) -> str:
    """Call tokens are random (not passwords), so a keyed SHA-256 is enough and lookups stay fast."""
    return hmac.new(settings.SECRET_KEY.encode(), token.encode(), hashlib.sha256).hexdigest()


class Call(models.Model):
    class Channel(models.TextChoices):
        WEB = "web", "Web"
        PHONE = "phone", "Phone"

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Abandoned"

    class EndReason(models.TextChoices):
        CALLER_HANGUP = "caller_hangup", "Caller hung up"
        AGENT_ENDED = "agent_ended", "Agent ended the call"
        TRANSFERRED = "transferred", "Transferred to a human"
        ERROR = "error", "Error"
        TIMEOUT = "timeout", "Reached the maximum call length"
        INTERRUPTED = "interrupted", "Interrupted (no activity)"

    TERMINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.ABANDONED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="calls")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    escalated = models.BooleanField(default=False)
    # The highest level of the call's escalations so far ("" when it has none).
    escalation_level = models.CharField(max_length=10, choices=EscalationLevel.choices, blank=True)
    # The intake's urgency raised to what the highest escalation means (services keep it so; an Emergency
    # escalation with no intake is an emergency call), so the list, its filter and the API agree with the board.
    urgency = models.CharField(max_length=10, choices=Urgency.choices, blank=True)
    caller_name = models.CharField(max_length=200, blank=True)
    caller_phone = models.CharField(max_length=32, blank=True)
    twilio_call_sid = models.CharField(max_length=64, null=True, blank=True)
    openai_call_id = models.CharField(max_length=128, null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    usage = models.JSONField(default=dict, blank=True)  # token usage summed from response.done events
    # The call ledger (calls.ledger, calls.services.call_usage_add): real columns, so a clinic's day sums in SQL.
    # Token counts are summed over every response.done (cancelled responses are billed too); cached tokens are part
    # of the input text/audio counts, as OpenAI reports them (docs/facts.md#usage).
    input_text_tokens = models.PositiveBigIntegerField(default=0)
    input_audio_tokens = models.PositiveBigIntegerField(default=0)
    input_cached_tokens = models.PositiveBigIntegerField(default=0)
    input_cached_audio_tokens = models.PositiveBigIntegerField(default=0)  # the audio part of the cached tokens
    output_text_tokens = models.PositiveBigIntegerField(default=0)
    output_audio_tokens = models.PositiveBigIntegerField(default=0)
    # Caller transcription: token-billed models report tokens, duration-billed ones (gpt-realtime-whisper) seconds.
    transcription_input_tokens = models.PositiveBigIntegerField(default=0)
    transcription_output_tokens = models.PositiveBigIntegerField(default=0)
    transcription_audio_ms = models.PositiveBigIntegerField(default=0)
    # The models the usage was billed under (the price table is looked up by these, settings may change later).
    realtime_model = models.CharField(max_length=64, blank=True)
    transcription_model = models.CharField(max_length=64, blank=True)
    # Per turn: ms from the end of the caller's speech to the agent's first audio; the first TURN_LATENCY_KEPT only.
    turn_latencies_ms = models.JSONField(default=list, blank=True)
    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    # Phone calls: hash of the one-time Media Streams token, and when its (single) stream was accepted.
    stream_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    stream_started_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)  # for the reaper of interrupted calls

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=["web", "phone"]), name="call_channel_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["in_progress", "completed", "failed", "abandoned"]), name="call_status_valid"
            ),
            # An ended call has an end time; a live one does not.
            models.CheckConstraint(
                condition=(Q(status="in_progress", ended_at__isnull=True))
                | (~Q(status="in_progress") & Q(ended_at__isnull=False)),
                name="call_ended_at_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")), name="call_ends_after_start"
            ),
            models.CheckConstraint(
                condition=(Q(escalated=True) & ~Q(escalation_level="")) | Q(escalated=False, escalation_level=""),
                name="call_escalation_level_iff_escalated",
            ),
            models.UniqueConstraint(
                fields=["twilio_call_sid"], condition=Q(twilio_call_sid__isnull=False), name="call_twilio_sid_unique"
            ),
            models.UniqueConstraint(
                fields=["openai_call_id"], condition=Q(openai_call_id__isnull=False), name="call_openai_id_unique"
            ),
        ]
        indexes = [
            # API GET /api/calls and the console's call changelist: a clinic's calls newest first.
            models.Index(fields=["organization", "-started_at"], name="call_org_started_idx"),
            # GET /api/calls?status=… and ?urgency=… (and the console's filters): a filter that matches few rows must
            # not walk the clinic's whole call history in start order (bench/api.py: 7.7x slower at 1M calls).
            models.Index(fields=["organization", "status", "-started_at"], name="call_org_status_started_idx"),
            models.Index(fields=["organization", "urgency", "-started_at"], name="call_org_urgency_started_idx"),
            # Reaper: live calls with no recent activity (status = in_progress is a small slice of the table).
            models.Index(fields=["started_at"], condition=Q(status="in_progress"), name="call_in_progress_idx"),
        ]

    def __str__(self) -> str:
        # The page title: in the clinic's zone, labelled, like every time on the page.
        started = clinic_time(self.started_at, self.organization)
        return f"{self.get_channel_display()} call {started} ({self.get_status_display()})"

    @property
    def is_ended(self) -> bool:
        return self.status != self.Status.IN_PROGRESS

    @property
    def is_reviewed(self) -> bool:
        return self.reviewed_at is not None

    def issue_token(self) -> str:
        """Create a new caller-side token; only its hash is stored, the token is shown once."""
        token = "ct_" + secrets.token_urlsafe(32)
        self.token_hash = hash_call_token(token)
        return token

    def token_matches(self, token: str) -> bool:
        return bool(self.token_hash) and hmac.compare_digest(self.token_hash, hash_call_token(token))

    def caller_access_ends_at(self) -> dt.datetime:
        """When the caller-side token stops working: the call's end (for a live call, the latest end the clinic's
        maximum call length allows) plus CALLER_GRACE."""
        end = self.ended_at or self.started_at + dt.timedelta(minutes=self.organization.max_call_minutes)
        return end + CALLER_GRACE


class TranscriptSegment(models.Model):
    class Speaker(models.TextChoices):
        CALLER = "caller", "Caller"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="segments")
    seq = models.PositiveIntegerField()
    speaker = models.CharField(max_length=8, choices=Speaker.choices)
    text = models.TextField()
    occurred_at = models.DateTimeField()
    item_id = models.CharField(max_length=128, blank=True, help_text="Upstream conversation item id, when known.")
    # Transcripts arrive asynchronously (a caller's words may come after the agent's reply to them): `seq` is the
    # arrival order, `position` the place in the conversation; the transcript is shown by (position, seq).
    position = models.PositiveIntegerField(
        default=0, help_text="Place in the conversation (from the upstream item chain); ties keep arrival order."
    )
    interrupted = models.BooleanField(
        default=False, help_text="The caller spoke over this agent line: they did not hear all of it."
    )
    heard_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Milliseconds of an interrupted agent line the caller heard."
    )
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # The call detail and the console read a call's transcript in conversation order.
            models.Index(fields=["call", "position", "seq"], name="segment_conversation_order"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["call", "seq"], name="segment_unique_seq"),
            models.CheckConstraint(
                condition=Q(heard_ms__isnull=True) | Q(interrupted=True), name="segment_heard_ms_when_interrupted"
            ),
            # A redelivered upstream event is stored once.
            models.UniqueConstraint(fields=["call", "item_id"], condition=~Q(item_id=""), name="segment_unique_item"),
            models.CheckConstraint(
                condition=Q(speaker__in=["caller", "agent", "system"]), name="segment_speaker_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.speaker}"


class Intake(models.Model):
    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="intake")
    data = models.JSONField(default=dict)
    urgency = models.CharField(max_length=10, choices=Urgency.choices, blank=True)
    completed = models.BooleanField(default=False)
    # Written or last changed from what a browser forwarded (event forwarding, or the browser's end of the call),
    # not from what the server's own sideband or bridge saw.
    forwarded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(urgency__in=["", *Urgency.values]), name="intake_urgency_valid"),
        ]

    def __str__(self) -> str:
        return f"Intake for {self.call_id}"


class EscalationSource(models.TextChoices):
    """Who raised an escalation."""

    KEYWORD = "keyword", "Triage (keyword)"
    AGENT_TOOL = "agent_tool", "Agent tool call"
    STAFF = "staff", "Staff"
    SYSTEM = "system", "System (transfer, voicemail)"


class Escalation(models.Model):
    Level = EscalationLevel

    Source = EscalationSource

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    SEVERITY = ESCALATION_SEVERITY  # higher is more severe; the call keeps its highest level

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="escalations")
    # Denormalised from the call so the clinic's queue is one indexed scan.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="escalations")
    level = models.CharField(max_length=10, choices=Level.choices)
    source = models.CharField(max_length=12, choices=Source.choices)
    reason = models.CharField(max_length=300, blank=True)
    evidence = models.TextField(blank=True)
    # How triage decided, for source "keyword": rule ids, evidence, vetoes, the model's level and probability.
    triage = models.JSONField(default=dict, blank=True)
    # Raised from the caller's words that reached us after the call ended: call the caller back now.
    after_call = models.BooleanField(default=False)
    # Raised from events a browser forwarded (event forwarding), not from what the server's sideband or bridge saw.
    forwarded = models.BooleanField(default=False)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(  # the staff member, for source "staff"; empty for automatic escalations
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    # An on-call person who acknowledged by SMS (`ACK`); acknowledged_by stays empty then.
    acknowledged_by_person = models.ForeignKey(
        OnCallPerson, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # On-call paging (calls.paging): when the next person is paged (empty: not paging), and how many were paged.
    paging_next_at = models.DateTimeField(null=True, blank=True)
    paging_step = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(level__in=EscalationLevel.values), name="escalation_level_valid"),
            models.CheckConstraint(condition=Q(source__in=EscalationSource.values), name="escalation_source_valid"),
            models.CheckConstraint(
                condition=Q(status="open")
                | Q(status="acknowledged", acknowledged_at__isnull=False)
                | Q(status="resolved", resolved_at__isnull=False),
                name="escalation_status_timestamps",
            ),
        ]
        indexes = [
            # Escalation queue and live board: a clinic's open escalations, newest first (partial: open ones only).
            models.Index(
                fields=["organization", "-created_at"], condition=Q(status="open"), name="escalation_open_idx"
            ),
            # Console queue and GET /api/escalations?status=…: a clinic's escalations by status and age.
            models.Index(fields=["organization", "status", "-created_at"], name="escalation_org_status_idx"),
            # The notification worker's re-page pass: escalations whose next page is due (partial: paging ones).
            models.Index(
                fields=["paging_next_at"], condition=Q(paging_next_at__isnull=False), name="escalation_paging_due_idx"
            ),
            # The clinic home page and the escalation export: a clinic's escalations raised in a date range.
            models.Index(fields=["organization", "created_at"], name="escalation_org_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()} escalation ({self.get_status_display()})"

    @property
    def severity(self) -> int:
        return self.SEVERITY[self.level]


class Notification(models.Model):
    """Outbox of escalation notifications: written in the escalation's transaction, delivered after commit and
    retried with back-off until delivered, so a Redis outage or a clinic webhook being down loses nothing."""

    class Channel(models.TextChoices):
        BOARD = "board", "Live board (channel layer)"
        WEBHOOK = "webhook", "Clinic webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="notifications")
    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    event = models.CharField(max_length=32, default="escalation.created")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=200, blank=True)  # an error class or HTTP status, never a body
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=["board", "webhook"]), name="notification_channel_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed"]), name="notification_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="delivered") | Q(delivered_at__isnull=False), name="notification_delivered_at"
            ),
        ]
        indexes = [
            # The delivery worker: pending notifications that are due (partial: pending rows only).
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="notification_due_idx"),
            # The board feed (calls.notifications.board_feed_poll): a clinic's board events since a cursor, polled
            # by every open board when the channel layer cannot carry them across processes (partial: board rows).
            models.Index(
                fields=["organization", "created_at"], condition=Q(channel="board"), name="notification_board_feed_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} ({self.status})"


class CallSummary(models.Model):
    """The post-call summary of an ended call, made from its stored transcript by the notification worker
    (calls.summaries). Written `pending` in the call-end transaction, so it is also the worker's queue: the call
    ends first, and an OpenAI outage only delays the summary. It sits beside the transcript, never replaces it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed (gave up)"

    call = models.OneToOneField(Call, on_delete=models.CASCADE, primary_key=True, related_name="summary")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=200, blank=True)  # an error class or HTTP status, never a body
    model = models.CharField(max_length=64, blank=True)  # the model that wrote it ("" when no model was asked)
    summary = models.TextField(blank=True)
    reason_for_call = models.CharField(max_length=300, blank=True)
    follow_up_needed = models.BooleanField(null=True, blank=True)  # null until done
    # What the summary cost (the Responses API's usage), kept so a price table can be applied later.
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "done", "failed"]), name="call_summary_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="done") | Q(completed_at__isnull=False, follow_up_needed__isnull=False),
                name="call_summary_done_complete",
            ),
        ]
        indexes = [
            # The worker: pending summaries that are due (partial: pending rows only).
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="call_summary_due_idx"),
        ]

    def __str__(self) -> str:
        return f"Summary of {self.call_id} ({self.status})"


class Page(models.Model):
    """One on-call page attempt: one person, one channel, one step of an escalation's paging (calls.paging).

    An outbox row like Notification: written in the transaction that decides to page, sent after commit by the
    notification worker, retried with back-off while the provider is unreachable, and claimed before it is sent
    so that one attempt is never sent twice. `step` numbers the people paged for the escalation (0 = first).
    """

    Channel = PageChannel
    Status = PageStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="pages")
    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="pages")
    person = models.ForeignKey(OnCallPerson, null=True, blank=True, on_delete=models.SET_NULL, related_name="pages")
    person_name = models.CharField(max_length=100)  # as it was when paged (the person may be renamed or removed)
    step = models.PositiveIntegerField()
    channel = models.CharField(max_length=8, choices=PageChannel.choices)
    to = models.CharField(max_length=254)  # the mobile number or e-mail address paged
    sender = models.CharField(max_length=16, blank=True)  # SMS: the Twilio number it was sent from (ACK replies)
    status = models.CharField(max_length=10, choices=PageStatus.choices, default=PageStatus.QUEUED)
    tries = models.PositiveSmallIntegerField(default=0)
    # When the next try is due (queued, or failed with a retry left); empty while claimed and once settled.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)  # a worker is sending it right now
    provider_id = models.CharField(max_length=64, blank=True)  # Twilio's MessageSid
    last_error = models.CharField(max_length=200, blank=True)  # an error class or provider code, never a body
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One attempt per person, channel and step: a redelivered decision cannot page twice.
            models.UniqueConstraint(fields=["escalation", "step", "channel"], name="page_unique_attempt"),
            models.UniqueConstraint(
                fields=["provider_id"], condition=~Q(provider_id=""), name="page_unique_provider_id"
            ),
            models.CheckConstraint(condition=Q(channel__in=PageChannel.values), name="page_channel_valid"),
            models.CheckConstraint(condition=Q(status__in=PageStatus.values), name="page_status_valid"),
        ]
        indexes = [
            # The notification worker: pages whose next try is due (partial: unsettled ones only).
            models.Index(fields=["next_attempt_at"], condition=Q(next_attempt_at__isnull=False), name="page_due_idx"),
            # The stale-claim sweep: pages a worker claimed and never settled.
            models.Index(fields=["claimed_at"], condition=Q(claimed_at__isnull=False), name="page_claimed_idx"),
            # The inbound SMS `ACK`: pages sent to this number.
            models.Index(fields=["to", "channel"], name="page_to_idx"),
            # The escalation's page history (console, board), in paging order.
            models.Index(fields=["escalation", "step"], name="page_escalation_step_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} page to {self.person_name} ({self.get_status_display()})"


class AuditEventQuerySet(models.QuerySet):
    """Audit rows are append-only: bulk updates and deletes are refused (see calls.audit for the rest)."""

    def update(self, **kwargs: object) -> int:
        raise AuditImmutable("audit events cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditImmutable("audit events cannot be deleted")

    def _raw_delete(self, using: str | None) -> int:  # the deletion collector's fast path
        raise AuditImmutable("audit events cannot be deleted")


class AuditImmutable(Exception):
    """Raised by any attempt to change or remove an audit event."""


class AuditEvent(models.Model):
    """Who read or changed which patient data, when and from where (HIPAA 164.312(b) audit controls).

    Append-only: the model refuses updates and deletes, and on PostgreSQL a trigger (migration 0004) refuses them
    for every client. Actor, clinic and object are plain ids, not foreign keys, so deleting a user, a clinic or a
    call (retention) never removes or rewrites its audit trail.
    """

    class Action(models.TextChoices):
        VIEW = "view", "View"
        LIST = "list", "List"
        SEARCH = "search", "Search"
        EXPORT = "export", "Export"
        PUSH = "push", "Board push"
        CREATE = "create", "Create"
        CHANGE = "change", "Change"
        DELETE = "delete", "Delete"

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    action = models.CharField(max_length=8, choices=Action.choices)
    # A staff user (id + username at the time), or a named service principal ("twilio", "openai-sideband", ...).
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_service = models.CharField(max_length=32, blank=True)
    organization_id = models.UUIDField(null=True, blank=True)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64, blank=True)  # one object (view, change); blank for lists
    object_ids = models.JSONField(default=list, blank=True)  # the rows a list, search, export or purge touched
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    via = models.CharField(max_length=16, blank=True)  # api, console, board, pipeline, command
    details = models.JSONField(default=dict, blank=True)  # field names and counts only, never values

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["view", "list", "search", "export", "push", "create", "change", "delete"]),
                name="audit_action_valid",
            ),
            # Unique user identification (164.312(a)(2)(i)): every row names a user or a service principal.
            models.CheckConstraint(
                condition=Q(actor_user_id__isnull=False) | ~Q(actor_service=""), name="audit_has_actor"
            ),
        ]
        indexes = [
            # The console's audit trail: a clinic's events newest first.
            models.Index(fields=["organization_id", "-at"], name="audit_org_at_idx"),
            # "What did this person look at": one actor's events newest first.
            models.Index(fields=["actor_user_id", "-at"], name="audit_actor_at_idx"),
            # An object's history (a call's reads and changes).
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_username or self.actor_service} {self.action} {self.object_type} {self.object_id}"

    def save(
        self,
        *,
        force_insert: bool | tuple[ModelBase, ...] = False,
        force_update: bool = False,
        using: str | None = None,
        update_fields: Iterable[str] | None = None,
    ) -> None:
        if not self._state.adding:
            raise AuditImmutable("audit events cannot be updated")
        super().save(force_insert=True, force_update=force_update, using=using, update_fields=update_fields)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditImmutable("audit events cannot be deleted")


class WebhookReceipt(models.Model):
    """A webhook delivery already processed, so a redelivery (same `webhook-id`) does its work once. Holds ids
    only; pruned by `purge_expired` once the sender can no longer redeliver (WEBHOOK_RECEIPT_DAYS)."""

    source = models.CharField(max_length=16)  # who sent it: "openai"
    delivery_id = models.CharField(max_length=128)  # the Standard Webhooks `webhook-id`
    event_type = models.CharField(max_length=64)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "delivery_id"], name="webhook_receipt_unique_delivery"),
        ]
        indexes = [
            # purge_expired: receipts older than the redelivery window.
            models.Index(fields=["received_at"], name="webhook_receipt_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.event_type} {self.delivery_id}"
