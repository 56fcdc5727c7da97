"""Staff authentication safeguards (HIPAA 164.312(a)(2)(iii) automatic logoff, (d) authentication; ASVS 6.3, 7.3):

- login lockout: after LOGIN_LOCKOUT_FAILURES failed logins for one username (or LOGIN_LOCKOUT_IP_FAILURES from
  one address) within LOGIN_LOCKOUT_WINDOW_SECONDS, every attempt is refused for LOGIN_LOCKOUT_SECONDS, even with
  the right password. The answer says sign-in is locked and for how long (`lockout_message`), in the same words for
  known and unknown usernames alike: failures are counted per typed username whether or not it exists, so the
  lockout reveals nothing about which accounts exist. Attempts during a lockout do not extend it.
- login throttle: every sign-in attempt (console form, `POST /api/auth/token`) counts against the address's
  THROTTLE_LOGIN_IP_RATE, right or wrong, so one address cannot make the server hash passwords without limit.
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
import math
import time
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, logout
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import update_last_login
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
        # add, not set: a failure racing this one cannot push the end of the lockout back. The value is when it
        # ends, so the refusal can say how long is left.
        seconds = settings.LOGIN_LOCKOUT_SECONDS
        cache.add(f"{key}:locked", time.time() + seconds, timeout=seconds)
        cache.delete(f"{key}:n")


def _lock_keys(username: str | None, request: HttpRequest | None) -> list[str]:
    keys = [f"{_username_key(username)}:locked"] if username else []
    ip = _ip_of(request)
    if ip:
        keys.append(f"{_key('ip', ip)}:locked")
    return keys


def lockout_remaining(username: str | None, request: HttpRequest | None) -> int:
    """Seconds until `username` and the request's address may sign in again; 0 when neither is locked."""
    keys = _lock_keys(username, request)
    if not keys:
        return 0
    now = time.time()
    remaining = 0.0
    for value in cache.get_many(keys).values():
        # A lock written before the end time was stored (True) lasts at most a whole lockout.
        ends = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        left = settings.LOGIN_LOCKOUT_SECONDS if ends is None else ends - now
        remaining = max(remaining, left)
    return max(0, math.ceil(remaining))


def login_locked(username: str | None, request: HttpRequest | None) -> bool:
    return lockout_remaining(username, request) > 0


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lockout_message(seconds: int) -> str:
    """The refusal during a lockout: the same words whichever username was typed (it names neither the account nor
    whether it exists), so the console and the token endpoint say exactly this."""
    return (
        f"Too many failed sign-in attempts: signing in is locked for {_duration(seconds)}. Wait and try again "
        "then, or ask your clinic's admin to reset your password."
    )


def login_throttle_hit(request: HttpRequest) -> float | None:
    """Count one sign-in attempt against the address's THROTTLE_LOGIN_IP_RATE; the seconds to wait when it is over
    the limit, else None."""
    # Here, not at the top: core.api.throttling imports DRF's views, which import this module (an authenticator).
    from core.api.throttling import hit, parse_rate

    limit, period = parse_rate(settings.THROTTLE_LOGIN_IP_RATE)
    allowed, wait = hit(f"login_ip:{(client_ip(request) or 'unknown')[:100]}", limit, period)
    return None if allowed else wait


def login_throttled_message(wait: float) -> str:
    return f"Too many sign-in attempts from your address; try again in {_duration(max(1, math.ceil(wait)))}."


def login_failures_forget(username: str) -> None:
    """A successful sign-in forgets the username's earlier failures (the console does it on user_logged_in)."""
    cache.delete(f"{_username_key(username)}:n")


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
        login_failures_forget(user.get_username())


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


def api_token_issue(*, user: Any) -> Token:
    """The user's API token (DRF keeps one per user): the current one while it is valid, else a new one. Every
    client of the user shares it until it expires or one of them logs out."""
    token, _ = Token.objects.get_or_create(user=user)
    if timezone.now() >= token_expires_at(token):
        Token.objects.filter(pk=token.pk).delete()  # expired: it can never work again
        token, _ = Token.objects.get_or_create(user=user)
    return token


class SignInRefused(Exception):
    """A sign-in the token endpoint refuses: its status, machine code, message and Retry-After seconds."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


INVALID_CREDENTIALS = "Wrong username or password, or the account cannot use the staff API."


def api_sign_in(*, request: HttpRequest, username: str, password: str) -> tuple[Any, Token]:
    """`POST /api/auth/token`: a staff username and password for the user's expiring API token, under the console
    login's rules: the address's sign-in rate, the lockout (the same message for any username) and the staff flag.
    Raises SignInRefused."""
    wait = login_throttle_hit(request)
    if wait is not None:
        raise SignInRefused(429, "throttled", login_throttled_message(wait), retry_after=wait)
    # Through django.contrib.auth: the lockout backend refuses a locked name, and a failure fires user_login_failed.
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_staff:  # the console asks for a staff account too (AdminAuthenticationForm)
        remaining = lockout_remaining(username, request)
        if remaining:
            raise SignInRefused(429, "login_locked", lockout_message(remaining), retry_after=remaining)
        raise SignInRefused(401, "invalid_credentials", INVALID_CREDENTIALS)
    login_failures_forget(user.get_username())
    update_last_login(type(user), user)
    return user, api_token_issue(user=user)


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
