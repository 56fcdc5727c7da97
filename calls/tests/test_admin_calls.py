"""Call review in the staff console: read-only records, transcript and intake tables, search, tenancy, cost."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from calls.models import Call, Escalation
from calls.services import call_end, escalation_create, transcript_segment_append
from conftest import logged_in, make_call

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:calls_call_changelist"


def change_url(call: Call) -> str:
    return reverse("admin:calls_call_change", args=[call.pk])


@pytest.fixture
def call_a(org_a) -> Call:
    call = make_call(org_a, channel=Call.Channel.PHONE, caller_name="Jane Roe", caller_phone="+14155550123")
    transcript_segment_append(call=call, speaker="agent", text="Riverside clinic, how can I help?")
    transcript_segment_append(call=call, speaker="caller", text="My knee is swollen <script>alert(1)</script>")
    transcript_segment_append(call=call, speaker="agent", text="Is the swollen knee painful to walk on?")
    call_end(
        call=call,
        intake={
            "patient_name": "Jane Roe",
            "reason_for_call": "Swollen knee",
            "urgency": "urgent",
            "is_new_patient": True,
        },
    )
    escalation_create(call=call, level=Escalation.Level.URGENT, source=Escalation.Source.KEYWORD, reason="swelling")
    call.refresh_from_db()
    return call


def test_clinic_admin_reviews_a_call_with_transcript_and_intake(call_a, admin_a):
    response = logged_in(admin_a).get(change_url(call_a))

    assert response.status_code == 200
    html = response.content.decode()
    # The transcript in order, escaped.
    first = html.index("Riverside clinic, how can I help?")
    second = html.index("My knee is swollen &lt;script&gt;alert(1)&lt;/script&gt;")
    third = html.index("Is the swollen knee painful to walk on?")
    assert first < second < third
    assert "<script>alert(1)" not in html
    # The intake as a table, in the clinic's field order, with readable values.
    assert "<th>patient_name</th><td>Jane Roe</td>" in html
    assert "<th>is_new_patient</th><td>Yes</td>" in html
    assert (
        html.index("<th>patient_name</th>")
        < html.index("<th>date_of_birth</th>")
        < html.index("<th>reason_for_call</th>")
    )
    # Escalations inline, linking to the queue, and nothing editable.
    assert "Urgent" in html
    assert reverse("admin:calls_escalation_changelist") + f"?call={call_a.pk}" in html
    assert 'name="status"' not in html
    assert 'name="caller_phone"' not in html


def test_call_changelist_renders_for_clinic_admin_and_staff(call_a, admin_a, staff_a):
    for user in (admin_a, staff_a):
        response = logged_in(user).get(reverse(CHANGELIST))
        assert response.status_code == 200
        assert [call.pk for call in response.context["cl"].result_list] == [call_a.pk]
        assert "Jane Roe" in response.content.decode()


def test_filters_narrow_the_call_list(org_a, admin_a):
    web = make_call(org_a, channel=Call.Channel.WEB)
    phone = make_call(org_a, channel=Call.Channel.PHONE)
    escalation_create(call=phone, level=Escalation.Level.EMERGENCY, source=Escalation.Source.KEYWORD)
    client = logged_in(admin_a)

    def listed(**params) -> set:
        response = client.get(reverse(CHANGELIST), params)
        assert response.status_code == 200
        return {call.pk for call in response.context["cl"].result_list}

    assert listed(channel__exact="web") == {web.pk}
    assert listed(escalated__exact="1") == {phone.pk}
    assert listed(status__exact="in_progress") == {web.pk, phone.pk}
    assert listed(reviewed="no") == {web.pk, phone.pk}
    assert listed(reviewed="yes") == set()


def test_search_by_transcript_text_finds_the_call_once(call_a, admin_a):
    # "swollen" appears in two segments of the same call.
    response = logged_in(admin_a).get(reverse(CHANGELIST), {"q": "swollen"})

    assert [call.pk for call in response.context["cl"].result_list] == [call_a.pk]


def test_search_by_caller_phone_accepts_how_people_type_numbers(call_a, org_a, admin_a):
    make_call(org_a, caller_phone="+14155550999")
    client = logged_in(admin_a)

    for term in ("+14155550123", "(415) 555-0123", "0123"):
        response = client.get(reverse(CHANGELIST), {"q": term})
        assert [call.pk for call in response.context["cl"].result_list] == [call_a.pk], term


def test_staff_cannot_add_or_delete_calls(call_a, staff_a, admin_a):
    for user in (staff_a, admin_a):
        client = logged_in(user)
        assert client.get(reverse("admin:calls_call_add")).status_code == 403
        response = client.post(reverse("admin:calls_call_delete", args=[call_a.pk]), {"post": "yes"})
        assert response.status_code == 403
    assert Call.objects.filter(pk=call_a.pk).exists()


def test_posting_to_a_call_change_page_changes_nothing(call_a, admin_a):
    response = logged_in(admin_a).post(change_url(call_a), {"caller_phone": "+19999999999", "status": "failed"})

    assert response.status_code == 403
    call_a.refresh_from_db()
    assert call_a.caller_phone == "+14155550123"
    assert call_a.status == Call.Status.COMPLETED


def test_mark_reviewed_action_records_who_and_when(call_a, org_a, staff_a):
    other = make_call(org_a)

    response = logged_in(staff_a).post(
        reverse(CHANGELIST), {"action": "mark_reviewed", "_selected_action": [str(call_a.pk)]}
    )

    assert response.status_code == 302
    call_a.refresh_from_db()
    other.refresh_from_db()
    assert call_a.reviewed_by == staff_a
    assert call_a.reviewed_at is not None
    assert other.reviewed_at is None


def test_mark_reviewed_button_on_the_call_page(call_a, staff_a):
    client = logged_in(staff_a)
    url = reverse("admin:calls_call_button", args=[call_a.pk, "mark-reviewed"])
    assert url in client.get(change_url(call_a)).content.decode()

    response = client.post(url)

    assert response.status_code == 302
    call_a.refresh_from_db()
    assert call_a.reviewed_by == staff_a


@pytest.mark.parametrize("persona", ["admin_b", "staff_b"])
def test_other_clinics_call_pages_are_not_found(request, persona, call_a, org_b):
    client = logged_in(request.getfixturevalue(persona))

    for url in (
        change_url(call_a),
        reverse("admin:calls_call_history", args=[call_a.pk]),
        reverse("admin:calls_call_button", args=[call_a.pk, "mark-reviewed"]),
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        html = response.content.decode()
        assert "+14155550123" not in html
        assert "Jane Roe" not in html
        assert "swollen" not in html


@pytest.mark.parametrize("persona", ["admin_b", "staff_b"])
def test_other_clinics_calls_are_absent_from_list_search_and_autocomplete(request, persona, call_a, org_b):
    own = make_call(org_b, caller_phone="+12065550100")
    transcript_segment_append(call=own, speaker="caller", text="My knee is swollen too")
    client = logged_in(request.getfixturevalue(persona))

    listing = client.get(reverse(CHANGELIST))
    search = client.get(reverse(CHANGELIST), {"q": "swollen"})
    suggestions = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "calls", "model_name": "escalation", "field_name": "call", "term": ""},
    )

    assert [call.pk for call in listing.context["cl"].result_list] == [own.pk]
    assert "Jane Roe" not in listing.content.decode()
    assert [call.pk for call in search.context["cl"].result_list] == [own.pk]
    assert suggestions.status_code == 200
    assert [row["id"] for row in suggestions.json()["results"]] == [str(own.pk)]


def test_mark_reviewed_action_cannot_touch_another_clinics_call(call_a, admin_b):
    logged_in(admin_b).post(reverse(CHANGELIST), {"action": "mark_reviewed", "_selected_action": [str(call_a.pk)]})

    call_a.refresh_from_db()
    assert call_a.reviewed_at is None


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    return len(captured.captured_queries)


def _busy_calls(org, count: int) -> None:
    for index in range(count):
        call = make_call(org, channel=Call.Channel.PHONE, minutes_ago=index + 1, caller_phone=f"+1415555{index:04d}")
        if index % 3 == 0:
            escalation_create(call=call, level=Escalation.Level.URGENT, source=Escalation.Source.KEYWORD)
        if index % 2 == 0:
            call_end(call=call, intake={"patient_name": "Pat"})


def test_call_changelist_query_count_does_not_grow_with_calls(org_a, admin_a):
    client = logged_in(admin_a)
    _busy_calls(org_a, 3)
    client.get(reverse(CHANGELIST))  # warm the session and content-type caches
    few = _changelist_queries(client)

    _busy_calls(org_a, 27)
    many = _changelist_queries(client)

    assert Call.objects.filter(organization=org_a).count() == 30
    assert many == few


def test_malformed_ids_in_console_urls_answer_not_found_never_500(admin_a):
    client = logged_in(admin_a)

    assert client.get("/admin/calls/call/not-a-uuid/change/").status_code == 404
    assert client.post("/admin/calls/call/not-a-uuid/do/mark-reviewed/").status_code == 404
    assert client.get("/admin/calls/escalation/not-a-uuid/change/").status_code == 404
    assert client.get(reverse("admin:calls_escalation_changelist"), {"call": "not-a-uuid"}).status_code == 302


def test_web_calls_that_never_connected_drop_out_of_the_default_call_list_once_reaped(call_a, org_a, admin_a):
    import datetime as dt

    from django.utils import timezone

    from calls.reaper import calls_reap
    from calls.services import call_start

    junk = [call_start(organization=org_a, channel=Call.Channel.WEB)[0] for _ in range(3)]  # a flood's leftovers
    client = logged_in(admin_a)
    listed = client.get(reverse(CHANGELIST)).context["cl"].result_list
    assert {call.pk for call in junk} <= {call.pk for call in listed}  # still live: shown

    calls_reap(idle_seconds=60, now=timezone.now() + dt.timedelta(minutes=5))
    listed = {call.pk for call in client.get(reverse(CHANGELIST)).context["cl"].result_list}
    assert call_a.pk in listed and not listed & {call.pk for call in junk}
    everything = {call.pk for call in client.get(reverse(CHANGELIST), {"connected": "all"}).context["cl"].result_list}
    assert {call.pk for call in junk} | {call_a.pk} <= everything
    never = {call.pk for call in client.get(reverse(CHANGELIST), {"connected": "never"}).context["cl"].result_list}
    assert never == {call.pk for call in junk}
