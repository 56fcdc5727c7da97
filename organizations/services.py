"""Clinic workflows: creating a clinic with its defaults, and memberships that drive console permissions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.contrib.auth.models import AnonymousUser, Group, User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import NON_FIELD_ERRORS, ImproperlyConfigured, PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token

from organizations.access import can_administer
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

logger = logging.getLogger(__name__)

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
        "view_twilionumber",  # which numbers reach the clinic (operators assign them)
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


# --- Team management (a clinic admin's, or an operator's, for any clinic) ------------------------------------------
# membership_set / membership_remove above are the unchecked building blocks (seed_demo, tests); the console's team
# page calls these, which check who acts, keep a clinic with at least one admin and record each change in the audit
# trail.


class TeamAuditRecorder(Protocol):
    def __call__(
        self,
        *,
        actor: User,
        organization_id: Any,
        action: str,
        object_type: str,
        object_id: Any,
        details: dict[str, Any],
        via: str,
    ) -> None: ...


# The audit trail lives in the calls app, above this one: calls installs its recorder at start-up (calls.apps), as it
# installs the live-call heartbeat into core.drain. A team change that cannot be recorded is refused.
_team_recorders: list[TeamAuditRecorder] = []


def team_audit_install(recorder: TeamAuditRecorder) -> None:
    _team_recorders[:] = [recorder]


def _team_audit(
    *, actor: User, organization: Organization, action: str, object_type: str, object_id: Any, **details: Any
) -> None:
    if not _team_recorders:
        raise ImproperlyConfigured("no audit recorder installed for team changes (calls.apps installs it)")
    _team_recorders[0](
        actor=actor,
        organization_id=organization.pk,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details,
        via="console",
    )


class TeamChangeRefused(ValidationError):
    """A team change that would break a rule (the last admin, a taken username); `code` says which."""


LAST_ADMIN = "A clinic keeps at least one clinic admin: make someone else an admin first."


def _require_team_admin(actor: User | AnonymousUser, organization: Organization) -> User:
    """Clinic admins manage their own clinic's team; operators (superusers) any clinic's."""
    if not actor.is_authenticated or not can_administer(actor, organization):
        raise PermissionDenied
    return actor


def _locked_membership(organization: Organization, membership_id: int) -> Membership:
    """The clinic's membership, locked; another clinic's id is simply absent (Membership.DoesNotExist)."""
    return (
        Membership.objects.select_for_update().select_related("user").get(pk=membership_id, organization=organization)
    )


def _other_admins_exist(organization: Organization, membership: Membership) -> bool:
    # Locking the clinic's admin rows: two admins demoting each other at once cannot both succeed.
    admins = Membership.objects.select_for_update().filter(organization=organization, role=Membership.Role.ADMIN)
    return any(row.pk != membership.pk for row in admins)


def team_member_add(
    *,
    actor: User | AnonymousUser,
    organization: Organization,
    username: str,
    email: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
) -> Membership:
    """Add a new person to the clinic's team: a user with no password yet (they set one through an invitation link,
    team_access_link) and a membership with `role`. Operators may also add an existing user by username; a clinic
    admin cannot take over an account that exists (it may belong to another clinic)."""
    actor = _require_team_admin(actor, organization)
    if role not in Membership.Role.values:
        raise TeamChangeRefused("Unknown role.", code="invalid_role")
    with transaction.atomic():
        user = User.objects.filter(username=username).first()
        if user is not None and not actor.is_superuser:
            raise TeamChangeRefused("That username is taken; choose another.", code="username_taken")
        if user is not None and Membership.objects.filter(user=user, organization=organization).exists():
            raise TeamChangeRefused("That user is already on this clinic's team.", code="already_member")
        if user is None:
            user = User(username=username, email=email, first_name=first_name, last_name=last_name)
            user.set_unusable_password()
            try:
                user.full_clean()
            except ValidationError as error:
                raise TeamChangeRefused(error.message_dict, code="invalid_user") from None
            user.save()
        membership = membership_set(user=user, organization=organization, role=role)
        _team_audit(
            actor=actor,
            organization=organization,
            action="create",
            object_type="membership",
            object_id=membership.pk,
            user_id=user.pk,
        )
    logger.info("team member added organization=%s membership=%s", organization.pk, membership.pk)
    return membership


def team_member_role_set(
    *, actor: User | AnonymousUser, organization: Organization, membership_id: int, role: str
) -> Membership:
    """Change a member's role (admin or staff). The last admin cannot be made staff."""
    actor = _require_team_admin(actor, organization)
    if role not in Membership.Role.values:
        raise TeamChangeRefused("Unknown role.", code="invalid_role")
    with transaction.atomic():
        membership = _locked_membership(organization, membership_id)
        if membership.role == role:
            return membership
        if membership.role == Membership.Role.ADMIN and not _other_admins_exist(organization, membership):
            raise TeamChangeRefused(LAST_ADMIN, code="last_admin")
        membership = membership_set(user=membership.user, organization=organization, role=role)
        _team_audit(
            actor=actor,
            organization=organization,
            action="change",
            object_type="membership",
            object_id=membership.pk,
            user_id=membership.user_id,
            fields=["role"],
        )
    return membership


