"""SSRF through the one URL a clinic can configure (OWASP API7:2023 Server Side Request Forgery,
https://owasp.org/API-Security/editions/2023/en/0xa7-server-side-request-forgery/): the escalation webhook, entered
through PATCH/POST /api/org/config/{id} and the console's clinic form.

Every hostile target (loopback, private, link-local and cloud-metadata addresses, IPv6 and IPv4-mapped IPv6,
decimal/hex/octal/short IPv4 spellings, other schemes) is either refused at entry with a field error, or stored and
then refused by the delivery guard before any connection; a canary TCP listener on loopback counts 0 connections
either way. The delivery guard itself (DNS answers with an internal address, redirects not followed, only global
unicast counts as public) is unit-tested in calls/tests/test_notifications_webhook.py; this covers the entry paths.
"""

from __future__ import annotations

import time

import pytest
from django.test import Client

from calls import notifications
from calls.models import Notification
from calls.services import escalation_create
from conftest import make_call
from voiceagent.tests.security.conftest import token_header


def hostile_urls(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/hook",
        f"https://127.0.0.1:{port}/hook",
        f"https://localhost:{port}/hook",
        f"https://LOCALHOST.:{port}/hook",
        f"https://[::1]:{port}/hook",
        f"https://[::ffff:127.0.0.1]:{port}/hook",
        f"https://[0:0:0:0:0:0:0:1]:{port}/hook",
        f"https://2130706433:{port}/hook",  # 127.0.0.1 as one decimal number
        f"https://0x7f000001:{port}/hook",
        f"https://0x7f.1:{port}/hook",
        f"https://0177.0.0.1:{port}/hook",  # octal
        f"https://127.1:{port}/hook",
        f"https://0.0.0.0:{port}/hook",
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://100.100.100.200/latest/meta-data/",  # Alibaba metadata (shared address space)
        "https://10.0.0.1/hook",
        "https://192.168.0.1/hook",
        "https://172.31.255.255/hook",
        "https://[fe80::1]/hook",
        f"https://user:pw@127.0.0.1:{port}/hook",
        f"https://example.com@127.0.0.1:{port}/hook",
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{port}/_PING",
        f"ftp://127.0.0.1:{port}/",
        f"dict://127.0.0.1:{port}/info",
        "javascript:alert(1)",
    ]


def _deliver_and_check(org, outcomes: dict[str, str], url: str) -> None:
    """The URL was stored: raise an escalation and run delivery; the guard must refuse it for good."""
    escalation, _ = escalation_create(call=make_call(org), level="emergency", source="keyword", reason="chest_pain")
    row = escalation.notifications.get(channel=Notification.Channel.WEBHOOK)
    notifications.deliver_ids([row.pk])
    row.refresh_from_db()
    assert row.status != Notification.Status.DELIVERED, url
    assert row.status == Notification.Status.FAILED and row.last_error.startswith("refused:"), (
        url,
        row.status,
        row.last_error,
    )
    outcomes[url] = f"stored, delivery {row.last_error}"


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_hostile_webhook_urls_through_the_api_never_reach_the_network(world, canary, method):
    a, _b = world
    outcomes: dict[str, str] = {}
    client = Client()
    for url in hostile_urls(canary.port):
        response = client.generic(
            method,
            f"/api/org/config/{a.org.pk}",
            f'{{"webhook_url": "{url}"}}',
            content_type="application/json",
            headers=token_header(a.admin),
        )
        assert response.status_code in (200, 400), (url, response.status_code, response.content)
        if response.status_code == 400:
            assert "webhook_url" in response.json()["error"]["fields"], url
            outcomes[url] = "refused at entry"
        else:
            a.org.refresh_from_db()
            assert a.org.webhook_url == url
            _deliver_and_check(a.org, outcomes, url)
    time.sleep(0.2)  # let the canary see anything that did get through
    assert canary.connections == 0, outcomes
    assert len(outcomes) == len(hostile_urls(canary.port))
    at_entry = sum(outcome == "refused at entry" for outcome in outcomes.values())
    print(
        f"\n{method} webhook_url: {at_entry} refused at entry, {len(outcomes) - at_entry} refused at delivery, "
        f"{canary.connections} canary connections"
    )
    # Anything that is not https never gets stored.
    assert all(outcome == "refused at entry" for url, outcome in outcomes.items() if not url.startswith("https://"))


def _change_form_data(response) -> dict:
    """The POST a browser would send back unchanged: the main form plus every inline's management form and rows."""
    data: dict = {}

    def bound_values(form) -> None:
        for bound in form:
            value = bound.value()
            if isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            elif value is not None:
                data[bound.html_name] = value

    bound_values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        initial = formset.initial_form_count()
        bound_values(formset.management_form)
        data[f"{formset.prefix}-TOTAL_FORMS"] = initial
        for form in formset.forms[:initial]:
            bound_values(form)
    return data


def test_hostile_webhook_urls_through_the_console_form_never_reach_the_network(world, canary):
    a, _b = world
    client = Client()
    client.force_login(a.admin)
    url_of_page = f"/admin/organizations/organization/{a.org.pk}/change/"
    data = _change_form_data(client.get(url_of_page))
    outcomes: dict[str, str] = {}
    for url in hostile_urls(canary.port):
        response = client.post(url_of_page, {**data, "webhook_url": url})
        if response.status_code == 200:  # the form came back with errors
            assert "webhook_url" in response.context["adminform"].form.errors, url
            outcomes[url] = "refused at entry"
        else:
            assert response.status_code == 302, (url, response.status_code)
            a.org.refresh_from_db()
            assert a.org.webhook_url == url
            _deliver_and_check(a.org, outcomes, url)
    time.sleep(0.2)
    assert canary.connections == 0, outcomes
    assert all(outcome == "refused at entry" for url, outcome in outcomes.items() if not url.startswith("https://"))


def test_a_legitimate_https_webhook_url_is_accepted_at_entry(world):
    """The guard is not a blanket refusal: a public https URL is stored as given."""
    a, _b = world
    response = Client().patch(
        f"/api/org/config/{a.org.pk}",
        {"webhook_url": "https://hooks.clinic-a.example/esc"},
        content_type="application/json",
        headers=token_header(a.admin),
    )
    assert response.status_code == 200
    assert response.json()["webhook_url"] == "https://hooks.clinic-a.example/esc"
