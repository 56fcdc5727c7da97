"""Twilio request signatures (X-Twilio-Signature), checked against our *public* URL.

Twilio signs the exact URL it requested plus the sorted form parameters. Behind a proxy Django may see `http://` or an
internal host, so the URL is rebuilt from settings.PUBLIC_BASE_URL, never from request.build_absolute_uri().
Requests signed with a webhook SharedKey (Public Beta) carry X-Twilio-Webhooks-Signature-Settings
`key=<id>,algorithm=HMAC_SHA256`; their secret comes from settings.TWILIO_WEBHOOK_SHARED_KEYS ({key id: secret}),
and an unknown key id fails. Without that header the account Auth Token and HMAC-SHA1 apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from twilio.request_validator import (
    HMAC_SHA1,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)


def public_url(path: str, query_string: str = "") -> str:
    """The https URL Twilio reaches `path` at (query string appended exactly as received)."""
    url = settings.PUBLIC_BASE_URL.rstrip("/") + path
    return f"{url}?{query_string}" if query_string else url


def public_ws_url(path: str) -> str:
    """The WebSocket URL for `path`: wss:// for an https public base (ws:// only for a plain-http dev base)."""
    parts = urlsplit(settings.PUBLIC_BASE_URL)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"


def _settings_key_id(settings_header: str) -> str:
    for part in settings_header.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "key":
            return value.strip()
    return ""


def signing_secret(settings_header: str | None) -> str:
    """The secret a request was signed with: a SharedKey secret when the settings header names one, else the
    account Auth Token. Empty when we hold no such secret (the request then fails)."""
    if settings_header:
        shared: Mapping[str, str] = getattr(settings, "TWILIO_WEBHOOK_SHARED_KEYS", None) or {}
        return shared.get(_settings_key_id(settings_header), "")
    return settings.TWILIO_AUTH_TOKEN


def signature_is_valid(url: str, params: object, signature: str | None, settings_header: str | None = None) -> bool:
    """True when `signature` is Twilio's signature of `url` + `params` (a dict or QueryDict; {} for WebSockets)."""
    secret = signing_secret(settings_header)
    if not signature or not secret:
        return False
    algorithm = get_signature_algorithm(settings_header) if settings_header else HMAC_SHA1
    return RequestValidator(secret).validate(url, params, signature, algorithm=algorithm)


def request_is_from_twilio(request: HttpRequest) -> bool:
    """Validate a form-encoded webhook against PUBLIC_BASE_URL + path (+ query string as received)."""
    url = public_url(request.path_info, request.META.get("QUERY_STRING", ""))
    return signature_is_valid(
        url,
        request.POST,
        request.headers.get("X-Twilio-Signature"),
        request.headers.get(SIGNATURE_SETTINGS_HEADER),
    )


def websocket_signature_is_valid(path: str, signature: str | None, settings_header: str | None = None) -> bool:
    """Media Streams upgrade: Twilio signs the wss:// URL from our TwiML (public_ws_url) with no parameters."""
    return signature_is_valid(public_ws_url(path), {}, signature, settings_header)
