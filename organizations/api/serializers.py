"""Clinic configuration: one output shape and one partial-update input shape with field names that match the model
(agent settings grouped under `agent`). The input serializer checks types and sizes; the rules themselves are the
model's (organizations.services.organization_config_update runs them exactly as the console does)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, cast

from django.db import models
from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import ReturnList

from core.api.fields import TextField
from organizations.models import (
    AGENT_LANGUAGES,
    AGENT_SETTINGS,
    CLINIC_SETTINGS,
    CONFIG_LISTS,
    EscalationPhrase,
    IntakeField,
    Organization,
)

# Fields the output has but an update cannot change; a client may send them back unchanged (they are ignored).
READ_ONLY_FIELDS = {"id", "slug", "publishable_key", "is_open_now", "next_opening"}
# API name under `agent` -> model field (the agent_ prefix is implied by the nesting).
AGENT_FIELDS = {name.removeprefix("agent_"): name for name in AGENT_SETTINGS}
MODEL_TO_API = {model: f"agent.{api}" for api, model in AGENT_FIELDS.items()}
# The settings shown and changed at the top level of the configuration (the rest are under `agent`).
TOP_LEVEL_SETTINGS = tuple(name for name in CLINIC_SETTINGS if name not in AGENT_SETTINGS)

# The `label` and `required` fields below: DRF's serializer metaclass moves declared fields out of the class body, so
# they do not shadow Field.label / Field.required at run time; the stubs see class attributes overriding those.


class BusinessHoursSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text="0 = Monday … 6 = Sunday.")
    opens = serializers.TimeField(help_text="Local time, HH:MM.")
    closes = serializers.TimeField(help_text="Local time; at or before opens means the interval ends the next day.")


class ClosureSerializer(serializers.Serializer):
    date = serializers.DateField()
    label = TextField(  # type: ignore[assignment]
        max_length=100, required=False, allow_blank=True, default=""
    )


class IntakeFieldSerializer(serializers.Serializer):
    name = TextField(max_length=50, help_text="lowercase_with_underscores")
    field_type = serializers.ChoiceField(choices=IntakeField.FieldType.choices, default=IntakeField.FieldType.TEXT)
    required = serializers.BooleanField(default=False)  # type: ignore[assignment]
    description = TextField(max_length=300, required=False, allow_blank=True, default="")
    choices = serializers.ListField(child=TextField(max_length=100), required=False, default=list, max_length=50)


class EscalationPhraseSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=EscalationPhrase.Level.choices)
    phrase = TextField(max_length=200)


class TwilioNumberSerializer(serializers.Serializer):
    number = TextField(max_length=16, help_text="E.164, e.g. +14155550199.")
    label = TextField(  # type: ignore[assignment]
        max_length=100, required=False, allow_blank=True, default=""
    )


class AgentSerializer(serializers.Serializer):
    voice = serializers.ChoiceField(choices=Organization.Voice.choices, required=False)
    languages = serializers.ListField(
        child=serializers.ChoiceField(choices=list(AGENT_LANGUAGES.items())), required=False, max_length=20
    )
    greeting = TextField(max_length=1000, required=False, allow_blank=True)
    extra_instructions = TextField(max_length=4000, required=False, allow_blank=True)
    max_call_minutes = serializers.IntegerField(min_value=1, max_value=60, required=False)
    vad_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    vad_silence_ms = serializers.IntegerField(min_value=200, max_value=3000, required=False)
    turn_detection = serializers.ChoiceField(choices=Organization.TurnDetection.choices, required=False)
    vad_eagerness = serializers.ChoiceField(choices=Organization.Eagerness.choices, required=False)
    idle_timeout_ms = serializers.IntegerField(min_value=5000, max_value=30000, required=False, allow_null=True)
    noise_reduction = serializers.ChoiceField(choices=Organization.NoiseReduction.choices, required=False)


def _text_list(max_items: int, max_length: int, help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=TextField(max_length=max_length), required=False, max_length=max_items, help_text=help_text
    )


def _rows(serializer: type[serializers.Serializer], max_items: int) -> serializers.BaseSerializer:
    """An optional list of `serializer` rows, at most `max_items`: `serializer(many=True, required=False,
    max_length=max_items)`, spelt as the many_init that many=True calls (the stubs do not let many=True take the
    list's own options)."""
    return serializer.many_init(required=False, max_length=max_items)


def _many(serializer: type[serializers.Serializer], rows: Iterable[Any]) -> ReturnList:
    """`serializer(rows, many=True).data`, a list (the stubs type a many=True serializer as a single one)."""
    return cast(ReturnList, serializer(rows, many=True).data)


class OrganizationConfigUpdateSerializer(serializers.Serializer):
    """Every field optional: only what is sent changes. Lists replace the clinic's list."""

    name = TextField(max_length=200, required=False)
    timezone = TextField(max_length=64, required=False, help_text="IANA, e.g. America/New_York.")
    business_hours = _rows(BusinessHoursSerializer, 50)
    closures = _rows(ClosureSerializer, 400)
    after_hours_policy = serializers.ChoiceField(choices=Organization.AfterHoursPolicy.choices, required=False)
    after_hours_message = TextField(max_length=2000, required=False, allow_blank=True)
    services = _text_list(100, 200, "Services the clinic offers.")
    providers = _text_list(100, 200, "Names of the clinic's doctors and other providers.")
    escalation_phone = TextField(max_length=16, required=False, allow_blank=True)
    on_call_phone = TextField(max_length=16, required=False, allow_blank=True)
    allowed_origins = _text_list(50, 200, "Web origins (scheme://host[:port]) allowed to use the publishable key.")
    webhook_url = TextField(max_length=200, required=False, allow_blank=True)
    event_forwarding = serializers.BooleanField(required=False)
    record_calls = serializers.BooleanField(required=False)
    agent = AgentSerializer(required=False)
    intake_fields = _rows(IntakeFieldSerializer, 50)
    escalation_phrases = _rows(EscalationPhraseSerializer, 200)
    twilio_numbers = _rows(TwilioNumberSerializer, 20)

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields) - READ_ONLY_FIELDS)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)

    def service_data(self) -> dict[str, Any]:
        """The validated data as organization_config_update() takes it: model field names, plain dict rows."""
        data = dict(self.validated_data)
        agent = data.pop("agent", {}) or {}
        for api_name, value in agent.items():
            data[AGENT_FIELDS[api_name]] = value
        for name in CONFIG_LISTS:
            if name in data:
                data[name] = [dict(row) for row in data[name]]
        return data


