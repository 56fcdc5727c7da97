"""Retention: `manage.py purge_expired` deletes what is past each clinic's retention days, keeps everything else and
every audit row, reports counts per clinic, and a second run finds nothing more."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from calls.models import AuditEvent, Call, CallSummary, Escalation, Intake, Notification, TranscriptSegment
from calls.retention import purge_expired
from calls.services import call_end, escalation_create, intake_store, transcript_segment_append
from conftest import logged_in, make_call
from organizations.forms import OrganizationForm
from organizations.models import MAX_RETENTION_DAYS


def ended_call(org, *, days_ago: float, text: str = "hello", name: str = "Pat Doe", escalate: bool = False) -> Call:
    call = make_call(org, minutes_ago=int(days_ago * 24 * 60), caller_name=name)
    transcript_segment_append(call=call, speaker="caller", text=text)
    transcript_segment_append(call=call, speaker="agent", text="noted")
    intake_store(call=call, data={"patient_name": name})
    if escalate:
        escalation_create(call=call, level="urgent", source="keyword", reason="bleeding", evidence=text)
    return call_end(call=call, ended_at=call.started_at + dt.timedelta(minutes=3))


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_expired", *args, stdout=out)
    return out.getvalue()


def test_whole_calls_past_call_retention_go_with_everything_they_hold(org_a):
    org_a.call_retention_days = 30
    org_a.save()
    old = ended_call(org_a, days_ago=31, escalate=True)
    recent = ended_call(org_a, days_ago=29, escalate=True)

    report = purge_expired()

    assert report.by_clinic["clinic-a"].calls == 1
    assert not Call.objects.filter(pk=old.pk).exists()
    assert not TranscriptSegment.objects.filter(call_id=old.pk).exists()
    assert not Intake.objects.filter(call_id=old.pk).exists()
    assert not Escalation.objects.filter(call_id=old.pk).exists()
    assert not Notification.objects.filter(escalation__call_id=old.pk).exists()
    assert Call.objects.filter(pk=recent.pk).exists()
    assert TranscriptSegment.objects.filter(call=recent).count() == 2


def test_intakes_and_transcripts_go_on_their_own_clocks_and_the_call_record_stays(org_a):
    org_a.intake_retention_days = 7
    org_a.transcript_retention_days = 14
    org_a.save()
    both = ended_call(org_a, days_ago=15, text="my chest hurts", name="ZZQX-Canary", escalate=True)
    intake_only = ended_call(org_a, days_ago=8)
    kept = ended_call(org_a, days_ago=6)

    counts = purge_expired().by_clinic["clinic-a"]

    assert (counts.intakes, counts.transcript_segments, counts.evidence_cleared, counts.calls) == (2, 2, 1, 0)
    both.refresh_from_db()
    assert both.caller_name == "" and not TranscriptSegment.objects.filter(call=both).exists()
    assert Escalation.objects.get(call=both).evidence == ""  # it quoted the caller
    assert not Intake.objects.filter(call=intake_only).exists()
    assert TranscriptSegment.objects.filter(call=intake_only).count() == 2
    assert Intake.objects.filter(call=kept).exists() and TranscriptSegment.objects.filter(call=kept).count() == 2
    assert Call.objects.count() == 3
    # The post-call summary retells the transcript: it goes with it.
    assert counts.summaries == 1
    assert not CallSummary.objects.filter(call=both).exists()
    assert CallSummary.objects.filter(call=intake_only).exists() and CallSummary.objects.filter(call=kept).exists()


def test_a_clinic_without_retention_keeps_everything_and_live_calls_are_never_touched(org_a, org_b):
    org_a.call_retention_days = 1
    org_a.save()
    ended_call(org_b, days_ago=400)
    live = make_call(org_a, minutes_ago=3 * 24 * 60)

    report = purge_expired()

    assert "clinic-b" not in report.by_clinic
    assert Call.objects.filter(organization=org_b).count() == 1
    assert Call.objects.filter(pk=live.pk).exists()


def test_audit_rows_stay_and_the_purge_itself_is_audited(org_a, staff_a):
    org_a.call_retention_days = 10
    org_a.save()
    old = ended_call(org_a, days_ago=11)
    assert logged_in(staff_a).get(f"/admin/calls/call/{old.pk}/change/").status_code == 200
    before = set(AuditEvent.objects.values_list("pk", flat=True))

    purge_expired()

    after = set(AuditEvent.objects.values_list("pk", flat=True))
    assert before < after  # nothing removed, the purge added its own row
    [purge] = AuditEvent.objects.filter(actor_service="retention")
    assert (purge.action, purge.object_type, purge.object_ids) == ("delete", "call", [str(old.pk)])
    assert purge.organization_id == org_a.pk and purge.details["retention_days"] == 10


def test_a_second_run_reports_zeros(org_a):
    org_a.call_retention_days = 5
    org_a.intake_retention_days = 2
    org_a.transcript_retention_days = 3
    org_a.save()
    for days in (1, 2.5, 4, 6):
        ended_call(org_a, days_ago=days, escalate=True)

    first = purge_expired().totals()
    second = purge_expired().totals()

    assert first["calls"] == 1 and first["intakes"] == 2 and first["transcript_segments"] == 2
    assert second == {"calls": 0, "intakes": 0, "transcript_segments": 0, "evidence_cleared": 0, "summaries": 0}


def test_deletes_run_in_batches_each_with_its_audit_row(org_a):
    org_a.call_retention_days = 1
    org_a.save()
    old = [ended_call(org_a, days_ago=2 + n) for n in range(5)]

    assert purge_expired(batch_size=2).by_clinic["clinic-a"].calls == 5

    batches = AuditEvent.objects.filter(actor_service="retention").order_by("id")
    assert [len(row.object_ids) for row in batches] == [2, 2, 1]
    assert sorted(id_ for row in batches for id_ in row.object_ids) == sorted(str(call.pk) for call in old)


def test_dry_run_counts_and_deletes_nothing(org_a):
    org_a.call_retention_days = 1
    org_a.transcript_retention_days = 1
    org_a.save()
    ended_call(org_a, days_ago=2)

    output = run("--dry-run")

    assert "clinic-a: would delete 1 call(s)" in output
    assert Call.objects.count() == 1 and TranscriptSegment.objects.count() == 2
    assert not AuditEvent.objects.filter(actor_service="retention").exists()


def test_the_command_reports_counts_per_clinic_as_text_and_json(org_a, org_b):
    for org in (org_a, org_b):
        org.transcript_retention_days = 1
        org.save()
    ended_call(org_a, days_ago=2)

    body = json.loads(run("--json"))
    again = run()

    assert body["clinics"]["clinic-a"]["transcript_segments"] == 2
    assert body["clinics"]["clinic-b"]["transcript_segments"] == 0
    assert body["totals"]["transcript_segments"] == 2 and body["dry_run"] is False
    assert "clinic-a: deleted 0 call(s), 0 intake(s), 0 transcript segment(s)" in again


@pytest.mark.parametrize("value", [0, -1, MAX_RETENTION_DAYS + 1])
def test_retention_days_out_of_range_are_refused_by_the_form_and_the_database(org_a, value):
    data = {field: getattr(org_a, field) for field in OrganizationForm.Meta.fields}
    data.update(
        services="",
        allowed_origins="\n".join(org_a.allowed_origins),
        call_retention_days=value,
        transcript_retention_days="",
        intake_retention_days="",
    )
    form = OrganizationForm(data=data, instance=org_a)
    assert not form.is_valid() and "call_retention_days" in form.errors

    org_a.call_retention_days = value
    with pytest.raises(ValidationError):
        org_a.full_clean()
    if value >= 0:  # a negative number does not fit the column at all
        with pytest.raises(IntegrityError), transaction.atomic():
            type(org_a).objects.filter(pk=org_a.pk).update(call_retention_days=value)


def test_clinic_admins_set_retention_in_the_console(org_a, admin_a):
    page = logged_in(admin_a).get(f"/admin/organizations/organization/{org_a.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="call_retention_days"' in html and 'name="transcript_retention_days"' in html


def test_empty_retention_means_keep_forever(org_a):
    ended_call(org_a, days_ago=3650)
    assert purge_expired().by_clinic == {}
    assert Call.objects.count() == 1