def team_member_remove(*, actor: User | AnonymousUser, organization: Organization, membership_id: int) -> None:
    """Take a member off the clinic's team (their user stays, with their other clinics). Not the last admin."""
    actor = _require_team_admin(actor, organization)
    with transaction.atomic():
        membership = _locked_membership(organization, membership_id)
        if membership.role == Membership.Role.ADMIN and not _other_admins_exist(organization, membership):
            raise TeamChangeRefused(LAST_ADMIN, code="last_admin")
        _team_audit(
            actor=actor,
            organization=organization,
            action="delete",
            object_type="membership",
            object_id=membership.pk,
            user_id=membership.user_id,
        )
        membership_remove(user=membership.user, organization=organization)
        # Console sessions follow the staff flag (user_sync_console_access); API tokens name the user, not the
        # clinic, and go with the last membership.
        if not Membership.objects.filter(user=membership.user).exists():
            Token.objects.filter(user=membership.user).delete()


@dataclass(frozen=True)
class AccessLink:
    url: str
    emailed_to: str  # empty when not sent


def team_access_link(
    *,
    actor: User | AnonymousUser,
    organization: Organization,
    membership_id: int,
    base_url: str,
    send_email: bool = False,
) -> AccessLink:
    """A link with which the member sets a new password (an invitation for someone who never had one), made with
    Django's password-reset tokens: it works once, stops working when the password changes or they sign in, and
    expires after PASSWORD_RESET_TIMEOUT. Shown once to whoever asked; e-mailed to the member (after commit) when
    `send_email` and they have an address.

    A clinic admin resets only people whose every clinic they administer: a link for someone who also belongs to
    another clinic (or an operator) would open that clinic to them."""
    actor = _require_team_admin(actor, organization)
    with transaction.atomic():
        membership = _locked_membership(organization, membership_id)
        user = membership.user
        if not actor.is_superuser:
            elsewhere = Membership.objects.filter(user=user).exclude(
                organization__in=Membership.objects.filter(user=actor, role=Membership.Role.ADMIN).values(
                    "organization"
                )
            )
            if user.is_superuser or elsewhere.exists():
                raise TeamChangeRefused(
                    "This person also belongs to a clinic you do not administer; ask an operator to reset their "
                    "access.",
                    code="not_yours_to_reset",
                )
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = default_token_generator.make_token(user)
        url = base_url.rstrip("/") + reverse("account-set-password", kwargs={"uidb64": uid, "token": token})
        emailed_to = user.email if send_email and user.email else ""
        _team_audit(
            actor=actor,
            organization=organization,
            action="change",
            object_type="user",
            object_id=user.pk,
            event="access_reset",
            emailed=bool(emailed_to),
        )
        if emailed_to:
            transaction.on_commit(lambda: _send_access_email(emailed_to, organization.name, url))
    return AccessLink(url=url, emailed_to=emailed_to)


def _send_access_email(address: str, clinic: str, url: str) -> None:
    send_mail(
        subject=f"Your access to {clinic}'s voiceagent console",
        message=f"Set your password for {clinic}'s console with this link (it works once):\n\n{url}\n\n"
        "If you did not expect this message, ignore it.",
        from_email=None,
        recipient_list=[address],
    )


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
