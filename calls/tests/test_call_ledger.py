"""The call ledger: token details and transcription usage summed on the call, the estimated cost from the price
table, turn-latency percentiles, on the staff API and in the console (per call and per clinic day)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls import ledger
from calls.models import Call
from calls.services import call_end, call_start, call_transcription_usage_add, call_usage_add
from conftest import logged_in, make_call, token_for

pytestmark = pytest.mark.django_db

REPORT = "admin:calls_call_usage_by_day"


def completed_usage() -> dict:
    return {
        "input_tokens": 1100,
        "output_tokens": 250,
        "total_tokens": 1350,
        "input_token_details": {"text_tokens": 1000, "audio_tokens": 100, "cached_tokens": 0, "image_tokens": 0},
        "output_token_details": {"text_tokens": 50, "audio_tokens": 200},
    }


def cancelled_usage() -> dict:
    return {
        "input_tokens": 1500,
        "output_tokens": 50,
        "total_tokens": 1550,
        "input_token_details": {
            "text_tokens": 1200,
            "audio_tokens": 300,
            "cached_tokens": 1000,
            "cached_tokens_details": {"text_tokens": 900, "audio_tokens": 100, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 10, "audio_tokens": 40},
    }


@pytest.fixture(autouse=True)
def _models(settings):
    settings.REALTIME_MODEL = "gpt-realtime-2.1"
    settings.REALTIME_TRANSCRIPTION_MODEL = "gpt-realtime-whisper"


def billed_call(org, *, minutes_ago: int = 1, latencies=(400, 900, 650, 1200, 700)) -> Call:
    """A call with one completed and one cancelled response, two transcribed caller turns and five measured turns."""
    call = make_call(org, minutes_ago=minutes_ago)
    call_usage_add(call=call, usage=completed_usage(), turn_latency_ms=latencies[0] if latencies else None)
    call_usage_add(call=call, usage=cancelled_usage())
    for ms in latencies[1:]:
        call_usage_add(call=call, turn_latency_ms=ms)
    call_transcription_usage_add(call=call, usage={"type": "duration", "seconds": 1.5})
    call_transcription_usage_add(call=call, usage={"type": "duration", "seconds": 2.5})
    return call_end(call=call)


def api(user) -> Client:
    return Client(headers={"Authorization": f"Token {token_for(user)}"})


def test_call_detail_shows_usage_summed_over_completed_and_cancelled_responses_with_cost_and_latency(org_a, staff_a):
    call = billed_call(org_a)

    body = api(staff_a).get(f"/api/calls/{call.pk}").json()

    assert body["usage"] == {
        "input_text_tokens": 2200,
        "input_audio_tokens": 400,
        "input_cached_tokens": 1000,
        "output_text_tokens": 60,
        "output_audio_tokens": 240,
        "transcription_tokens": 0,
        "transcription_audio_ms": 4000,
    }
    # gpt-realtime-2.1 per 1M: text 1300 x $4 + cached text 900 x $0.40 + audio 300 x $32 + cached audio 100 x $0.40
    # + output text 60 x $24 + output audio 240 x $64 = $0.032; whisper 4 s x $0.017/min = $0.0011333.
    assert body["estimated_cost_usd"] == "0.033133"
    assert body["turn_latency_ms"] == {"p50": 700, "p95": 1200, "turns": 5}
    # The old totals stay consistent with the details: every response counted, cancelled included.
    call.refresh_from_db()
    assert call.usage == {"input_tokens": 2600, "output_tokens": 300, "total_tokens": 2900, "responses": 2}
    assert call.usage["input_tokens"] == body["usage"]["input_text_tokens"] + body["usage"]["input_audio_tokens"]


def test_a_call_with_no_usage_costs_nothing_and_has_no_latency(org_a, staff_a):
    call = make_call(org_a)

    body = api(staff_a).get(f"/api/calls/{call.pk}").json()

    assert set(body["usage"].values()) == {0}
    assert body["estimated_cost_usd"] == "0.000000"
    assert body["turn_latency_ms"] == {"p50": None, "p95": None, "turns": 0}


def test_the_cost_follows_the_price_table_and_is_null_for_a_model_without_a_price(org_a, staff_a, settings):
    call = billed_call(org_a)
    settings.REALTIME_PRICES = {
        **settings.REALTIME_PRICES,
        "gpt-realtime-2.1": {"text_input": "1", "audio_input": "10", "audio_output": "100"},
    }
    # No cached prices: cached tokens cost nothing here; uncached text 1300 x 1 + audio 300 x 10 + 240 x 100.
    assert ledger.call_cost(call) == Decimal("0.028300") + Decimal("0.001133")

    settings.REALTIME_PRICES = {k: v for k, v in settings.REALTIME_PRICES.items() if k != "gpt-realtime-whisper"}
    assert api(staff_a).get(f"/api/calls/{call.pk}").json()["estimated_cost_usd"] is None


def test_the_model_a_call_was_billed_under_is_kept_when_the_setting_changes(org_a, settings):
    call = billed_call(org_a)
    settings.REALTIME_MODEL = "gpt-realtime-2.1-mini"
    call_usage_add(call=call, usage=completed_usage())
    call.refresh_from_db()
    assert (call.realtime_model, call.transcription_model) == ("gpt-realtime-2.1", "gpt-realtime-whisper")


def test_token_billed_transcription_is_summed_and_costed_per_token(org_a, settings):
    settings.REALTIME_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
    call = make_call(org_a)
    for _ in range(2):
        call_transcription_usage_add(
            call=call,
            usage={"type": "tokens", "input_tokens": 300, "output_tokens": 20, "total_tokens": 320},
        )
    call.refresh_from_db()
    assert ledger.call_usage(call)["transcription_tokens"] == 640
    # $1.25 per 1M input, $5 per 1M output.
    assert ledger.call_cost(call) == Decimal("0.000950")


@pytest.mark.parametrize(
    "usage",
    [
        {"input_token_details": {"text_tokens": "12", "audio_tokens": -4, "cached_tokens": True}},
        {"input_token_details": ["x"], "output_token_details": None},
        {"type": "duration", "seconds": float("nan")},
    ],
)
def test_malformed_usage_counts_nothing(org_a, usage):
    call = make_call(org_a)
    call_usage_add(call=call, usage=usage)
    call_transcription_usage_add(call=call, usage=usage)
    call.refresh_from_db()
    assert set(ledger.call_counts(call).values()) == {0}


def test_turn_latencies_are_capped_per_call(org_a):
    call = make_call(org_a)
    call.turn_latencies_ms = [500] * (ledger.TURN_LATENCY_KEPT - 1)
    call.save(update_fields=["turn_latencies_ms"])
    for _ in range(3):
        call_usage_add(call=call, turn_latency_ms=800)
    call.refresh_from_db()
    assert len(call.turn_latencies_ms) == ledger.TURN_LATENCY_KEPT


@pytest.mark.parametrize(
    ("values", "p50", "p95"),
    [([1000], 1000, 1000), ([300, 100, 200, 400], 200, 400), (list(range(1, 101)), 50, 95), ([], None, None)],
)
def test_latency_percentiles_are_nearest_rank(values, p50, p95):
    assert ledger.latency_summary(values) == {"p50": p50, "p95": p95, "turns": len(values)}


# --- the console --------------------------------------------------------------------------------------------------


def test_the_call_page_shows_the_estimated_cost_and_answer_time(org_a, admin_a):
    call = billed_call(org_a)

    html = logged_in(admin_a).get(reverse("admin:calls_call_change", args=[call.pk])).content.decode()

    assert "$0.033133" in html
    assert "median 700 ms, 95th percentile 1200 ms (5 turns)" in html
    assert "<th>Input audio tokens</th><td>400</td>" in html


def test_usage_by_day_totals_the_users_clinics_per_clinic_day(org_a, org_b, admin_a, operator):
    billed_call(org_a, minutes_ago=1)
    billed_call(org_a, minutes_ago=2, latencies=(2000,))
    billed_call(org_b, minutes_ago=1)
    yesterday = billed_call(org_a, minutes_ago=60 * 24 + 2)

    response = logged_in(admin_a).get(reverse(REPORT))

    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(row["clinic"], row["calls"]) for row in rows] == [("Clinic A", 2), ("Clinic A", 1)]
    today = rows[0]
    assert today["day"] == timezone.now().astimezone(org_a.tz).date()
    assert rows[1]["day"] == yesterday.started_at.astimezone(org_a.tz).date()
    assert today["input_tokens"] == f"{2 * 2600:,}" and today["cached_tokens"] == "2,000"
    # Costed from the day's summed counts: 2 x $0.032 + 8 s of whisper ($0.0022667), rounded once.
    assert today["cost"] == "$0.066267"
    # Six turns: 400, 650, 700, 900, 1200 and 2000 ms.
    assert today["latency"] == "median 700 ms, 95th percentile 2000 ms (6 turns)"
    assert "Clinic B" not in response.content.decode()
    # The operator sees every clinic.
    clinics = {row["clinic"] for row in logged_in(operator).get(reverse(REPORT)).context["rows"]}
    assert clinics == {"Clinic A", "Clinic B"}


def test_another_clinics_usage_report_answers_404(org_a, org_b, admin_a, staff_b):
    billed_call(org_b)
    client = logged_in(admin_a)
    assert client.get(reverse(REPORT), {"organization": str(org_b.pk)}).status_code == 404
    assert client.get(reverse(REPORT), {"organization": "not-a-uuid"}).status_code == 404
    own = client.get(reverse(REPORT), {"organization": str(org_a.pk), "days": "x"})
    assert own.status_code == 200 and own.context["rows"] == []
    assert logged_in(staff_b).get(reverse(REPORT), {"organization": str(org_b.pk)}).context["rows"][0]["calls"] == 1


def test_the_usage_report_needs_a_console_login(org_a):
    response = Client().get(reverse(REPORT))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_call_list_links_to_the_usage_report(org_a, admin_a):
    html = logged_in(admin_a).get(reverse("admin:calls_call_changelist")).content.decode()
    assert reverse(REPORT) in html


def test_calls_older_than_the_report_are_left_out(org_a, admin_a):
    call = billed_call(org_a)
    Call.objects.filter(pk=call.pk).update(started_at=timezone.now() - dt.timedelta(days=40))
    assert logged_in(admin_a).get(reverse(REPORT), {"days": "30"}).context["rows"] == []


def test_the_caller_never_sees_what_the_call_cost(org_a):
    call, token = call_start(organization=org_a, channel=Call.Channel.WEB)
    call_usage_add(call=call, usage=completed_usage(), turn_latency_ms=500)

    response = Client().post(
        "/api/call/end",
        data={"call_id": str(call.pk)},
        content_type="application/json",
        headers={"X-Org-Key": org_a.publishable_key, "X-Call-Token": token},
    )

    assert response.status_code == 200, response.content
    assert not {"usage", "estimated_cost_usd", "turn_latency_ms"} & set(response.json())
