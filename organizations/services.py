"""Clinic workflows: creating a clinic with its defaults, and memberships that drive console permissions."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from rest_framework.authtoken.models import Token

from organizations.models import (
    CLINIC_SETTINGS,
    DEFAULT_INTAKE_FIELDS,
    BusinessHours,
    Closure,
    EscalationPhrase,
    IntakeField,
    Membership,
    Organization,
    TwilioNumber,
    validate_hours_do_not_overlap,
)

# Group names created by migration organizations.0002; membership roles map onto them.
ADMIN_GROUP = "Clinic admins"
STAFF_GROUP = "Clinic staff"
ROLE_GROUPS: dict[str, str] = {Membership.Role.ADMIN: ADMIN_GROUP, Membership.Role.STAFF: STAFF_GROUP}


# What each console role may do at all (which clinic's rows it applies to is checked per object).
# Migration 0002 created the groups with these; post_migrate keeps them so after test-database flushes too.
STAFF_PERMISSIONS = {
    "organizations": [
        "view_organization",
        "view_businesshours",
        "view_closure",
        "view_intakefield",
        "view_escalationphrase",
        "view_oncallperson",
        "view_pagingrule",
    ],
    "calls": [
        "view_call",
        "change_call",
        "view_transcriptsegment",
        "view_intake",
        "view_escalation",
        "change_escalation",
        "add_escalation",
    ],
}
ADMIN_EXTRA_PERMISSIONS = {
    "organizations": [
        "change_organization",
        "add_businesshours",
        "change_businesshours",
        "delete_businesshours",
        "add_closure",
        "change_closure",
        "delete_closure",
        "add_intakefield",
        "change_intakefield",
        "delete_intakefield",
        "add_escalationphrase",
        "change_escalationphrase",
        "delete_escalationphrase",
        "add_oncallperson",
        "change_oncallperson",
        "delete_oncallperson",
        "add_pagingrule",
        "change_pagingrule",
        "delete_pagingrule",
        "view_membership",
    ],
}


def console_groups_ensure(**_signal_kwargs: object) -> None:
    """Create (or repair) the two console groups and their permissions. Idempotent; a post_migrate receiver."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Permission

    for label in ("organizations", "calls"):
        create_permissions(apps.get_app_config(label), verbosity=0)

    def permissions(spec: dict[str, list[str]]) -> list[Permission]:
        found: list[Permission] = []
        for app_label, codenames in spec.items():
            found += Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        return found

    staff, _ = Group.objects.get_or_create(name=STAFF_GROUP)
    staff.permissions.set(permissions(STAFF_PERMISSIONS))
    admin, _ = Group.objects.get_or_create(name=ADMIN_GROUP)
    admin.permissions.set(permissions(STAFF_PERMISSIONS) + permissions(ADMIN_EXTRA_PERMISSIONS))


def organization_create(*, name: str, slug: str, **config: Any) -> Organization:
    """A new clinic starts with the default intake fields, which its admins can then change."""
    with transaction.atomic():
        organization = Organization(name=name, slug=slug, **config)
        organization.full_clean()
        organization.save()
        intake_fields_reset_to_default(organization=organization)
    return organization


def intake_fields_reset_to_default(*, organization: Organization) -> None:
    organization.intake_fields.all().delete()
    IntakeField.objects.bulk_create(
        IntakeField(organization=organization, position=position, **spec)
        for position, spec in enumerate(DEFAULT_INTAKE_FIELDS)
    )


def user_sync_console_access(*, user: User) -> None:
    """Staff-console access follows memberships: any membership grants the console, and the groups of the user's
    roles grant the model permissions. Which clinic's rows a permission applies to is decided per object by
    organizations.access. Superusers are left as they are."""
    if user.is_superuser:
        return
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    wanted = Group.objects.filter(name__in=[ROLE_GROUPS[role] for role in roles])
    managed = Group.objects.filter(name__in=ROLE_GROUPS.values())
    user.groups.remove(*managed.exclude(pk__in=wanted))
    user.groups.add(*wanted)
    is_staff = bool(roles)
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


def user_password_set(*, user: User, password: str | None) -> User:
    """Set the user's password (None: no usable password) and end what the old one opened: every API token of the
    user is deleted (401 from now on), and every console session signed with the old password ends, because Django
    and the board socket refuse a session whose stored password hash no longer matches. A user changing their own
    password in the console stays signed in there: the view re-stamps that one session (update_session_auth_hash);
    they just proved the old password and typed the new one. Their tokens go too: a script holding one signs in again.
    The console forms (for oneself and for operators) call this; any other `set_password()` + `save()` (e.g.
    `manage.py changepassword`) revokes the tokens through organizations.auth.PasswordChangeRevokesTokens."""
    with transaction.atomic():
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.save(update_fields=["password"])
        Token.objects.filter(user=user).delete()
    return user


def membership_set(*, user: User, organization: Organization, role: str) -> Membership:
    with transaction.atomic():
        membership, _ = Membership.objects.update_or_create(
            user=user, organization=organization, defaults={"role": role}
        )
        user_sync_console_access(user=user)
    return membership


def membership_remove(*, user: User, organization: Organization) -> None:
    with transaction.atomic():
        Membership.objects.filter(user=user, organization=organization).delete()
        user_sync_console_access(user=user)


# --- Configuration updates (API) ---------------------------------------------------------------------------------


