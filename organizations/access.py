"""The tenancy chokepoint: every tenant-owned lookup made on behalf of a user goes through here.

Superusers (operators) see every clinic; everybody else sees exactly the clinics they have a membership in.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet

from organizations.models import Membership, Organization


def organizations_for_user(user: User | AnonymousUser) -> QuerySet[Organization]:
    if not user.is_authenticated or not user.is_active:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user)


def admin_organizations_for_user(user: User | AnonymousUser) -> QuerySet[Organization]:
    """Clinics whose configuration the user may change."""
    if not user.is_authenticated or not user.is_active:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user, memberships__role=Membership.Role.ADMIN)


def scope_for_user[M: Model](
    queryset: QuerySet[M], user: User | AnonymousUser, *, via: str = "organization"
) -> QuerySet[M]:
    """Restrict `queryset` to rows of the user's clinics; `via` is the lookup path to the organization."""
    if user.is_authenticated and user.is_active and user.is_superuser:
        return queryset
    return queryset.filter(**{f"{via}__in": organizations_for_user(user).values("id")})


def role_in(user: User | AnonymousUser, organization: Organization) -> str | None:
    """The user's role in the clinic ('admin' or 'staff'), 'admin' for superusers, None for outsiders."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Membership.Role.ADMIN
    return Membership.objects.filter(user=user, organization=organization).values_list("role", flat=True).first()


def can_administer(user: User | AnonymousUser, organization: Organization) -> bool:
    return role_in(user, organization) == Membership.Role.ADMIN


def can_route_numbers(user: User | AnonymousUser) -> bool:
    """Twilio numbers route callers between clinics: operators (superusers) assign them, in the console
    (TwilioNumberInline) and the API alike; clinic admins only see theirs."""
    return bool(user.is_authenticated and user.is_active and user.is_superuser)


def signed_in(user: User | AnonymousUser) -> User:
    """The user of a request that only signed-in users reach (the console's admin_view, the staff API's
    IsAuthenticated), as the User the workflows record. An anonymous user here means a view lost its guard: refused."""
    if not user.is_authenticated:
        raise PermissionDenied
    return user
