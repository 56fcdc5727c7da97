"""The post-call summary where staff read calls: the staff API (list and detail, in the schema) and the console
(one line in the call list, the whole summary on the call page), beside the transcript, for their clinics only."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.models import Call, CallSummary
from calls.services import call_end, transcript_segment_append
from conftest import logged_in, make_call, token_for

SUMMARY = "Robert booked a knee check-up for Tuesday morning and asked to be called back to confirm."


def api(user) -> Client:
    return Client(headers={"Authorization": f"Token {token_for(user)}"})


def summarized_call(org, *, text: str = SUMMARY, follow_up: bool = True, minutes_ago: int = 10) -> Call:
    call = make_call(org, minutes_ago=minutes_ago, caller_phone="+14155550123")
    transcript_segment_append(call=call, speaker="caller", text="I need to book a check-up for my knee.")
    call = call_end(call=call, ended_at=call.started_at + dt.timedelta(minutes=2))
    CallSummary.objects.filter(call=call).update(
        status="done",
        summary=text,
        reason_for_call="Knee check-up",
        follow_up_needed=follow_up,
        model="gpt-5.4-mini",
        attempts=1,
        completed_at=timezone.now(),
    )
    return call


class TestStaffApi:
    def test_the_list_says_what_each_call_was_about(self, org_a, staff_a):
        done = summarized_call(org_a)
        live = make_call(org_a, minutes_ago=1)
        pending = call_end(call=make_call(org_a, minutes_ago=3))
        rows = {row["id"]: row for row in api(staff_a).get("/api/calls").json()["results"]}
        assert rows[str(done.pk)]["summary"] == {
            "status": "done",
            "summary": SUMMARY,
            "reason_for_call": "Knee check-up",
            "follow_up_needed": True,
            "model": "gpt-5.4-mini",
            "attempts": 1,
            "completed_at": rows[str(done.pk)]["summary"]["completed_at"],
        }
        assert rows[str(live.pk)]["summary"] is None
        assert rows[str(pending.pk)]["summary"]["status"] == "pending"
        assert rows[str(pending.pk)]["summary"]["follow_up_needed"] is None

    def test_the_detail_has_the_summary_and_still_the_whole_transcript(self, org_a, staff_a):
        call = summarized_call(org_a)
        body = api(staff_a).get(f"/api/calls/{call.pk}").json()
        assert body["summary"]["summary"] == SUMMARY
        assert [line["text"] for line in body["transcript"]] == ["I need to book a check-up for my knee."]

    def test_another_clinics_call_and_its_summary_answer_404(self, org_a, org_b, staff_b):
        call = summarized_call(org_a)
        assert api(staff_b).get(f"/api/calls/{call.pk}").status_code == 404
        assert api(staff_b).get("/api/calls").json()["results"] == []

    def test_summaries_add_no_query_per_listed_call(self, org_a, staff_a):
        for n in range(12):
            summarized_call(org_a, minutes_ago=n + 5)
        client = api(staff_a)
        counts = []
        for size in (2, 12):
            with CaptureQueriesContext(connection) as queries:
                assert len(client.get("/api/calls", {"page_size": size}).json()["results"]) == size
            counts.append(len(queries))
        assert counts[0] == counts[1]

    def test_the_schema_documents_the_summary_in_list_and_detail(self, db):
        schema = Client().get("/api/schema/", headers={"Accept": "application/json"}).json()
        components = schema["components"]["schemas"]
        assert set(components["PostCallSummary"]["properties"]) >= {"status", "summary", "reason_for_call"}
        for name in ("StaffCallList", "StaffCallDetail"):
            assert "summary" in components[name]["properties"], name


class TestConsole:
    def test_the_call_list_shows_one_line_of_summary_with_a_follow_up_mark(self, org_a, staff_a):
        long = "A very long summary " * 10
        summarized_call(org_a, text=long)
        page = logged_in(staff_a).get("/admin/calls/call/").content.decode()
        assert "A very long summary A very long summary" in page
        assert long.strip() not in page.split('title="')[0]  # cut in the cell; whole in the tooltip only
        assert "call-summary-follow-up" in page

    def test_the_call_page_shows_summary_reason_and_follow_up_above_the_transcript(self, org_a, staff_a):
        call = summarized_call(org_a)
        page = logged_in(staff_a).get(f"/admin/calls/call/{call.pk}/change/").content.decode()
        assert SUMMARY in page and "Knee check-up" in page
        assert page.index(SUMMARY) < page.index("I need to book a check-up for my knee.")
        assert "Written by gpt-5.4-mini" in page

    def test_a_pending_or_failed_summary_says_so(self, org_a, staff_a):
        call = call_end(call=make_call(org_a))
        client = logged_in(staff_a)
        assert "Being written after the call" in client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()
        CallSummary.objects.filter(call=call).update(status="failed", attempts=5, last_error="http_500")
        page = client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()
        assert "Could not be written (http_500, 5 attempts)" in page
        assert "No summary (failed)" in client.get("/admin/calls/call/").content.decode()
