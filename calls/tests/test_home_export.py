"""CSV export of a clinic's calls and escalations: content, audit, bounds, tenancy, no formula injection."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo

import pytest

from calls.home import export as export_module
from calls.models import AuditEvent, Call, Escalation
from conftest import logged_in

NY = zoneinfo.ZoneInfo("America/New_York")


def seed_call(org, started_at, **fields) -> Call:
    return Call.objects.create(
        organization=org, channel="phone", status="completed", started_at=started_at,
        ended_at=started_at + dt.timedelta(minutes=2), **fields,
    )  # fmt: skip


def rows_of(response) -> list[list[str]]:
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def calls(org_a, org_b):
    first = seed_call(
        org_a,
        dt.datetime(2026, 6, 1, 9, 15, tzinfo=NY),
        caller_name='=HYPERLINK("https://evil.example")',
        caller_phone="+14155550123",
        end_reason="transferred",
        realtime_model="gpt-realtime-2.1",
        input_audio_tokens=1_000_000,
    )
    seed_call(org_a, dt.datetime(2026, 6, 2, 23, 50, tzinfo=NY), caller_name="@SUM(A1)", metadata={"voicemail": {}})
    seed_call(org_a, dt.datetime(2026, 6, 3, 0, 10, tzinfo=NY), caller_name="-2+3")  # the next clinic day
    seed_call(org_b, dt.datetime(2026, 6, 1, 10, 0, tzinfo=NY), caller_name="Other clinic's caller")
    escalation = Escalation.objects.create(call=first, organization=org_a, level="urgent", source="keyword")
    created = dt.datetime(2026, 6, 1, 9, 16, tzinfo=NY)
    Escalation.objects.filter(pk=escalation.pk).update(
        created_at=created, status="acknowledged", acknowledged_at=created + dt.timedelta(seconds=95)
    )
    return first, escalation


def url(org, **params) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"/admin/home/{org.pk}/export/?{query}"


def test_a_clinic_admin_exports_the_days_calls_as_csv_in_the_clinics_time(calls, admin_a, org_a):
    response = logged_in(admin_a).get(url(org_a, kind="calls", since="2026-06-01", until="2026-06-02"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="calls-2026-06-01-to-2026-06-02.csv"' in response["Content-Disposition"]
    header, *rows = rows_of(response)
    assert header[:3] == ["call_id", "started_at", "ended_at"]
    assert [row[0] for row in rows] == [str(calls[0].pk), rows[1][0]]  # oldest first; the 3 June call left out
    first = dict(zip(header, rows[0], strict=True))
    assert first["started_at"] == "2026-06-01T09:15:00-04:00"
    assert (first["transferred"], first["voicemail"], first["estimated_cost_usd"]) == ("yes", "no", "32.000000")
    assert dict(zip(header, rows[1], strict=True))["voicemail"] == "yes"
    assert "Other clinic's caller" not in str(rows)


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_defused(calls, admin_a, org_a):
    response = logged_in(admin_a).get(url(org_a, kind="calls", since="2026-06-01", until="2026-06-03"))
    header, *rows = rows_of(response)
    names = [dict(zip(header, row, strict=True))["caller_name"] for row in rows]
    assert names == ['\'=HYPERLINK("https://evil.example")', "'@SUM(A1)", "'-2+3"]
    assert dict(zip(header, rows[0], strict=True))["caller_phone"] == "'+14155550123"
    assert export_module.safe_cell(-3) == -3 and export_module.safe_cell("\tx") == "'\tx"


def test_the_escalation_export_has_the_time_to_acknowledge(calls, admin_a, org_a):
    response = logged_in(admin_a).get(url(org_a, kind="escalations", since="2026-06-01", until="2026-06-01"))
    header, row = rows_of(response)
    record = dict(zip(header, row, strict=True))
    assert record["escalation_id"] == str(calls[1].pk)
    assert (record["level"], record["status"], record["seconds_to_acknowledge"]) == ("urgent", "acknowledged", "95")
    assert record["created_at"] == "2026-06-01T09:16:00-04:00"


def test_an_export_is_one_audit_event_naming_the_range_and_the_row_count(calls, admin_a, org_a):
    logged_in(admin_a).get(url(org_a, kind="calls", since="2026-06-01", until="2026-06-03"))
    event = AuditEvent.objects.get(action="export")
    assert (event.actor_username, event.organization_id, event.object_type, event.via) == (
        "alice",
        org_a.pk,
        "call",
        "console",
    )
    assert event.details == {"kind": "calls", "since": "2026-06-01", "until": "2026-06-03", "rows": 3}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"kind": "calls", "since": "2026-01-01", "until": "2026-06-30"}, "range_too_long"),
        ({"kind": "calls", "since": "2026-06-05", "until": "2026-06-01"}, "invalid_range"),
        ({"kind": "calls", "since": "yesterday", "until": "2026-06-01"}, "invalid_date"),
        ({"kind": "patients", "since": "2026-06-01", "until": "2026-06-01"}, "invalid_kind"),
    ],
)
def test_bad_ranges_are_refused_with_a_clear_400_and_nothing_is_audited(calls, admin_a, org_a, params, code):
    response = logged_in(admin_a).get(url(org_a, **params))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code and response.json()["error"]["message"]
    assert not AuditEvent.objects.filter(action="export").exists()


def test_too_many_rows_is_refused_before_anything_is_sent(calls, admin_a, org_a, monkeypatch):
    monkeypatch.setattr(export_module, "MAX_EXPORT_ROWS", 2)
    response = logged_in(admin_a).get(url(org_a, kind="calls", since="2026-06-01", until="2026-06-03"))
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_many_rows"
    assert not AuditEvent.objects.filter(action="export").exists()


def test_staff_cannot_export_and_another_clinic_cannot_see_the_export(calls, staff_a, admin_b, org_a):
    params = {"kind": "calls", "since": "2026-06-01", "until": "2026-06-01"}
    refused = logged_in(staff_a).get(url(org_a, **params))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_only"
    assert logged_in(admin_b).get(url(org_a, **params)).status_code == 404
    assert not AuditEvent.objects.filter(action="export").exists()


def test_operators_export_any_clinic(calls, operator, org_b):
    response = logged_in(operator).get(url(org_b, kind="calls", since="2026-06-01", until="2026-06-01"))
    assert response.status_code == 200
    _header, row = rows_of(response)
    assert "Other clinic's caller" in row
