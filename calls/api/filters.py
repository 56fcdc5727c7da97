"""Filters for GET /api/calls. Every parameter is validated (unknown enum values are 400s, never ignored), and the
clinic is resolved through the tenancy chokepoint: another clinic answers 404."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from calls.api.pagination import DEFAULT_ORDERING, MAX_PAGE_SIZE, ORDERINGS
from calls.models import Call, TranscriptSegment, Urgency
from core.errors import ApiError
from organizations.access import organizations_for_user

BOOLEAN_CHOICES = [("true", "true"), ("false", "false")]
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class BoundedIsoDateTimeField(IsoDateTimeField):
    def clean(self, value: object) -> dt.datetime | None:
        cleaned = super().clean(value)
        if cleaned is not None:
            try:
                # In UTC for the database: year 1 at +14:00 has no UTC equivalent, and PostgreSQL refuses offsets
                # it cannot represent ("time zone displacement out of range" for -22:08, a 500 before).
                cleaned = cleaned.astimezone(dt.UTC)
            except OverflowError:
                raise ValidationError("That date and time is out of range.", code="overflow") from None
        return cleaned


class BoundedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


@extend_schema_field(OpenApiTypes.INT)
class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField  # NumberFilter would accept 2.5


class CanonicalUUIDField(forms.UUIDField):
    """A UUID as the schema's `format: uuid` says: 8-4-4-4-12 hex digits (Django's also takes 32 bare digits,
    braces and a `urn:uuid:` prefix, which a client written from the schema could not predict)."""

    def to_python(self, value: Any) -> Any:  # a UUID (the stubs type it as CharField's str)
        if isinstance(value, str) and value and not CANONICAL_UUID.fullmatch(value):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


@extend_schema_field(OpenApiTypes.UUID)
class CanonicalUUIDFilter(django_filters.UUIDFilter):
    field_class = CanonicalUUIDField


class CallFilterSet(django_filters.FilterSet):
    organization = CanonicalUUIDFilter(
        method="filter_noop",
        help_text="Clinic id; optional when you belong to exactly one clinic.",
    )
    status = django_filters.ChoiceFilter(choices=Call.Status.choices)
    channel = django_filters.ChoiceFilter(choices=Call.Channel.choices)
    escalated = django_filters.ChoiceFilter(choices=BOOLEAN_CHOICES, method="filter_escalated")
    urgency = django_filters.ChoiceFilter(choices=Urgency.choices)
    started_after = BoundedIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = BoundedIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    q = django_filters.CharFilter(
        method="filter_q", max_length=200, help_text="Search the caller's phone number and the transcript text."
    )
    ordering = django_filters.ChoiceFilter(
        choices=[(value, value) for value in ORDERINGS],
        method="filter_noop",
        empty_label=None,
        help_text=f"Sort order (default {DEFAULT_ORDERING}).",
    )
    page_size = IntegerFilter(
        method="filter_noop", min_value=1, max_value=MAX_PAGE_SIZE, help_text="Results per page (default 25, max 100)."
    )

    class Meta:
        model = Call
        fields: list[str] = []

    def is_valid(self) -> bool:
        """An empty value (`?channel=`) is refused like any other value outside the schema, rather than read as "no
        filter" as django-filter would: a client that meant a filter learns that it sent none. Leave the
        parameter out for no filter. Only `q` may be empty (an empty search is no search, as the schema allows)."""
        valid = super().is_valid()
        for name in self.filters:
            if name != "q" and self.data.get(name) == "" and name not in self.form.errors:
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid

    def filter_noop(self, queryset: QuerySet[Call], name: str, value: object) -> QuerySet[Call]:
        return queryset  # consumed by the view (organization) or the paginator (ordering, page_size)

    def filter_escalated(self, queryset: QuerySet[Call], name: str, value: str) -> QuerySet[Call]:
        return queryset.filter(escalated=value == "true")

    def filter_q(self, queryset: QuerySet[Call], name: str, value: str) -> QuerySet[Call]:
        text = value.strip()
        if not text:
            return queryset
        # Exists, not a join: a call with many matching segments is still one row.
        in_transcript = Exists(TranscriptSegment.objects.filter(call=OuterRef("pk"), text__icontains=text))
        return queryset.filter(Q(caller_phone__icontains=text) | in_transcript)

    def filter_queryset(self, queryset: QuerySet[Call]) -> QuerySet[Call]:
        queryset = super().filter_queryset(queryset)
        return queryset.filter(organization=self._organization())

    def _organization(self) -> uuid.UUID:
        user = self.request.user
        requested = self.form.cleaned_data.get("organization")
        clinics = organizations_for_user(user)
        if requested is not None:
            if not clinics.filter(pk=requested).exists():
                raise ApiError(404, "not_found", "No such clinic.")
            return requested
        ids = list(clinics.values_list("pk", flat=True)[:2])
        if len(ids) > 1:
            raise ApiError(
                400,
                "organization_required",
                "You belong to several clinics: say which one with ?organization=<id>.",
                fields={"organization": ["This field is required when you belong to several clinics."]},
            )
        if not ids:
            raise ApiError(404, "not_found", "You do not belong to any clinic.")
        return ids[0]
