"""On-call paging: an escalation pages the clinic's on-call list by SMS and e-mail until someone acknowledges.

Decision (in the escalation's transaction): `paging_start` reads the clinic's rule for the level
(organizations.models.PagingRule, else DEFAULT_PAGING); a paging level writes the first person's `Page` rows (one
per channel they have) and sets `escalation.paging_next_at` to now + the re-page interval. The notification worker
(`notifications.deliver_due`, so `manage.py deliver_notifications` and whatever runs it) calls `paging_pass`: it
pages the next person covering the moment for every escalation still open whose interval ran out (cycling through
the list again after the last), sends the pages that are due, and sweeps stale claims. Acknowledging or resolving
stops the paging and cancels pages not yet sent.

Delivery is an outbox: a page is claimed (tries + 1, `claimed_at`) in its own committed transaction before it is
sent, so two workers never send one attempt; a provider that was not reached (connection refused, 5xx, 429) is
retried with back-off; a refusal (Twilio 21211 bad number, a refused recipient) fails the attempt for good; an
outcome we cannot know (a timeout after the request went out, a worker that died mid-send) also fails it rather than
risk a second message: the escalation keeps paging at its interval, so no page is lost to it.

What a page says: level, clinic, age and a link to the escalation in the console; the caller's name only when the
clinic allows it (Organization.paging_includes_caller_name); never transcript text. SMS goes through the twilio
SDK (`client.messages.create`) against settings.TWILIO_API_BASE_URL, with a StatusCallback that reports sent /
delivered / failed; e-mail through Django's mail framework (the console backend by default, SMTP by settings).
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import uuid
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from calls.models import Escalation, Page
from organizations.models import OnCallPerson
from organizations.vocabulary import PageChannel, PageStatus, PagingAction

logger = logging.getLogger(__name__)

# Delay before retry n of one page while its provider is unreachable; then the attempt is failed (the escalation
# itself keeps paging at its interval).
PAGE_BACKOFF_SECONDS = (5, 15, 30, 60, 120, 300, 600)
# A claimed page not settled after this long belonged to a worker that died mid-send: failed, never resent.
PAGE_CLAIM_LEASE = dt.timedelta(minutes=2)
TWILIO_TIMEOUT_SECONDS = 10.0
SMS_STATUS_RANK: dict[str, int] = {PageStatus.QUEUED: 0, PageStatus.SENT: 1, PageStatus.DELIVERED: 2}
# Twilio MessageStatus -> ours (accepted/scheduled/queued/sending all mean "not out yet").
TWILIO_MESSAGE_STATUS = {
    "accepted": PageStatus.QUEUED,
    "scheduled": PageStatus.QUEUED,
    "queued": PageStatus.QUEUED,
    "sending": PageStatus.QUEUED,
    "sent": PageStatus.SENT,
    "delivered": PageStatus.DELIVERED,
    "read": PageStatus.DELIVERED,
    "undelivered": PageStatus.FAILED,
    "failed": PageStatus.FAILED,
}
SETTLED = (PageStatus.SENT, PageStatus.DELIVERED, PageStatus.CANCELED)


class PageError(Exception):
    """A page could not be sent. `retry`: the provider was not reached and a later try may work."""

    def __init__(self, code: str, *, retry: bool) -> None:
        super().__init__(code)
        self.code = code
        self.retry = retry


# --- Deciding who is paged (inside the caller's transaction) ----------------------------------------------------------


def _page_next_locked(escalation: Escalation, *, now: dt.datetime, interval: int) -> list[Page]:
    """Write the Page rows for the next person covering `now` and move the escalation's paging on. `escalation` is
    locked by the caller. Nobody on call: nothing is written, and the list is asked again after the interval."""
    organization = escalation.organization
    people = organization.on_call_now(now)
    escalation.paging_next_at = now + dt.timedelta(minutes=interval)
    if not people:
        escalation.save(update_fields=["paging_next_at"])
        logger.warning("paging: nobody on call escalation=%s organization=%s", escalation.pk, organization.pk)
        return []
    person = people[escalation.paging_step % len(people)]
    rows = _page_rows(escalation, person, step=escalation.paging_step, now=now)
    escalation.paging_step += 1
    escalation.save(update_fields=["paging_next_at", "paging_step"])
    return rows


def _sms_sender(escalation: Escalation) -> str:
    number = escalation.organization.twilio_numbers.order_by("number").values_list("number", flat=True).first()
    return number or settings.TWILIO_MESSAGING_FROM


def _page_rows(escalation: Escalation, person: OnCallPerson, *, step: int, now: dt.datetime) -> list[Page]:
    common: dict[str, Any] = {
        "organization_id": escalation.organization_id,
        "escalation": escalation,
        "person": person,
        "person_name": person.name,
        "step": step,
        "next_attempt_at": now,
        "created_at": now,
    }
    rows = []
    if person.mobile:
        rows.append(Page(channel=PageChannel.SMS, to=person.mobile, sender=_sms_sender(escalation), **common))
    if person.email:
        rows.append(Page(channel=PageChannel.EMAIL, to=person.email, **common))
    # ignore_conflicts: a step already written (a redelivered decision) is not written again.
    Page.objects.bulk_create(rows, ignore_conflicts=True)
    return list(Page.objects.filter(escalation=escalation, step=step))


def paging_start(*, escalation: Escalation, now: dt.datetime | None = None) -> list[Page]:
    """In the escalation's transaction: page the first on-call person if the clinic's rule for the level says so.
    Returns the Page rows written (to be sent after commit)."""
    now = now or timezone.now()
    action, interval = escalation.organization.paging_for(escalation.level)
    if action != PagingAction.PAGE:
        return []
    escalation.paging_step = 0
    return _page_next_locked(escalation, now=now, interval=interval)


def paging_stop(*, escalation: Escalation) -> int:
    """In the acknowledging (or resolving) transaction: no more re-pages, and pages not yet out are not sent.
    Returns how many pages were cancelled."""
    if escalation.paging_next_at is not None:
        escalation.paging_next_at = None
        escalation.save(update_fields=["paging_next_at"])
    return Page.objects.filter(
        escalation=escalation, status__in=[PageStatus.QUEUED, PageStatus.FAILED], next_attempt_at__isnull=False
    ).update(status=PageStatus.CANCELED, next_attempt_at=None)


def repage_due(*, now: dt.datetime | None = None, limit: int = 50) -> list[uuid.UUID]:
    """Page the next person for every open escalation whose re-page time has come. Returns the new page ids."""
    now = now or timezone.now()
    due = list(
        Escalation.objects.filter(paging_next_at__lte=now)
        .order_by("paging_next_at")
        .values_list("pk", flat=True)[:limit]
    )
    created: list[uuid.UUID] = []
    for pk in due:
        with transaction.atomic():
            queryset = Escalation.objects.select_related("organization").filter(pk=pk, paging_next_at__lte=now)
            if connection.features.has_select_for_update_skip_locked:
                queryset = queryset.select_for_update(skip_locked=True, of=("self",))
            else:
                queryset = queryset.select_for_update()
            escalation = queryset.first()
            if escalation is None:  # another worker has it, or it was acknowledged meanwhile
                continue
            if escalation.status != Escalation.Status.OPEN:
                escalation.paging_next_at = None
                escalation.save(update_fields=["paging_next_at"])
                continue
            _action, interval = escalation.organization.paging_for(escalation.level)
            created += [row.pk for row in _page_next_locked(escalation, now=now, interval=interval)]
    return created


# --- What a page says ---------------------------------------------------------------------------------------------


def escalation_link(escalation: Escalation) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("admin:calls_escalation_change", args=[escalation.pk])


def _age(escalation: Escalation, now: dt.datetime) -> str:
    minutes = max(0, int((now - escalation.created_at).total_seconds() // 60))
    return "just now" if minutes < 1 else f"{minutes} min ago"


def page_text(escalation: Escalation, *, now: dt.datetime, channel: str) -> tuple[str, str]:
    """(subject, body): level, clinic, age, link; the caller's name only if the clinic allows it."""
    organization = escalation.organization
    level = escalation.get_level_display()
    subject = f"{level} escalation at {organization.name}"
    parts = [f"{subject}, raised {_age(escalation, now)}."]
    if organization.paging_includes_caller_name and escalation.call.caller_name:
        parts.append(f"Caller: {escalation.call.caller_name[:60]}.")
    parts.append(escalation_link(escalation))
    if channel == PageChannel.SMS:
        parts.append("Reply ACK to acknowledge.")
    else:
        parts.append("Acknowledge it in the console (or reply ACK to the SMS page).")
    return subject, "\n".join(parts) if channel == PageChannel.EMAIL else " ".join(parts)


