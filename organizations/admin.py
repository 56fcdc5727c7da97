"""The clinic staff console: clinic configuration and memberships, plus the tenancy plumbing every console page uses.

Tenancy follows the API's rules: every queryset, foreign-key choice list, autocomplete and action goes through
organizations.access, and another clinic's object answers 404. Model permissions come from the console groups
(migration 0002, driven by the membership role); whether they apply to a given clinic is checked per object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import ForeignKey, Model, QuerySet
from django.db.models.options import Options
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from organizations.access import admin_organizations_for_user, organizations_for_user, role_in, scope_for_user
from organizations.forms import (
    BusinessHoursFormSet,
    IntakeFieldForm,
    OnCallPersonForm,
    OrganizationForm,
    TeamMemberAddForm,
)
from organizations.models import (
    AGENT_LANGUAGES,
    AGENT_SETTINGS,
    PAGING_SETTINGS,
    RETENTION_SETTINGS,
    BusinessHours,
    Closure,
    EscalationPhrase,
    IntakeField,
    Membership,
    OnCallPerson,
    Organization,
    PagingRule,
    TwilioNumber,
)
from organizations.services import (
    LAST_ADMIN,
    AccessLink,
    TeamChangeRefused,
    intake_fields_reset_to_default,
    team_access_link,
    team_member_add,
    team_member_remove,
    team_member_role_set,
)

if TYPE_CHECKING:  # aliases that exist only in django-stubs
    from django.contrib.admin.options import _FieldGroups, _FieldsetSpec

# --- Tenancy plumbing shared by every console page ----------------------------------------------------------------


def request_role(request: HttpRequest, organization: Organization) -> str | None:
    """The user's role in `organization`, asked once per request (inlines ask for every permission check)."""
    cache = request.__dict__.setdefault("_console_roles", {})
    if organization.pk not in cache:
        cache[organization.pk] = role_in(request.user, organization)
    return cache[organization.pk]


def may_administer(request: HttpRequest, organization: Organization | None) -> bool:
    return organization is not None and request_role(request, organization) == Membership.Role.ADMIN


def scoped_choices(model: type[Model], request: HttpRequest) -> QuerySet[Any] | None:
    """The rows of `model` the user may pick in a form: their clinics, or rows of their clinics."""
    if model is Organization:
        return organizations_for_user(request.user)
    if any(field.name == "organization" for field in model._meta.get_fields()):
        return scope_for_user(model._default_manager.all(), request.user)
    return None


@dataclass(frozen=True)
class ObjectButton[M: Model]:
    """A workflow step offered on an object's change page (e.g. "Acknowledge"), run through a service.

    The change page links to a confirmation page (GET); its form POSTs back and `run` returns the success message.
    """

    name: str
    label: str
    explanation: str
    run: Callable[[HttpRequest, M, str], str]
    with_note: bool = False
    note_required: bool = False  # the step is refused without a note (resolving an escalation)


