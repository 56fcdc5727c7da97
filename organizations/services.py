"""Clinic workflows: creating a clinic with its defaults, and memberships that drive console permissions."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from organizations.models import DEFAULT_INTAKE_FIELDS, IntakeField, Membership, Organization

# Group names created by migration organizations.0002; membership roles map onto them.
ADMIN_GROUP = "Clinic admins"
STAFF_GROUP = "Clinic staff"
ROLE_GROUPS = {Membership.Role.ADMIN: ADMIN_GROUP, Membership.Role.STAFF: STAFF_GROUP}


def organization_create(*, name: str, slug: str, **config) -> Organization:
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


def user_sync_console_access(*, user: AbstractBaseUser) -> None:
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


def membership_set(*, user: AbstractBaseUser, organization: Organization, role: str) -> Membership:
    with transaction.atomic():
        membership, _ = Membership.objects.update_or_create(
            user=user, organization=organization, defaults={"role": role}
        )
        user_sync_console_access(user=user)
    return membership


def membership_remove(*, user: AbstractBaseUser, organization: Organization) -> None:
    with transaction.atomic():
        Membership.objects.filter(user=user, organization=organization).delete()
        user_sync_console_access(user=user)