# --- Sending ------------------------------------------------------------------------------------------------------


class _BaseUrlHttpClient(TwilioHttpClient):
    """The SDK builds URLs on https://api.twilio.com; send them to settings.TWILIO_API_BASE_URL instead (the same
    path), so the loopback fake Twilio sees exactly what Twilio would."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        base = settings.TWILIO_API_BASE_URL.rstrip("/")
        rewritten = base + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, rewritten, *args, **kwargs)


def twilio_client() -> Client:
    sid, token = settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN
    if not sid or not token:
        raise PageError("twilio_not_configured", retry=False)
    http_client = _BaseUrlHttpClient(pool_connections=False, timeout=TWILIO_TIMEOUT_SECONDS, max_retries=0)
    return Client(sid, token, account_sid=sid, http_client=http_client)


def sms_status_callback_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("twilio-sms-status")


def _send_sms(page: Page, body: str) -> str:
    """Returns Twilio's MessageSid."""
    if not page.sender:
        raise PageError("no_sms_sender", retry=False)
    client = twilio_client()
    try:
        message = client.messages.create(
            to=page.to, from_=page.sender, body=body, status_callback=sms_status_callback_url()
        )
    except TwilioRestException as exc:
        retry = exc.status >= 500 or exc.status == 429
        raise PageError(f"twilio_{exc.code or exc.status}", retry=retry) from None
    except requests.exceptions.ConnectionError:  # refused, reset, DNS, connect timeout: nothing was created
        raise PageError("twilio_unreachable", retry=True) from None
    except requests.exceptions.Timeout:  # the request went out: Twilio may have sent it, so never again
        raise PageError("twilio_timeout_outcome_unknown", retry=False) from None
    except (requests.exceptions.RequestException, TwilioException) as exc:
        raise PageError(f"twilio_{type(exc).__name__}", retry=True) from None
    return str(message.sid or "")