class ClinicScopedAdmin[M: Model](admin.ModelAdmin[M]):
    """A ModelAdmin whose rows belong to clinics: everything is limited to the user's clinics."""

    clinic_path = "organization"  # lookup from the row to its clinic

    def get_queryset(self, request: HttpRequest) -> QuerySet[M]:
        return scope_for_user(super().get_queryset(request), request.user, via=self.clinic_path)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField[Any] | None:
        if "queryset" not in kwargs:
            queryset = scoped_choices(db_field.related_model, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Options[M], object_id: str) -> NoReturn:
        # Django redirects to the index for a missing object; another clinic's object must look simply absent.
        raise Http404(f"No {opts.verbose_name} matches the given id.")

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Django checks the delete permission before looking the object up; absent must win over forbidden.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given id.")
        return super().delete_view(request, object_id, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.get_object(request, unquote(object_id)) is None:  # as delete_view
            raise Http404(f"No {self.opts.verbose_name} matches the given id.")
        return super().history_view(request, object_id, extra_context)

    # Object buttons ------------------------------------------------------------------------------------------------

    def get_object_buttons(self, request: HttpRequest, obj: M) -> list[ObjectButton[M]]:
        return []

    def get_object_links(self, request: HttpRequest, obj: M) -> list[dict[str, str]]:
        """Extra plain links for the change page's tool bar (label, url)."""
        return []

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        button = path(
            "<path:object_id>/do/<slug:button>/",
            self.admin_site.admin_view(self.object_button_view),
            name="{}_{}_button".format(*info),
        )
        return [button, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, unquote(object_id))
        if obj is None:  # absent wins over forbidden: Django checks permissions first, which would say 403
            raise Http404(f"No {self.opts.verbose_name} matches the given id.")
        if obj is not None:
            url_name = f"admin:{self.opts.app_label}_{self.opts.model_name}_button"
            tools = [
                {"label": button.label, "url": reverse(url_name, args=[obj.pk, button.name])}
                for button in self.get_object_buttons(request, obj)
            ]
            extra_context["object_buttons"] = tools + self.get_object_links(request, obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def object_button_view(self, request: HttpRequest, object_id: str, button: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given id.")
        spec = {candidate.name: candidate for candidate in self.get_object_buttons(request, obj)}.get(button)
        if spec is None:
            raise PermissionDenied
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        note_missing = False
        if request.method == "POST":
            note = request.POST.get("note", "").strip()[:2000] if spec.with_note else ""
            if not (spec.note_required and not note):
                self.message_user(request, spec.run(request, obj, note), messages.SUCCESS)
                return HttpResponseRedirect(change_url)
            note_missing = True
        context = {
            "note_missing": note_missing,
            **self.admin_site.each_context(request),
            "title": f"{spec.label}: {obj}",
            "opts": self.opts,
            "object": obj,
            "button": spec,
            "change_url": change_url,
        }
        return TemplateResponse(
            request, "admin/object_button_confirm.html", context, status=400 if note_missing else 200
        )


class ClinicScopedInline[C: Model](admin.TabularInline[C, Organization]):
    """An inline of rows belonging to a clinic; shown read-only to members who are not clinic admins."""

    extra = 0
    editable_by_clinic_admins = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[C]:
        return scope_for_user(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField[Any] | None:
        if "queryset" not in kwargs:
            queryset = scoped_choices(db_field.related_model, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _may_edit(self, request: HttpRequest, obj: Organization | None) -> bool:
        if request.user.is_superuser:
            return True
        return self.editable_by_clinic_admins and may_administer(request, obj)

    # Django's inlines take the parent object here; mypy still checks against BaseModelAdmin's (request) only.
    def has_add_permission(self, request: HttpRequest, obj: Organization | None) -> bool:  # type: ignore[override]
        return super().has_add_permission(request, obj) and self._may_edit(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        return super().has_change_permission(request, obj) and self._may_edit(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_edit(request, obj)


# --- Clinic configuration -------------------------------------------------------------------------------------------


class BusinessHoursInline(ClinicScopedInline[BusinessHours]):
    model = BusinessHours
    formset = BusinessHoursFormSet
    fields = ["weekday", "opens", "closes"]
    verbose_name = "opening interval"
    verbose_name_plural = "Business hours (a closing time at or before the opening time means overnight)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[BusinessHours]:
        return super().get_queryset(request).order_by("weekday", "opens")


class ClosureInline(ClinicScopedInline[Closure]):
    model = Closure
    fields = ["date", "label"]
    verbose_name_plural = "Closures and holidays"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Closure]:
        return super().get_queryset(request).order_by("date")


class IntakeFieldInline(ClinicScopedInline[IntakeField]):
    model = IntakeField
    form = IntakeFieldForm
    fields = ["position", "name", "field_type", "required", "description", "choices"]
    readonly_fields = ["allowed_values"]
    verbose_name_plural = "Intake fields (what the agent collects, in this order)"

    def get_fields(self, request: HttpRequest, obj: Organization | None = None) -> _FieldGroups:
        fields = super().get_fields(request, obj)  # self.fields
        if self.has_change_permission(request, obj):
            return fields
        return [name if name != "choices" else "allowed_values" for name in fields]

    @admin.display(description="Choices")
    def allowed_values(self, obj: IntakeField) -> str:
        return ", ".join(obj.choices) if obj.choices else "—"


class EscalationPhraseInline(ClinicScopedInline[EscalationPhrase]):
    model = EscalationPhrase
    fields = ["level", "phrase"]
    verbose_name_plural = "Extra escalation phrases (said by a caller, they alert staff)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[EscalationPhrase]:
        return super().get_queryset(request).order_by("level", "phrase")


class OnCallPersonInline(ClinicScopedInline[OnCallPerson]):
    model = OnCallPerson
    form = OnCallPersonForm
    fields = ["position", "name", "mobile", "email", "weekdays", "starts", "ends", "active"]
    verbose_name_plural = (
        "On-call list (paged in this order among those covering the moment; hours in the clinic's time zone)"
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[OnCallPerson]:
        return super().get_queryset(request).order_by("position", "id")


class PagingRuleInline(ClinicScopedInline[PagingRule]):
    model = PagingRule
    fields = ["level", "action", "repage_minutes"]
    verbose_name = "paging rule"
    verbose_name_plural = (
        "Paging rules per level (without a rule: emergency pages, re-paging every 3 minutes; urgent pages every "
        "10; human requests and agent uncertainty go to the board only)"
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[PagingRule]:
        return super().get_queryset(request).order_by("level")


class TwilioNumberInline(ClinicScopedInline[TwilioNumber]):
    """Numbers belong to the operator's Twilio account and route calls between clinics, so only operators
    (superusers) assign them; clinic members see which numbers reach them."""

    model = TwilioNumber
    fields = ["number", "label"]
    editable_by_clinic_admins = False
    verbose_name_plural = "Phone numbers (Twilio)"

    def has_view_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        # Without a clinic (obj None) Django asks whether the inline's queryset may be listed at all: it is scoped
        # to the user's clinics already; a False here emptied the table for every clinic user.
        if request.user.is_superuser:
            return True
        return request_role(request, obj) is not None if obj is not None else super().has_view_permission(request)


@admin.register(Organization)
class OrganizationAdmin(ClinicScopedAdmin[Organization]):
    clinic_path = "id"
    form = OrganizationForm
    inlines = [
        BusinessHoursInline,
        ClosureInline,
        IntakeFieldInline,
        EscalationPhraseInline,
        OnCallPersonInline,
        PagingRuleInline,
        TwilioNumberInline,
    ]
    list_display = ["name", "slug", "timezone", "open_now", "after_hours_policy", "escalation_phone"]
    list_filter = ["after_hours_policy"]
    search_fields = ["name", "slug"]  # never the webhook secret
    ordering = ["name"]
    actions = ["regenerate_publishable_keys"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "timezone"]}),
        ("After hours", {"fields": ["after_hours_policy", "after_hours_message"]}),
        ("Phones", {"fields": ["escalation_phone", "on_call_phone", "dial_countries", "record_calls"]}),
        ("Services and providers", {"fields": ["services", "providers"]}),
        ("Website widget", {"fields": ["clinic_id", "publishable_key", "allowed_origins", "event_forwarding"]}),
        ("Agent", {"fields": list(AGENT_SETTINGS)}),
        (
            "Acknowledgement targets",
            {"fields": ["ack_target_emergency_minutes", "ack_target_urgent_minutes", "ack_target_other_minutes"]},
        ),
        ("Escalation webhook", {"fields": ["webhook_url", "webhook_secret_hint"]}),
        ("On-call paging", {"fields": list(PAGING_SETTINGS)}),
        # purge_expired deletes what is older; empty keeps forever; audit rows always stay
        ("Data retention", {"fields": list(RETENTION_SETTINGS)}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]

    # Read-only viewers (staff) see list settings as text, not as the JSON the model stores.
    READ_ONLY_DISPLAY: ClassVar[dict[str, str]] = {
        "services": "services_display",
        "providers": "providers_display",
        "allowed_origins": "allowed_origins_display",
        "agent_languages": "agent_languages_display",
        "dial_countries": "dial_countries_display",
    }

    def get_fieldsets(self, request: HttpRequest, obj: Organization | None = None) -> _FieldsetSpec:
        fieldsets = super().get_fieldsets(request, obj)  # self.fieldsets
        if request.user.is_superuser:
            return fieldsets
        if obj is None or self.has_change_permission(request, obj):
            # Clinic admins see the dial countries but cannot change them (operators set the toll-fraud guard).
            return [
                (title, {**options, "fields": [self._operator_only_name(name) for name in options["fields"]]})
                for title, options in fieldsets
            ]
        return [
            (title, {**options, "fields": [self._read_only_name(name) for name in options["fields"]]})
            for title, options in fieldsets
        ]

    def _operator_only_name(self, name: str | list[str] | tuple[str, ...]) -> str | list[str] | tuple[str, ...]:
        return "dial_countries_display" if name == "dial_countries" else name

    def _read_only_name(self, name: str | list[str] | tuple[str, ...]) -> str | list[str] | tuple[str, ...]:
        return self.READ_ONLY_DISPLAY.get(name, name) if isinstance(name, str) else name

    @admin.display(description="Services")
    def services_display(self, obj: Organization) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((item,) for item in obj.services)) or "—"

    @admin.display(description="Providers")
    def providers_display(self, obj: Organization) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((item,) for item in obj.providers)) or "—"

    @admin.display(description="Allowed origins")
    def allowed_origins_display(self, obj: Organization) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((item,) for item in obj.allowed_origins)) or "—"

    @admin.display(description="Dial countries")
    def dial_countries_display(self, obj: Organization) -> str:
        return ", ".join(obj.dial_countries) or "—"

    @admin.display(description="Agent languages")
    def agent_languages_display(self, obj: Organization) -> str:
        return ", ".join(AGENT_LANGUAGES.get(code, code) for code in obj.agent_languages)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        # hours and closures feed the "open now" column without a query per row.
        return super().get_queryset(request).prefetch_related("hours", "closures")

    def get_readonly_fields(self, request: HttpRequest, obj: Organization | None = None) -> list[str]:
        fields = ["clinic_id", "publishable_key", "webhook_secret_hint", "created_at", "updated_at"]
        fields += self.READ_ONLY_DISPLAY.values()
        if not request.user.is_superuser:
            fields.append("slug")  # integrations refer to the slug; operators change it
        return fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or request.user.is_superuser or may_administer(request, obj)

    def save_related(
        self, request: HttpRequest, form: OrganizationForm, formsets: list[forms.BaseInlineFormSet], change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        # A clinic added here starts with the default intake fields (as organization_create does), unless the
        # operator already defined its own in the inline.
        if not change and not form.instance.intake_fields.exists():
            intake_fields_reset_to_default(organization=form.instance)

    @admin.display(description="Clinic id (API)")
    def clinic_id(self, obj: Organization) -> str:
        # What the API names the clinic by (GET /api/org/config/{id or slug}, ?organization= on lists).
        return "—" if obj._state.adding else str(obj.pk)  # a new clinic's default id is not saved yet

    @admin.display(description="Open now", boolean=True)
    def open_now(self, obj: Organization) -> bool:
        return obj.is_open(timezone.now())

    @admin.display(description="Webhook signing secret")
    def webhook_secret_hint(self, obj: Organization) -> str:
        if not obj.webhook_secret:
            return "—"
        return f"whsec_…{obj.webhook_secret[-4:]} (hidden; used to sign escalation webhooks)"

    @admin.action(description="Regenerate publishable key", permissions=["change"])
    def regenerate_publishable_keys(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        allowed = queryset.filter(pk__in=admin_organizations_for_user(request.user).values("id"))
        count = 0
        for organization in allowed:
            organization.regenerate_publishable_key()
            count += 1
        self.message_user(
            request,
            f"New publishable key for {count} clinic(s). Update the key in each clinic's website widget.",
            messages.SUCCESS,
        )

    # Team ------------------------------------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        team = path(
            "<path:object_id>/team/", self.admin_site.admin_view(self.team_view), name="organizations_organization_team"
        )
        return [team, *super().get_urls()]  # before the change page's catch-all

    def get_object_links(self, request: HttpRequest, obj: Organization) -> list[dict[str, str]]:
        if not may_administer(request, obj):
            return []
        return [{"label": "Team", "url": reverse("admin:organizations_organization_team", args=[obj.pk])}]

    def team_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The clinic's team: add people (with an invitation link), change roles, remove, reset access. Every step
        is a service in organizations.services, which checks the rules and records the audit row."""
        organization = self.get_object(request, unquote(object_id))
        if organization is None:
            raise Http404("No clinic matches the given id.")  # another clinic looks absent
        if not may_administer(request, organization):
            raise PermissionDenied  # a member who is not a clinic admin
        team_url = reverse("admin:organizations_organization_team", args=[organization.pk])
        add_form = TeamMemberAddForm()
        access: tuple[str, AccessLink] | None = None
        if request.method == "POST":
            operation = request.POST.get("operation", "")
            try:
                if operation == "add":
                    add_form = TeamMemberAddForm(request.POST)
                    if add_form.is_valid():
                        data = add_form.cleaned_data
                        membership = team_member_add(actor=request.user, organization=organization, **data)
                        link = team_access_link(
                            actor=request.user,
                            organization=organization,
                            membership_id=membership.pk,
                            base_url=settings.PUBLIC_BASE_URL,
                            send_email=bool(request.POST.get("send_email")),
                        )
                        access = (membership.user.get_username(), link)
                        add_form = TeamMemberAddForm()
                else:
                    membership_id = _membership_id(request.POST.get("membership", ""))
                    if operation == "role":
                        membership = team_member_role_set(
                            actor=request.user,
                            organization=organization,
                            membership_id=membership_id,
                            role=request.POST.get("role", ""),
                        )
                        self.message_user(
                            request,
                            f"{membership.user.get_username()} is now {membership.get_role_display()}.",
                            messages.SUCCESS,
                        )
                        return HttpResponseRedirect(team_url)
                    if operation == "remove":
                        team_member_remove(actor=request.user, organization=organization, membership_id=membership_id)
                        self.message_user(request, "Removed from the team.", messages.SUCCESS)
                        return HttpResponseRedirect(team_url)
                    if operation == "reset":
                        link = team_access_link(
                            actor=request.user,
                            organization=organization,
                            membership_id=membership_id,
                            base_url=settings.PUBLIC_BASE_URL,
                            send_email=bool(request.POST.get("send_email")),
                        )
                        member = Membership.objects.select_related("user").get(pk=membership_id)
                        access = (member.user.get_username(), link)
                    elif operation != "role":
                        raise PermissionDenied
            except Membership.DoesNotExist:
                raise Http404("No member matches the given id.") from None
            except TeamChangeRefused as refusal:
                if operation == "add":
                    for field, problems in refusal.error_dict.items() if hasattr(refusal, "error_dict") else []:
                        target = field if field in add_form.fields else None
                        for problem in problems:
                            add_form.add_error(target, problem)
                    if not hasattr(refusal, "error_dict"):
                        add_form.add_error(None, refusal.messages[0])
                else:
                    self.message_user(request, " ".join(refusal.messages), messages.ERROR)
                    return HttpResponseRedirect(team_url)
        members = list(
            Membership.objects.filter(organization=organization).select_related("user").order_by("user__username")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Team of {organization.name}",
            "opts": self.opts,
            "object": organization,
            "change_url": reverse("admin:organizations_organization_change", args=[organization.pk]),
            "members": members,
            "roles": Membership.Role.choices,
            "add_form": add_form,
            "access": access,
            # Clinic admins and operators are the audit trail's readers too.
            "audit_url": reverse("admin:calls_auditevent_changelist")
            + f"?clinic={organization.pk}&object_type__exact=membership",
        }
        return TemplateResponse(request, "admin/organizations/team.html", context)

    def get_object_buttons(self, request: HttpRequest, obj: Organization) -> list[ObjectButton[Organization]]:
        if not self.has_change_permission(request, obj):
            return []

        def regenerate(request: HttpRequest, organization: Organization, note: str) -> str:
            organization.regenerate_publishable_key()
            return "New publishable key generated. Update it in the clinic's website widget."

        return [
            ObjectButton(
                name="regenerate-key",
                label="Regenerate publishable key",
                explanation="The current key stops working at once: the clinic's website widget cannot start "
                "calls until it is updated with the new key.",
                run=regenerate,
            )
        ]


# --- Memberships ------------------------------------------------------------------------------------------------------


class MembershipForm(forms.ModelForm[Membership]):
    """Operators' membership form: the last-admin rule shown as a form error, not a failed save."""

    class Meta:
        model = Membership
        fields = ["user", "organization", "role"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        original = self.instance
        if original.pk is not None and original.role == Membership.Role.ADMIN and data.get("role") != original.role:
            others = Membership.objects.filter(organization_id=original.organization_id, role=Membership.Role.ADMIN)
            if not others.exclude(pk=original.pk).exists():
                raise forms.ValidationError(LAST_ADMIN)
        return data


@admin.register(Membership)
class MembershipAdmin(ClinicScopedAdmin[Membership]):
    """Who belongs to which clinic, for clinic admins (their clinics) and operators (every clinic). Clinic admins
    manage people on each clinic's Team page (OrganizationAdmin.team_view), which this list links to; operators may
    also add, re-role and remove here. Both go through the same services, which keep a clinic's last admin and
    record the audit trail."""

    form = MembershipForm
    list_display = ["user", "user_email", "organization", "role", "created_at", "team_link"]
    list_filter = ["role", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "user__email", "organization__name"]
    list_select_related = ["user", "organization"]
    autocomplete_fields = ["user", "organization"]
    ordering = ["organization__name", "user__username"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        # Only clinic admins list members, and only of the clinics they administer.
        return queryset.filter(organization__in=admin_organizations_for_user(request.user).values("id"))

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> list[str]:
        if obj is not None:
            return ["user", "organization", "created_at"]  # change the role; a different pair is a new membership
        return ["created_at"]

    # Clinic admins use the Team page; here only operators change anything.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        return request.user.is_superuser

    @admin.display(description="Email", ordering="user__email")
    def user_email(self, obj: Membership) -> str:
        return obj.user.email

    @admin.display(description="Manage")
    def team_link(self, obj: Membership) -> str:
        url = reverse("admin:organizations_organization_team", args=[obj.organization_id])
        return format_html('<a href="{}">Team of {}</a>', url, obj.organization.name)

    def save_model(
        self, request: HttpRequest, obj: Membership, form: forms.ModelForm[Membership], change: bool
    ) -> None:
        if change:
            membership = team_member_role_set(
                actor=request.user, organization=obj.organization, membership_id=obj.pk, role=obj.role
            )
        else:
            membership = team_member_add(
                actor=request.user,
                organization=obj.organization,
                username=obj.user.get_username(),
                email=obj.user.email,
                role=obj.role,
            )
        obj.pk = membership.pk
        obj.refresh_from_db()

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and request.method == "POST":
            try:
                team_member_remove(actor=request.user, organization=obj.organization, membership_id=obj.pk)
            except TeamChangeRefused as refusal:
                self.message_user(request, " ".join(refusal.messages), messages.ERROR)
                return HttpResponseRedirect(reverse("admin:organizations_membership_change", args=[obj.pk]))
            self.message_user(request, f"Removed {obj.user} from {obj.organization}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:organizations_membership_changelist"))
        return super().delete_view(request, object_id, extra_context)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        kept = 0
        for membership in queryset.select_related("user", "organization"):
            try:
                team_member_remove(
                    actor=request.user, organization=membership.organization, membership_id=membership.pk
                )
            except TeamChangeRefused:
                kept += 1
        if kept:
            self.message_user(request, f"{kept} clinic admin(s) kept: {LAST_ADMIN}", messages.WARNING)


def _membership_id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Http404("No member matches the given id.") from None


def admin_change_link(obj: Model, text: str | None = None) -> str:
    """An HTML link to `obj`'s console change page (escaped)."""
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))
