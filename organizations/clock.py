"""Times as clinic users see them: in the clinic's own time zone, labelled with the zone, in one format.

Staff think in clinic time and the server runs in UTC, so every time a page shows goes through here ("Wed 02 Dec
2026, 14:05 EST"; a transcript line's time of day "14:05:07 EST"). A page that shows several clinics (an operator's
lists) labels each time with its clinic's zone, and says so in its column titles.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import TYPE_CHECKING, Protocol

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core.middleware import SyncAsyncMiddleware
from organizations.access import organizations_for_user

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

EMPTY = "—"
MOMENT_FORMAT = "%a %d %b %Y, %H:%M %Z"
CLOCK_FORMAT = "%H:%M:%S %Z"
UTC = zoneinfo.ZoneInfo("UTC")


class HasZone(Protocol):
    @property
    def tz(self) -> zoneinfo.ZoneInfo: ...


def _zone(where: HasZone | zoneinfo.ZoneInfo | None) -> zoneinfo.ZoneInfo:
    if where is None:
        return UTC
    return where if isinstance(where, zoneinfo.ZoneInfo) else where.tz


def clinic_time(moment: dt.datetime | None, where: HasZone | zoneinfo.ZoneInfo | None) -> str:
    """A moment in the clinic's zone (a clinic, or a zone; None: UTC), labelled: "Wed 02 Dec 2026, 14:05 EST"."""
    if moment is None:
        return EMPTY
    return moment.astimezone(_zone(where)).strftime(MOMENT_FORMAT)


def clinic_clock(moment: dt.datetime | None, where: HasZone | zoneinfo.ZoneInfo | None) -> str:
    """The time of day only, labelled, for lines under a dated heading (a transcript): "14:05:07 EST"."""
    if moment is None:
        return EMPTY
    return moment.astimezone(_zone(where)).strftime(CLOCK_FORMAT)


def zone_label(where: HasZone | zoneinfo.ZoneInfo | None, at: dt.datetime | None = None) -> str:
    """The zone's name as pages say it: "America/New_York (EST)"."""
    zone = _zone(where)
    moment = (at or dt.datetime.now(tz=UTC)).astimezone(zone)
    return f"{zone.key} ({moment.strftime('%Z')})"


def page_zone(user: User | AnonymousUser) -> zoneinfo.ZoneInfo | None:
    """The one zone a user's pages are in: the zone their clinics share; None (UTC, the server's zone) for an
    operator or someone whose clinics span zones, where each clinic time is labelled with its own zone."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "is_superuser", False):
        return None
    zones = set(organizations_for_user(user).values_list("timezone", flat=True).distinct()[:2])
    return zoneinfo.ZoneInfo(zones.pop()) if len(zones) == 1 else None


class ClinicTimeZoneMiddleware(SyncAsyncMiddleware):
    """Console pages render every time Django formats (read-only dates, date filters, the audit trail) in the
    page's zone (page_zone); the header says which zone that is. The API answers in ISO 8601 with offsets."""

    @staticmethod
    def _applies(request: HttpRequest) -> bool:
        return not request.path.startswith(("/api/", "/twilio/", "/static/", "/healthz", "/readyz"))

    def handle(self, request: HttpRequest) -> HttpResponse:
        zone = page_zone(request.user) if self._applies(request) else None
        with timezone.override(zone):
            return self.get_response(request)

    async def ahandle(self, request: HttpRequest) -> HttpResponse:
        zone = None
        if self._applies(request):
            zone = await sync_to_async(page_zone)(await request.auser())
        with timezone.override(zone):
            return await self.get_response(request)
