"""What the caller-side realtime endpoints change is recorded for the "web-caller" principal, named by
CallerAPIView, in the async minting view as in the sync event-forwarding one."""

from __future__ import annotations

import pytest
from django.test import Client

from calls.models import AuditEvent

from .test_events_endpoint import forward, start_call
from .test_minting import mint
from .test_pipeline import transcript

pytestmark = pytest.mark.django_db


def changes(organization) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization_id=organization.pk, action__in=["create", "change"]))


def test_minting_a_session_records_the_new_call_for_the_web_caller(fake_openai, org_a):
    response = mint(org_a)
    assert response.status_code == 201
    [created] = changes(org_a)
    assert (created.object_id, created.action) == (response.json()["call_id"], "create")
    assert (created.actor_service, created.via, created.actor_user_id) == ("web-caller", "api", None)


def test_forwarded_events_are_recorded_for_the_web_caller(org_a):
    client = Client()
    call_id, token = start_call(client, org_a)
    assert forward(client, org_a, call_id, token, [transcript("item_1", "Hello there.")]).status_code == 200
    rows = changes(org_a)
    assert {row.object_type for row in rows} == {"call", "transcriptsegment"}
    assert {(row.actor_service, row.via) for row in rows} == {("web-caller", "api")}
