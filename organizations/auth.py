"""Staff authentication safeguards (HIPAA 164.312(a)(2)(iii) automatic logoff, (d) authentication; ASVS 6.3, 7.3):

- login lockout: after LOGIN_LOCKOUT_FAILURES failed logins for one username (or LOGIN_LOCKOUT_IP_FAILURES from
  one address) within LOGIN_LOCKOUT_WINDOW_SECONDS, every attempt is refused for LOGIN_LOCKOUT_SECONDS, even with
  the right password. The answer is the ordinary "wrong username or password" one, for known and unknown usernames
  alike, so the lockout reveals nothing about which accounts exist. Attempts during a lockout do not extend it.
- console sessions: idle timeout is SESSION_COOKIE_AGE with SESSION_SAVE_EVERY_REQUEST; `SessionLifetimeMiddleware`
  ends a session SESSION_ABSOLUTE_LIFETIME_SECONDS after login however active it was.
- API tokens (`Authorization: Token <key>`) expire API_TOKEN_TTL_HOURS after they were issued (401 `token_expired`)
  and are revoked by deleting them (`POST /api/auth/logout`, the console's token page, or any password change:
  `PasswordChangeRevokesTokens`).
- `Cache-Control: no-store` on every response except static files: pages and API answers carry patient data, and
  no browser or proxy cache should keep them.

Counters live in the Django cache (Redis when configured, so every process shares them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token

from core.errors import CallerAuthError
from core.net import client_ip

SESSION_LOGIN_AT_KEY = "_auth_login_at"

# --- Lockout -------------------------------------------------------------------------------------------------------


def _key(kind: str, value: str) -> str:
    # Hashed: usernames typed into the login form (sometimes a password by mistake) never become cache key text.
    return f"auth:{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:32]


def _username_key(username: str) -> str:
    return _key("user", username.strip().casefold())


def _ip_of(request: HttpRequest | None) -> str | None:
    if request is None:
        return None

    return client_ip(request)


def _count_failure(key: str, limit: int) -> None:
    # Attempts during a lockout are neither counted nor re-arm it: a lockout ends at the time it was set for, and a
    # user who kept retrying gets a fresh set of tries then.
    if cache.get(f"{key}:locked"):
        return
    window = settings.LOGIN_LOCKOUT_WINDOW_SECONDS
    cache.add(f"{key}:n", 0, timeout=window)
    try:
        failures = cache.incr(f"{key}:n")
    except ValueError:  # the window expired between add and incr
        cache.set(f"{key}:n", 1, timeout=window)
        failures = 1
    if failures >= limit:
        # add, not set: a failure racing this one cannot push the end of the lockout back.
        cache.add(f"{key}:locked", True, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        cache.delete(f"{key}:n")


def login_locked(username: str | None, request: HttpRequest | None) -> bool:
    keys = [f"{_username_key(username)}:locked"] if username else []
    ip = _ip_of(request)
    if ip:
        keys.append(f"{_key('ip', ip)}:locked")
    return bool(keys) and any(cache.get_many(keys).values())


@receiver(user_login_failed, dispatch_uid="organizations_auth_count_failure")
def _record_login_failure(sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any) -> None:
    username = credentials.get("username")
    if username:
        _count_failure(_username_key(username), settings.LOGIN_LOCKOUT_FAILURES)
    ip = _ip_of(request)
    if ip:
        _count_failure(_key("ip", ip), settings.LOGIN_LOCKOUT_IP_FAILURES)


@receiver(user_logged_in, dispatch_uid="organizations_auth_login_started")
def _login_started(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_LOGIN_AT_KEY] = int(time.time())
    if getattr(user, "get_username", None):
        cache.delete(f"{_username_key(user.get_username())}:n")


class LockoutModelBackend(ModelBackend):
    """ModelBackend that refuses every attempt for a locked username or address (the caller sees the ordinary
    invalid-login answer, and the failure still counts)."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if username is None:
            username = kwargs.get(self._username_field())
        if login_locked(username, request):
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


# --- Console sessions ----------------------------------------------------------------------------------------------


def session_outlived(login_at: object, now: int) -> bool:
    """True once a session is SESSION_ABSOLUTE_LIFETIME_SECONDS past its login (sessions without a login time,
    from before this safeguard, are not)."""
    return isinstance(login_at, int) and now - login_at >= settings.SESSION_ABSOLUTE_LIFETIME_SECONDS


def session_user(session_key: str | None, user_id: int | str) -> Any:
    """For long-lived sockets: the user the console session `session_key` still signs in, read afresh, or None when
    that session has ended (logout, idle timeout, absolute lifetime), names another user, was signed before a
    password change, or the user was deactivated or deleted."""
    if not session_key:
        return None
    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model

    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key).load()  # {} once it ended
    if str(data.get(SESSION_KEY)) != str(user_id) or session_outlived(data.get(SESSION_LOGIN_AT_KEY), int(time.time())):
        return None
    user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
    if user is None or not constant_time_compare(str(data.get(HASH_SESSION_KEY, "")), user.get_session_auth_hash()):
        return None
    return user


class SessionLifetimeMiddleware:
    """Ends a console session SESSION_ABSOLUTE_LIFETIME_SECONDS after login, however active it stayed
    (the idle timeout is the session's own expiry, renewed on every request). Sits after AuthenticationMiddleware."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and session.get("_auth_user_id") is not None:
            login_at = session.get(SESSION_LOGIN_AT_KEY)
            now = int(time.time())
            if not isinstance(login_at, int):
                session[SESSION_LOGIN_AT_KEY] = now  # sessions from before this safeguard start their clock now
            elif session_outlived(login_at, now):
                logout(request)  # flushes the session; the console then asks for a new login
        return self.get_response(request)


# --- API tokens ----------------------------------------------------------------------------------------------------


def token_expires_at(token: Token) -> dt.datetime:
    return token.created + dt.timedelta(hours=settings.API_TOKEN_TTL_HOURS)


class ExpiringTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` as before, refused with 401 `token_expired` once API_TOKEN_TTL_HOURS have
    passed since the token was issued. An expired token is deleted (it can never work again)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user, token = super().authenticate_credentials(key)
        if timezone.now() >= token_expires_at(token):
            Token.objects.filter(pk=token.pk).delete()
            raise CallerAuthError("token_expired", "The API token has expired; sign in again for a new one.")
        return user, token


class ExpiringTokenScheme(OpenApiAuthenticationExtension):
    """Documents the expiring token exactly as DRF's token scheme (same header, same name)."""

    target_class = ExpiringTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Token-based authentication with required prefix "Token"; tokens expire after '
            f"{settings.API_TOKEN_TTL_HOURS} h (401 token_expired).",
        }


class PasswordChangeRevokesTokens:
    """AUTH_PASSWORD_VALIDATORS entry that validates nothing: Django calls `password_changed` from `User.save()` after
    every `set_password()`, whatever the path (console forms, `manage.py changepassword`, a shell, a script), so the
    user's API tokens end with the old password on all of them (console sessions end through Django's session
    hash). A password Django re-hashes at login (a newer hasher) does not call it: the password is the same."""

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is not None and user.pk is not None:
            Token.objects.filter(user_id=user.pk).delete()

    def get_help_text(self) -> str:
        return "Setting a new password ends the user's API tokens and their other signed-in sessions."


# Staff-side authentication for API views. Token first: its WWW-Authenticate header keeps unauthenticated answers
# at 401 (DRF turns them into 403 when the first authenticator has no header, as SessionAuthentication has none).
STAFF_AUTHENTICATION = [ExpiringTokenAuthentication, SessionAuthentication]
