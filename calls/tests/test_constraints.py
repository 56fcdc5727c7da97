"""The database refuses rows that break the model's invariants, whatever path (API, console, shell) writes them."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls.models import Call, Escalation, Intake, TranscriptSegment
from conftest import make_call


def rejects(**update):
    def check(obj):
        for field, value in update.items():
            setattr(obj, field, value)
        with pytest.raises(IntegrityError), transaction.atomic():
            obj.save()

    return check


@pytest.mark.django_db
class TestCallConstraints:
    def test_a_completed_call_needs_an_end_time(self, org_a):
        rejects(status=Call.Status.COMPLETED, ended_at=None)(make_call(org_a))

    def test_a_live_call_has_no_end_time(self, org_a):
        rejects(ended_at=timezone.now())(make_call(org_a))

    def test_a_call_cannot_end_before_it_started(self, org_a):
        call = make_call(org_a)
        rejects(status=Call.Status.COMPLETED, ended_at=call.started_at - dt.timedelta(seconds=1))(call)

    def test_unknown_channel_and_status_are_rejected(self, org_a):
        rejects(channel="fax")(make_call(org_a))
        rejects(status="ringing")(make_call(org_a))

    def test_escalated_flag_and_level_go_together(self, org_a):
        rejects(escalated=True, escalation_level="")(make_call(org_a))
        rejects(escalated=False, escalation_level="emergency")(make_call(org_a))

    def test_twilio_call_sid_and_openai_call_id_are_unique_when_set(self, org_a, org_b):
        make_call(org_a, twilio_call_sid="CA" + "1" * 32)
        with pytest.raises(IntegrityError), transaction.atomic():
            make_call(org_b, twilio_call_sid="CA" + "1" * 32)
        first, second = make_call(org_a), make_call(org_a)
        first.openai_call_id = "rtc_abc"
        first.save()
        rejects(openai_call_id="rtc_abc")(second)

    def test_many_calls_may_have_no_external_ids(self, org_a):
        make_call(org_a)
        make_call(org_a)
        assert Call.objects.filter(twilio_call_sid__isnull=True, openai_call_id__isnull=True).count() == 2


@pytest.mark.django_db
class TestTranscriptConstraints:
    def segment(self, call, seq, item_id="", speaker="caller"):
        return TranscriptSegment(
            call=call, seq=seq, speaker=speaker, text="hello", occurred_at=timezone.now(), item_id=item_id
        )

    def test_sequence_numbers_are_unique_per_call(self, org_a):
        call = make_call(org_a)
        self.segment(call, 1).save()
        with pytest.raises(IntegrityError), transaction.atomic():
            self.segment(call, 1).save()
        self.segment(make_call(org_a), 1).save()  # another call may reuse seq 1

    def test_an_upstream_item_is_stored_once_per_call(self, org_a):
        call = make_call(org_a)
        self.segment(call, 1, item_id="item_1").save()
        with pytest.raises(IntegrityError), transaction.atomic():
            self.segment(call, 2, item_id="item_1").save()

    def test_segments_without_item_id_are_not_deduplicated(self, org_a):
        call = make_call(org_a)
        self.segment(call, 1).save()
        self.segment(call, 2).save()
        assert call.segments.count() == 2

    def test_unknown_speaker_is_rejected(self, org_a):
        with pytest.raises(IntegrityError), transaction.atomic():
            self.segment(make_call(org_a), 1, speaker="robot").save()


@pytest.mark.django_db
class TestIntakeAndEscalationConstraints:
    def test_one_intake_per_call(self, org_a):
        call = make_call(org_a)
        Intake.objects.create(call=call, data={})
        with pytest.raises(IntegrityError), transaction.atomic():
            Intake.objects.create(call=call, data={})

    def test_intake_urgency_must_be_known(self, org_a):
        with pytest.raises(IntegrityError), transaction.atomic():
            Intake.objects.create(call=make_call(org_a), data={}, urgency="whenever")

    def test_acknowledged_escalation_needs_a_time(self, org_a):
        call = make_call(org_a)
        with pytest.raises(IntegrityError), transaction.atomic():
            Escalation.objects.create(
                call=call, organization=org_a, level="urgent", source="staff", status="acknowledged"
            )

    def test_unknown_level_and_source_are_rejected(self, org_a):
        call = make_call(org_a)
        for bad in ({"level": "meh", "source": "staff"}, {"level": "urgent", "source": "psychic"}):
            with pytest.raises(IntegrityError), transaction.atomic():
                Escalation.objects.create(call=call, organization=org_a, **bad)
