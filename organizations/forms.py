"""Console forms: readable widgets over the clinic's list-valued settings, so nobody types raw JSON.

The form fields convert text to the Python value the model stores and run the model's own validators, so the console
rejects exactly what the database and the API reject, with the message next to the field.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth import forms as auth_forms
from django.core.exceptions import ValidationError
from django.forms.formsets import DELETION_FIELD_NAME

from organizations.auth import (
    lockout_message,
    lockout_remaining,
    login_throttle_hit,
    login_throttled_message,
)
from organizations.models import (
    AGENT_LANGUAGES,
    CLINIC_SETTINGS,
    OPERATOR_SETTINGS,
    PAGING_SETTINGS,
    RETENTION_SETTINGS,
    BusinessHours,
    IntakeField,
    Membership,
    OnCallPerson,
    Organization,
    validate_dial_countries,
    validate_hours_do_not_overlap,
    validate_language_list,
    validate_origin_list,
    validate_provider_list,
    validate_service_list,
)
from organizations.services import user_password_set


class LinesListField(forms.Field):
    """A list of texts edited as a textarea, one entry per line; blank lines are ignored."""

    widget: forms.Widget = forms.Textarea(attrs={"rows": 5, "cols": 60})
    joiner = "\n"  # how the entries are shown; `split` reads them back

    def split(self, text: str) -> list[str]:
        return text.splitlines()

    def prepare_value(self, value: object) -> object:
        if isinstance(value, list):
            return self.joiner.join(str(item) for item in value)
        return value

    def to_python(self, value: object) -> list[str]:
        if isinstance(value, list):
            return value
        if not value:
            return []
        return [item.strip() for item in self.split(str(value)) if item.strip()]

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def run_validators(self, value: list[str]) -> None:
        # The model validators accept an empty list; the base class would skip them for [] anyway.
        errors = []
        for validator in self.validators:
            try:
                validator(value)
            except ValidationError as error:
                errors.extend(error.error_list)
        if errors:
            raise ValidationError(errors)

    def has_changed(self, initial: object, data: object) -> bool:
        return self.to_python(initial) != self.to_python(data)


class CommaSeparatedListField(LinesListField):
    """A short list of texts typed on one line, separated by commas (e.g. an intake field's choices)."""

    widget = forms.TextInput(attrs={"size": 40, "placeholder": "routine, urgent, emergency"})
    joiner = ", "

    def split(self, text: str) -> list[str]:
        return text.split(",")


class OrganizationForm(forms.ModelForm):
    timezone = forms.ChoiceField(
        choices=[(name, name) for name in sorted(zoneinfo.available_timezones())],
        initial="America/New_York",
        label="Time zone",
        help_text="Business hours and closures are read in this time zone.",
    )
    services = LinesListField(
        required=False,
        validators=[validate_service_list],
        help_text="Services the clinic offers, one per line (the agent only offers these).",
    )
    providers = LinesListField(
        required=False,
        validators=[validate_provider_list],
        help_text="Names of the clinic's doctors and other providers, one per line (the agent knows them, and "
        "transcription listens for them).",
    )
    allowed_origins = LinesListField(
        required=False,
        validators=[validate_origin_list],
        help_text="Web origins allowed to start calls with the publishable key, one per line, "
        "e.g. https://clinic.example (scheme and host only, no path).",
    )
    dial_countries = CommaSeparatedListField(
        required=False,
        validators=[validate_dial_countries],
        label="Dial countries",
        help_text="Country codes whose numbers calls may be sent to, separated by commas (e.g. US, CA). "
        "Premium-rate and shared-cost numbers are never dialled.",
    )
    agent_languages = forms.MultipleChoiceField(
        choices=list(AGENT_LANGUAGES.items()),
        widget=forms.CheckboxSelectMultiple,
        validators=[validate_language_list],
        label="Agent languages",
        help_text="Languages the agent may answer in.",
    )

    class Meta:
        model = Organization
        fields = [
            "slug",
            *CLINIC_SETTINGS,
            *RETENTION_SETTINGS,
            *OPERATOR_SETTINGS,
            *PAGING_SETTINGS,
        ]  # retention: purge_expired
        labels = {
            "on_call_phone": "On-call phone",
            "max_call_minutes": "Maximum call length (minutes)",
            "vad_threshold": "Voice detection threshold",
            "vad_silence_ms": "End-of-turn silence (ms)",
            "turn_detection": "Turn detection",
            "vad_eagerness": "Semantic eagerness",
            "idle_timeout_ms": "Prompt a silent caller after (ms)",
            "noise_reduction": "Noise reduction",
            "webhook_url": "Webhook URL",
            "after_hours_message": "After-hours message",
            "after_hours_policy": "After-hours policy",
            "paging_includes_caller_name": "Caller's name in pages",
        }


class OnCallPersonForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=BusinessHours.Weekday.choices,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        initial=list(range(7)),
        label="Days",  # the model's validate_weekdays checks the coerced list
    )

    class Meta:
        model = OnCallPerson
        fields = ["position", "name", "mobile", "email", "weekdays", "starts", "ends", "active"]