def _send_email(page: Page, subject: str, body: str) -> None:
    # The Message-ID is the page's, so a receiver (or a relay) can tell a redelivery from a new page.
    message = EmailMessage(
        subject=subject, body=body, to=[page.to], headers={"Message-ID": f"<page-{page.pk}@voiceagent>"}
    )
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused:
        raise PageError("smtp_recipient_refused", retry=False) from None
    except smtplib.SMTPResponseException as exc:
        raise PageError(f"smtp_{exc.smtp_code}", retry=exc.smtp_code < 500) from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, dropped, timed out before the data was accepted
        raise PageError(f"smtp_{type(exc).__name__}", retry=True) from None


# --- Claiming and delivering --------------------------------------------------------------------------------------


def _claim(*, ids: list[uuid.UUID] | None, now: dt.datetime, limit: int) -> list[Page]:
    with transaction.atomic():
        queryset = Page.objects.filter(next_attempt_at__lte=now, status__in=[PageStatus.QUEUED, PageStatus.FAILED])
        if ids is not None:
            queryset = queryset.filter(pk__in=ids)
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True)
        else:  # SQLite: the write transaction serialises claimers
            queryset = queryset.select_for_update()
        claimed = list(queryset.order_by("next_attempt_at")[:limit])
        for page in claimed:
            page.tries += 1
            page.claimed_at, page.next_attempt_at = now, None
            Page.objects.filter(pk=page.pk).update(tries=page.tries, claimed_at=now, next_attempt_at=None)
    return claimed


def _settle(page: Page, **fields: Any) -> None:
    Page.objects.filter(pk=page.pk, claimed_at__isnull=False).update(claimed_at=None, **fields)