def _child_errors(rows: Sequence[Model], name: str, errors: dict[str, list[str]]) -> None:
    """Validate child rows like the console's inline forms: field validators, choices and clean()."""
    for index, row in enumerate(rows):
        try:
            # The organization is excluded: its unique constraints are checked within the new list instead,
            # since the rows it replaces are still in the database.
            row.full_clean(exclude=["organization"], validate_unique=False)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                key = f"{name}.{index}" if field == NON_FIELD_ERRORS else f"{name}.{index}.{field}"
                errors.setdefault(key, []).extend(messages)


def _duplicates[R: Model](
    rows: Sequence[R], key: Callable[[R], Hashable], name: str, what: str, errors: dict[str, list[str]]
) -> None:
    seen: set[Hashable] = set()
    for index, row in enumerate(rows):
        value = key(row)
        if value in seen:
            errors.setdefault(f"{name}.{index}", []).append(f"Duplicate {what}.")
        seen.add(value)


# One answer for every number that cannot be routed to the clinic (taken by another clinic, lost a race), so the
# refusal does not tell which numbers other clinics have.
NUMBER_REFUSED = "This number cannot be routed to this clinic."


class NumberRoutingDenied(PermissionDenied):
    """Only operators route Twilio numbers: a number decides which clinic receives a caller (and their data)."""


def _twilio_rows_unchanged(organization: Organization, rows: Sequence[dict[str, Any]]) -> bool:
    current = sorted(organization.twilio_numbers.values_list("number", "label"))
    return current == sorted((row.get("number", ""), row.get("label", "")) for row in rows)


def organization_config_update(
    *, organization: Organization, data: dict[str, Any], may_route_numbers: bool = False
) -> Organization:
    """Change a clinic's configuration: only the keys in `data` change, all or nothing.

    `twilio_numbers` may change only with `may_route_numbers` (operators, organizations.access.can_route_numbers);
    anyone else may send the clinic's list back unchanged (it is ignored) and gets NumberRoutingDenied otherwise.

    `data` holds model field names (CLINIC_SETTINGS) and lists of plain dicts for the child rows
    (CONFIG_LISTS), each list replacing the clinic's rows. Everything is validated as the console validates
    it (field validators, Organization.clean(), IntakeField.clean(), no overlapping hours); a ValidationError maps
    each problem to a dotted path such as "business_hours.1.closes" and nothing is written.
    """
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=organization.pk)
        if "twilio_numbers" in data and not may_route_numbers:
            if not _twilio_rows_unchanged(locked, data["twilio_numbers"]):
                raise NumberRoutingDenied
            data = {key: value for key, value in data.items() if key != "twilio_numbers"}
        for name in set(CLINIC_SETTINGS) & data.keys():
            setattr(locked, name, data[name])
        try:
            locked.full_clean()
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                errors.setdefault("non_field_errors" if field == NON_FIELD_ERRORS else field, []).extend(messages)

        # Each list that was sent replaces the rows of its model, in this order.
        children: dict[type[Model], Sequence[Model]] = {}
        if "business_hours" in data:
            hours = [BusinessHours(organization=locked, **row) for row in data["business_hours"]]
            _child_errors(hours, "business_hours", errors)
            _duplicates(hours, lambda r: (r.weekday, r.opens), "business_hours", "opening time on that day", errors)
            if not any(key.startswith("business_hours") for key in errors):
                try:
                    validate_hours_do_not_overlap(hours)
                except ValidationError as error:
                    errors.setdefault("business_hours", []).extend(error.messages)
            children[BusinessHours] = hours
        if "closures" in data:
            closures = [Closure(organization=locked, **row) for row in data["closures"]]
            _child_errors(closures, "closures", errors)
            _duplicates(closures, lambda r: r.date, "closures", "closure date", errors)
            children[Closure] = closures
        if "intake_fields" in data:
            fields = [
                IntakeField(organization=locked, position=position, **row)
                for position, row in enumerate(data["intake_fields"])
            ]
            _child_errors(fields, "intake_fields", errors)
            _duplicates(fields, lambda r: r.name, "intake_fields", "intake field name", errors)
            children[IntakeField] = fields
        if "escalation_phrases" in data:
            phrases = [EscalationPhrase(organization=locked, **row) for row in data["escalation_phrases"]]
            _child_errors(phrases, "escalation_phrases", errors)
            _duplicates(phrases, lambda r: (r.level, r.phrase), "escalation_phrases", "phrase for that level", errors)
            children[EscalationPhrase] = phrases
        if "twilio_numbers" in data:
            numbers = [TwilioNumber(organization=locked, **row) for row in data["twilio_numbers"]]
            _child_errors(numbers, "twilio_numbers", errors)
            _duplicates(numbers, lambda r: r.number, "twilio_numbers", "number", errors)
            taken = set(
                TwilioNumber.objects.filter(number__in=[row.number for row in numbers])
                .exclude(organization=locked)
                .values_list("number", flat=True)
            )
            for index, row in enumerate(numbers):
                if row.number in taken:
                    errors.setdefault(f"twilio_numbers.{index}.number", []).append(NUMBER_REFUSED)
            children[TwilioNumber] = numbers

        if errors:
            raise ValidationError(errors)
        locked.save()
        for model, rows in children.items():
            model._default_manager.filter(organization=locked).delete()
            try:
                with transaction.atomic():  # a savepoint: a number claimed concurrently is a 400, not a 500
                    model._default_manager.bulk_create(rows)
            except IntegrityError:
                if model is not TwilioNumber:
                    raise
                raise ValidationError({"twilio_numbers": [NUMBER_REFUSED]}) from None
    return locked
