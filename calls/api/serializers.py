"""Call API serializers: input shapes (validated, never written from here) and output shapes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calls import ledger
from calls.intake import PHONE_INPUT_PATTERN, normalize_phone
from calls.models import (
    FORWARDED_KEY,
    SEGMENT_SOURCE_KEY,
    SOURCE_FORWARDED,
    Call,
    CallSummary,
    Escalation,
    Intake,
    TranscriptSegment,
)
from core.api.fields import TextField
from core.api.schema import MAX_JSON_BYTES_KEYWORD, NO_NUL_PATTERN, bounded_json_object, json_size

MAX_METADATA_BYTES = 4096
MAX_JSON_DEPTH = 8
MAX_TRANSCRIPT_ITEMS = 2000
MAX_SEGMENT_CHARS = 20_000


def check_json_safe(value: Any, *, depth: int = 0) -> None:
    """Reject what PostgreSQL's jsonb cannot store (NUL characters) and absurd nesting."""
    if depth > MAX_JSON_DEPTH:
        raise serializers.ValidationError(f"Nested more than {MAX_JSON_DEPTH} levels deep.")
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError("Text may not contain NUL characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json_safe(key, depth=depth + 1)
            check_json_safe(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_safe(item, depth=depth + 1)


# --- Inputs -------------------------------------------------------------------------------------------------------


@extend_schema_field(
    # metadata is depth 0 for check_json_safe, so its values (depth 1) may hold MAX_JSON_DEPTH - 1 levels more.
    bounded_json_object(MAX_JSON_DEPTH - 1, f"Free-form JSON, nested at most {MAX_JSON_DEPTH} levels deep.")
)
class BoundedJsonObjectField(serializers.DictField):
    """A free-form object whose depth the server bounds (check_json_safe), and whose schema says so."""


@extend_schema_field(
    {
        **bounded_json_object(
            MAX_JSON_DEPTH - 1,
            f"Free-form JSON, nested at most {MAX_JSON_DEPTH} levels deep and at most {MAX_METADATA_BYTES} bytes "
            "once serialised (compact JSON, non-ASCII as \\u escapes).",
        ),
        # JSON Schema has no keyword for a serialised size; this extension states it for clients and the fuzz.
        MAX_JSON_BYTES_KEYWORD: MAX_METADATA_BYTES,
    }
)
class CallMetadataField(BoundedJsonObjectField):
    """A call's free-form widget context: bounded in depth and in serialised size."""

    def to_internal_value(self, data: Any) -> dict:
        value = super().to_internal_value(data)
        check_json_safe(value)
        if json_size(value) > MAX_METADATA_BYTES:
            raise serializers.ValidationError(f"At most {MAX_METADATA_BYTES} bytes of JSON.")
        return value


@extend_schema_field({"anyOf": [{"type": "string", "pattern": NO_NUL_PATTERN}, {"type": "boolean"}, {"type": "null"}]})
class IntakeValueField(serializers.Field):
    """One intake answer: text (also dates, phones and choices, as text) or yes/no, or null for "not given"."""

    default_error_messages = {"invalid": "Expected text, true or false, or null."}

    def to_internal_value(self, data: Any) -> str | bool:
        if not isinstance(data, str | bool):
            self.fail("invalid")
        if isinstance(data, str) and "\x00" in data:
            raise serializers.ValidationError("Text may not contain NUL characters.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


PHONE_INPUT_MESSAGE = "Expected a phone number in E.164 format, e.g. +14155550123."


class CallerInfoSerializer(serializers.Serializer):
    name = TextField(max_length=200, required=False, allow_blank=True, default="")
    phone = TextField(
        max_length=32,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,  # the pattern says which spaces may surround the number; a tab is not one
        validators=[RegexValidator("^$|" + PHONE_INPUT_PATTERN, PHONE_INPUT_MESSAGE, code="invalid_phone")],  # or blank
        help_text="The caller's number: E.164 (+14155550123), 00 + country code, or a North American number "
        "with spaces, dots, dashes or parentheses ((415) 555-0123). Stored as E.164.",
    )

    def validate_phone(self, value: str) -> str:
        if not value:
            return ""
        phone = normalize_phone(value)
        if phone is None:  # not reached: every match of the pattern normalises
            raise serializers.ValidationError(PHONE_INPUT_MESSAGE)
        return phone


class CallStartSerializer(serializers.Serializer):
    """Everything is optional, so `{}` starts a web call: the channel has one possible value (phone calls start at
    Twilio's webhook) and a caller may stay anonymous until the agent takes the intake."""

    channel = serializers.ChoiceField(
        choices=[Call.Channel.WEB.value],
        required=False,
        default=Call.Channel.WEB.value,
        help_text="Website calls: always web (the default).",
    )
    caller = CallerInfoSerializer(
        required=False, help_text="What the page already knows about the caller, if anything; the agent asks anyway."
    )
    metadata = CallMetadataField(
        required=False,
        default=dict,
        help_text=f"Free-form context from the widget: at most {MAX_METADATA_BYTES} bytes of compact JSON "
        f"(non-ASCII counted as \\u escapes), nested at most {MAX_JSON_DEPTH} levels deep.",
    )


# What a request may report: system lines are the server's own notes, refused from any sender.
REPORTED_SPEAKERS = [TranscriptSegment.Speaker.CALLER, TranscriptSegment.Speaker.AGENT]
REPORTED_SPEAKER_CHOICES = [(speaker.value, speaker.label) for speaker in REPORTED_SPEAKERS]


class TranscriptItemSerializer(serializers.Serializer):
    speaker = serializers.ChoiceField(
        choices=REPORTED_SPEAKER_CHOICES,
        help_text="caller, or agent where the clinic chose event forwarding (system notes are the server's own).",
    )
    text = TextField(max_length=MAX_SEGMENT_CHARS)
    timestamp = serializers.DateTimeField(required=False, allow_null=True, default=None)
    item_id = TextField(
        max_length=128,
        required=False,
        allow_blank=True,
        default="",
        help_text="Upstream conversation item id; a segment with an already stored item id is stored once.",
    )


END_REASONS = [
    Call.EndReason.CALLER_HANGUP.value,
    Call.EndReason.AGENT_ENDED.value,
    Call.EndReason.TRANSFERRED.value,
    Call.EndReason.ERROR.value,
]


class CallEndSerializer(serializers.Serializer):
    call_id = serializers.UUIDField()
    reason = serializers.ChoiceField(
        choices=END_REASONS,
        required=False,
        default=Call.EndReason.CALLER_HANGUP.value,
        help_text="error marks the call failed; anything else completed.",
    )
    transcript = serializers.ListField(
        child=TranscriptItemSerializer(), required=False, default=list, max_length=MAX_TRANSCRIPT_ITEMS
    )
    intake = serializers.DictField(
        child=IntakeValueField(allow_null=True),
        required=False,
        allow_null=True,
        default=None,
        help_text="The clinic's intake fields by name (see GET /api/org/config/{org_id} intake_fields): text, "
        "true/false for yes/no fields, or null for not given.",
    )

    def validate_intake(self, value: dict | None) -> dict | None:
        if value is not None:
            check_json_safe(value)
        return value


# --- Outputs ------------------------------------------------------------------------------------------------------


class CallSummarySerializer(serializers.ModelSerializer):
    organization = serializers.UUIDField(source="organization_id", read_only=True)
    transcript_segments = serializers.IntegerField(read_only=True, help_text="Number of transcript segments.")
    intake_completed = serializers.BooleanField(read_only=True)
    reviewed = serializers.BooleanField(source="is_reviewed", read_only=True)
    escalation_level = serializers.CharField(read_only=True, help_text="Highest escalation level, or empty.")
    urgency = serializers.CharField(read_only=True, help_text="routine, urgent, emergency, or empty.")

    class Meta:
        model = Call
        fields = [
            "id",
            "organization",
            "channel",
            "status",
            "started_at",
            "ended_at",
            "duration_seconds",
            "escalated",
            "escalation_level",
            "urgency",
            "caller_name",
            "caller_phone",
            "transcript_segments",
            "intake_completed",
            "reviewed",
        ]
        read_only_fields = fields


class PostCallSummarySerializer(serializers.ModelSerializer):
    """What the call was about, written by a model after the call from its stored transcript (calls.summaries)."""

    status = serializers.CharField(
        read_only=True, help_text="pending (not made yet, or being retried), done, or failed (gave up)."
    )
    summary = serializers.CharField(read_only=True, help_text="A short summary of the call; empty until done.")
    reason_for_call = serializers.CharField(read_only=True, help_text="The caller's reason, in a few words.")
    follow_up_needed = serializers.BooleanField(
        read_only=True, allow_null=True, help_text="Whether the clinic must act after this call; null until done."
    )
    model = serializers.CharField(read_only=True, help_text="The model that wrote it (empty: nothing was said).")
    completed_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = CallSummary
        fields = ["status", "summary", "reason_for_call", "follow_up_needed", "model", "attempts", "completed_at"]
        read_only_fields = fields


def post_call_summary(call: Call) -> dict | None:
    try:
        summary = call.summary
    except ObjectDoesNotExist:
        return None  # a live call, or one that ended before summaries existed
    return PostCallSummarySerializer(summary).data


class StaffCallListSerializer(CallSummarySerializer):
    """A call in the staff list: the list item plus what the call was about."""

    summary = serializers.SerializerMethodField()

    class Meta(CallSummarySerializer.Meta):
        fields = [*CallSummarySerializer.Meta.fields, "summary"]
        read_only_fields = fields

    @extend_schema_field(PostCallSummarySerializer(allow_null=True))
    def get_summary(self, call: Call) -> dict | None:
        return post_call_summary(call)


class TranscriptSegmentSerializer(serializers.ModelSerializer):
    seq = serializers.IntegerField(read_only=True, help_text="Arrival order. The list is in conversation order.")
    interrupted = serializers.BooleanField(
        read_only=True, help_text="An agent line the caller spoke over: `text` is more than the caller heard."
    )
    heard_ms = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Milliseconds of an interrupted line the caller heard, or null."
    )
    # Declared fields leave the class body (DRF's metaclass), so this does not shadow Field.source at run time.
    source = serializers.SerializerMethodField(  # type: ignore[assignment]
        help_text="server: seen by the server's own connection to the call; forwarded: reported by the browser."
    )

    class Meta:
        model = TranscriptSegment
        fields = ["seq", "speaker", "text", "occurred_at", "interrupted", "heard_ms", "source"]
        read_only_fields = fields

    def get_source(self, segment: TranscriptSegment) -> str:
        forwarded = (segment.metadata or {}).get(SEGMENT_SOURCE_KEY) == SOURCE_FORWARDED
        return SOURCE_FORWARDED if forwarded else "server"


class IntakeSerializer(serializers.ModelSerializer):
    urgency = serializers.CharField(read_only=True, help_text="routine, urgent, emergency, or empty.")

    class Meta:
        model = Intake
        fields = ["data", "urgency", "completed", "forwarded"]
        read_only_fields = fields
        extra_kwargs = {"forwarded": {"help_text": "Written from what the browser reported (event forwarding)."}}


class EscalationSerializer(serializers.ModelSerializer):
    acknowledged_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Username, or null."
    )

    class Meta:
        model = Escalation
        fields = [
            "id",
            "level",
            "source",
            "reason",
            "evidence",
            "status",
            "created_at",
            "acknowledged_by",
            "acknowledged_at",
            "forwarded",
        ]
        read_only_fields = fields
        extra_kwargs = {"forwarded": {"help_text": "Raised from what the browser reported (event forwarding)."}}


class CallUsageSerializer(serializers.Serializer):
    """The call's ledger (docs/facts.md#usage): summed over every response.done, cancelled ones included."""

    input_text_tokens = serializers.IntegerField(help_text="Text input tokens, cached ones included.")
    input_audio_tokens = serializers.IntegerField(help_text="Audio input tokens, cached ones included.")
    input_cached_tokens = serializers.IntegerField(help_text="Input tokens served from the cache (text and audio).")
    output_text_tokens = serializers.IntegerField()
    output_audio_tokens = serializers.IntegerField()
    transcription_tokens = serializers.IntegerField(help_text="Caller transcription, token-billed models.")
    transcription_audio_ms = serializers.IntegerField(help_text="Caller transcription, duration-billed models.")


class TurnLatencySerializer(serializers.Serializer):
    p50 = serializers.IntegerField(allow_null=True, help_text="Median ms from the caller's last word to agent audio.")
    p95 = serializers.IntegerField(allow_null=True)
    turns = serializers.IntegerField(help_text="Turns measured.")


class CallDetailSerializer(CallSummarySerializer):
    transcript = TranscriptSegmentSerializer(many=True, read_only=True, source="ordered_segments")
    intake = serializers.SerializerMethodField()
    escalations = EscalationSerializer(many=True, read_only=True, source="ordered_escalations")
    events_forwarded = serializers.SerializerMethodField(
        help_text="True when the browser forwarded events of this call (the clinic's event-forwarding "
        "integration): its agent lines, intake and tool effects may come from the browser, not the server."
    )

    class Meta(CallSummarySerializer.Meta):
        fields = [*CallSummarySerializer.Meta.fields, "transcript", "intake", "escalations", "events_forwarded"]
        read_only_fields = fields

    def get_events_forwarded(self, call: Call) -> bool:
        return bool((call.metadata or {}).get(FORWARDED_KEY))

    @extend_schema_field(IntakeSerializer(allow_null=True))
    def get_intake(self, call: Call) -> dict | None:
        try:
            intake = call.intake
        except ObjectDoesNotExist:
            return None
        return IntakeSerializer(intake).data


class StaffCallDetailSerializer(CallDetailSerializer):
    """The staff view of a call adds what it used and cost (the clinic's business, never shown to the caller)."""

    usage = serializers.SerializerMethodField()
    estimated_cost_usd = serializers.SerializerMethodField()
    turn_latency_ms = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField(
        help_text="The post-call summary (beside the transcript, never instead of it); null for a live call."
    )

    class Meta(CallDetailSerializer.Meta):
        fields = [*CallDetailSerializer.Meta.fields, "usage", "estimated_cost_usd", "turn_latency_ms", "summary"]
        read_only_fields = fields

    @extend_schema_field(PostCallSummarySerializer(allow_null=True))
    def get_summary(self, call: Call) -> dict | None:
        return post_call_summary(call)

    @extend_schema_field(CallUsageSerializer)
    def get_usage(self, call: Call) -> dict[str, int]:
        return ledger.call_usage(call)

    @extend_schema_field(
        serializers.CharField(
            allow_null=True,
            help_text="USD as a decimal string, from the price table (REALTIME_PRICES); null when a model used "
            "has no price.",
        )
    )
    def get_estimated_cost_usd(self, call: Call) -> str | None:
        cost = ledger.call_cost(call)
        return None if cost is None else str(cost)

    @extend_schema_field(TurnLatencySerializer)
    def get_turn_latency_ms(self, call: Call) -> dict[str, int | None]:
        return ledger.latency_summary(call.turn_latencies_ms or [])
