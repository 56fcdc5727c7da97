"""The client's address, as the throttles, the lockout and the audit trail all see it."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest
from rest_framework.settings import api_settings


def client_ip(request: HttpRequest) -> str | None:
    """The client address as DRF's throttles see it (X-Forwarded-For only behind NUM_PROXIES trusted proxies)."""
    remote = request.META.get("REMOTE_ADDR")
    xff = request.headers.get("X-Forwarded-For")
    num_proxies = api_settings.NUM_PROXIES
    candidate = remote
    if num_proxies and xff:
        addresses = xff.split(",")
        candidate = addresses[-min(num_proxies, len(addresses))].strip()
    return valid_ip(candidate)


def valid_ip(value: object) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value))) if value else None
    except ValueError:
        return None