class IntakeFieldForm(forms.ModelForm):
    choices = CommaSeparatedListField(
        required=False, help_text="For 'one of a list' fields: the allowed values, separated by commas."
    )

    class Meta:
        model = IntakeField
        fields = ["position", "name", "field_type", "required", "description", "choices"]


class BusinessHoursFormSet(forms.BaseInlineFormSet):
    """Checks the week's intervals together: two rows may each be valid yet overlap (Monday 08-12 and 11-17)."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return  # row errors first; overlaps are only meaningful between valid rows
        intervals = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            # The deletion mark, read as Django's own (private, unstubbed) _should_delete_form reads it.
            if not data or (self.can_delete and data.get(DELETION_FIELD_NAME, False)):
                continue
            if data.get("weekday") is None or data.get("opens") is None or data.get("closes") is None:
                continue
            intervals.append(BusinessHours(weekday=data["weekday"], opens=data["opens"], closes=data["closes"]))
        validate_hours_do_not_overlap(intervals)


# --- Password changes ----------------------------------------------------------------------------------------------
# Django's forms set the password themselves; these route the change through user_password_set, which also revokes
# the user's API tokens (a changed password must end what the old one opened).


class ConsolePasswordChangeForm(AdminPasswordChangeForm):
    """The console's "Change password" page for one's own password (old password asked)."""

    def save(self, commit: bool = True) -> Any:
        if not commit:
            return super().save(commit=False)
        return user_password_set(user=self.user, password=self.cleaned_data["new_password1"])


class OperatorSetPasswordForm(auth_forms.AdminPasswordChangeForm):
    """The operator's "Set password" page for any user (the password may also be disabled)."""

    def save(self, commit: bool = True) -> Any:
        if not commit:
            return super().save(commit=False)
        usable = self.cleaned_data.get("set_usable_password", True)
        return user_password_set(user=self.user, password=self.cleaned_data["password1"] if usable else None)


class AccessLinkSetPasswordForm(auth_forms.SetPasswordForm):
    """The page an invitation or access-reset link opens (organizations.services.team_access_link)."""

    def save(self, commit: bool = True) -> Any:
        if not commit:
            return super().save(commit=False)
        return user_password_set(user=self.user, password=self.cleaned_data["new_password1"])


class TeamMemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False, help_text="The invitation link is e-mailed here when you ask for it.")
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.STAFF)


class StaffLoginForm(AdminAuthenticationForm):
    """The console's login form: over the address's sign-in rate it refuses before any password is checked, and a
    refused sign-in during a lockout says so and for how long (organizations.auth), in the same words for any
    username."""

    def clean(self) -> dict[str, Any]:
        if self.request is not None and self.data.get("username") is not None:
            wait = login_throttle_hit(self.request)
            if wait is not None:
                raise ValidationError(login_throttled_message(wait), code="throttled")
        try:
            return super().clean()
        except ValidationError as error:
            # Checked after the attempt, so the failure that starts a lockout already says it.
            remaining = lockout_remaining(self.cleaned_data.get("username"), self.request)
            if remaining and getattr(error, "code", None) == "invalid_login":
                raise ValidationError(lockout_message(remaining), code="locked") from None
            raise