class OrganizationConfigUpdateSchema(OpenApiSerializerExtension):
    """The config update refuses unknown fields (to_internal_value): the schema says so (additionalProperties)."""

    target_class = OrganizationConfigUpdateSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        return schema


# --- Output ---------------------------------------------------------------------------------------------------------


def _setting_output(name: str) -> serializers.Field:
    """A top-level setting as the configuration shows it, from its model field: one of its choices, a list of texts
    (the JSON list settings), or a text."""
    field = cast("models.Field[Any, Any]", Organization._meta.get_field(name))  # settings are columns, not relations
    help_text = str(field.help_text) if field.help_text else None  # None: the serializer field's default
    if field.choices:
        return serializers.ChoiceField(choices=field.choices, help_text=help_text)
    if isinstance(field, models.BooleanField):
        return serializers.BooleanField(help_text=help_text)
    if isinstance(field, models.JSONField):
        return serializers.ListField(child=serializers.CharField(), help_text=help_text)
    return serializers.CharField(help_text=help_text)


class OrganizationConfigSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.SlugField()
    # The top-level settings (TOP_LEVEL_SETTINGS) come after slug; see get_fields.
    publishable_key = serializers.CharField(help_text="pk_…: public by design; the website widget sends it.")
    business_hours = serializers.SerializerMethodField()
    closures = serializers.SerializerMethodField()
    agent = serializers.SerializerMethodField()
    intake_fields = serializers.SerializerMethodField()
    escalation_phrases = serializers.SerializerMethodField()
    twilio_numbers = serializers.SerializerMethodField()
    is_open_now = serializers.SerializerMethodField()
    next_opening = serializers.SerializerMethodField()

    def get_fields(self) -> dict[str, serializers.Field]:
        declared = super().get_fields()
        head = {name: declared.pop(name) for name in ("id", "slug")}
        return {**head, **{name: _setting_output(name) for name in TOP_LEVEL_SETTINGS}, **declared}

    @extend_schema_field(BusinessHoursSerializer(many=True))
    def get_business_hours(self, org: Organization) -> list:
        rows = sorted(org.hours.all(), key=lambda row: (row.weekday, row.opens))
        return _many(BusinessHoursSerializer, rows)

    @extend_schema_field(ClosureSerializer(many=True))
    def get_closures(self, org: Organization) -> list:
        return _many(ClosureSerializer, sorted(org.closures.all(), key=lambda row: row.date))

    @extend_schema_field(AgentSerializer)
    def get_agent(self, org: Organization) -> dict:
        return {api_name: getattr(org, model_name) for api_name, model_name in AGENT_FIELDS.items()}

    @extend_schema_field(IntakeFieldSerializer(many=True))
    def get_intake_fields(self, org: Organization) -> list:
        rows = sorted(org.intake_fields.all(), key=lambda row: (row.position, row.pk))
        return _many(IntakeFieldSerializer, rows)

    @extend_schema_field(EscalationPhraseSerializer(many=True))
    def get_escalation_phrases(self, org: Organization) -> list:
        rows = sorted(org.escalation_phrases.all(), key=lambda row: (row.level, row.phrase))
        return _many(EscalationPhraseSerializer, rows)

    @extend_schema_field(TwilioNumberSerializer(many=True))
    def get_twilio_numbers(self, org: Organization) -> list:
        return _many(TwilioNumberSerializer, sorted(org.twilio_numbers.all(), key=lambda row: row.number))

    @extend_schema_field(serializers.BooleanField())
    def get_is_open_now(self, org: Organization) -> bool:
        return org.is_open(self._now())

    @extend_schema_field(
        serializers.DateTimeField(allow_null=True, help_text="Null while open (or with no opening ahead).")
    )
    def get_next_opening(self, org: Organization) -> str | None:
        opening = org.next_opening(self._now())
        # In the clinic's own offset: "opens 2026-03-03T08:00:00-05:00" reads as local time.
        return opening.isoformat() if opening else None

    def _now(self) -> dt.datetime:
        # One instant for both answers, so is_open_now and next_opening never disagree.
        context = cast(dict[str, Any], self.context)  # the root's own dict; the stubs say Mapping
        if "now" not in context:
            context["now"] = timezone.now()
        return context["now"]