def _deliver(page: Page, now: dt.datetime) -> str:
    """Send one claimed page; returns its new status."""
    escalation = Escalation.objects.select_related("organization", "call").get(pk=page.escalation_id)
    if escalation.status != Escalation.Status.OPEN:
        _settle(page, status=PageStatus.CANCELED)
        return PageStatus.CANCELED
    subject, body = page_text(escalation, now=now, channel=page.channel)
    try:
        provider_id = ""
        if page.channel == PageChannel.SMS:
            provider_id = _send_sms(page, body)
        else:
            _send_email(page, subject, body)
    except PageError as exc:
        retry = exc.retry and page.tries <= len(PAGE_BACKOFF_SECONDS)
        next_at = now + dt.timedelta(seconds=PAGE_BACKOFF_SECONDS[page.tries - 1]) if retry else None
        _settle(page, status=PageStatus.FAILED, last_error=exc.code[:200], next_attempt_at=next_at)
        logger.warning(
            "page failed page=%s channel=%s tries=%s error=%s retry=%s",
            page.pk,
            page.channel,
            page.tries,
            exc.code,
            retry,
        )
        return PageStatus.FAILED
    _settle(page, status=PageStatus.SENT, provider_id=provider_id, sent_at=timezone.now(), last_error="")
    logger.info("page sent page=%s channel=%s escalation=%s", page.pk, page.channel, escalation.pk)
    return PageStatus.SENT


def _sweep_stale_claims(now: dt.datetime) -> int:
    """Pages claimed by a worker that died mid-send: their outcome is unknown, so they fail and are not resent."""
    return Page.objects.filter(claimed_at__lt=now - PAGE_CLAIM_LEASE).update(
        claimed_at=None, status=PageStatus.FAILED, last_error="worker_lost_outcome_unknown", next_attempt_at=None
    )


def pages_deliver(
    *, ids: list[uuid.UUID] | None = None, now: dt.datetime | None = None, limit: int = 50
) -> dict[str, int]:
    """Send the due pages (these `ids` only, if given). Counts by outcome."""
    now = now or timezone.now()
    counts: dict[str, int] = {PageStatus.SENT: 0, PageStatus.FAILED: 0, PageStatus.CANCELED: 0}
    for page in _claim(ids=ids, now=now, limit=limit):
        try:
            counts[_deliver(page, now)] += 1
        except Exception:
            logger.exception("page delivery crashed page=%s", page.pk)
            _settle(page, status=PageStatus.FAILED, last_error="crashed", next_attempt_at=None)
            counts[PageStatus.FAILED] += 1
    return counts


def paging_pass(*, now: dt.datetime | None = None, limit: int = 50) -> dict[str, int]:
    """One worker pass: stale claims, re-pages that are due, then every due page."""
    now = now or timezone.now()
    _sweep_stale_claims(now)
    repage_due(now=now, limit=limit)
    return pages_deliver(now=now, limit=limit)


# --- Twilio's reports ---------------------------------------------------------------------------------------------


def page_status_update(*, message_sid: str, message_status: str, error_code: str = "") -> Page | None:
    """A Message status callback: queued → sent → delivered, or failed/undelivered (with Twilio's error code).
    Monotonic: a late or replayed callback never moves a page back."""
    status = TWILIO_MESSAGE_STATUS.get(message_status)
    if not message_sid or status is None:
        return None
    with transaction.atomic():
        page = Page.objects.select_for_update().filter(provider_id=message_sid, channel=PageChannel.SMS).first()
        if page is None:
            return None
        if page.status in (PageStatus.DELIVERED, PageStatus.FAILED, PageStatus.CANCELED):
            return page
        now = timezone.now()
        if status == PageStatus.FAILED:
            page.status, page.last_error = PageStatus.FAILED, f"twilio_{error_code or message_status}"[:200]
            page.next_attempt_at = None
        elif SMS_STATUS_RANK.get(status, 0) > SMS_STATUS_RANK.get(page.status, 0):
            page.status = status
            if status == PageStatus.DELIVERED:
                page.delivered_at = now
        else:
            return page
        page.save(update_fields=["status", "last_error", "next_attempt_at", "delivered_at"])
    return page


def pages_paged_to(*, from_number: str, to_number: str) -> list[Page]:
    """The SMS pages of open escalations sent to `from_number` from our number `to_number` (an `ACK` reply)."""
    return list(
        Page.objects.filter(
            Q(channel=PageChannel.SMS, to=from_number, sender=to_number),
            escalation__status=Escalation.Status.OPEN,
        )
        .exclude(status=PageStatus.CANCELED)
        .select_related("person", "escalation")
        .order_by("-created_at")
    )


def escalation_pages(escalation: Escalation) -> list[Page]:
    return list(escalation.pages.order_by("step", "channel"))
