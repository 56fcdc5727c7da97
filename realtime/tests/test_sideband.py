"""The server attached to a browser call (sideband): each shipped scenario end to end over real sockets."""

import pytest
from asgiref.sync import async_to_sync

from calls.models import Call, Escalation, Intake
from conftest import make_call
from fakes.openai import load_scenario
from realtime.session import build_session
from realtime.sideband import run_sideband

from .conftest import API_KEY

pytestmark = pytest.mark.django_db


def play(fake, org, scenario: str, *, minted: bool = True):
    """Our call + an upstream call playing `scenario`; run the sideband until the call ends. `minted`: the upstream
    call starts with the clinic's session, as one started with a minted secret does (the caller may speak before
    the sideband attached); otherwise with OpenAI's default session."""
    call = make_call(org, minutes_ago=0)
    openai_call_id = fake.register_call(scenario=scenario, session=build_session(org) if minted else None)
    call.openai_call_id = openai_call_id
    call.save(update_fields=["openai_call_id"])
    ended = async_to_sync(run_sideband)(str(call.pk), openai_call_id)
    session = next(s for s in fake.sessions if s.call_id == openai_call_id)
    return ended, session


@pytest.mark.parametrize("scenario", ["routine_booking", "after_hours_message", "spanish_routine"])
def test_routine_scenarios_are_persisted_in_order_with_a_complete_intake(fake_openai, org_a, scenario):
    if scenario == "spanish_routine":
        org_a.agent_languages = ["en", "es"]
        org_a.save()
    call, session = play(fake_openai, org_a, scenario)
    assert call.status == Call.Status.COMPLETED
    expected = session.transcript()
    stored = list(call.segments.exclude(speaker="system").order_by("seq").values_list("speaker", "text"))
    assert stored == expected and len(stored) >= 4
    assert Intake.objects.get(call=call).completed
    assert not call.escalations.exists()
    assert session.violations == []  # never response.create while a response is active, outputs before create
    assert "conversation_already_has_active_response" not in str(session.errors())


def test_emergency_is_escalated_by_triage_before_the_models_own_tool_call(paced_fake_openai, org_a):
    call, session = play(paced_fake_openai, org_a, "chest_pain_emergency")
    escalations = list(call.escalations.all())
    # Exactly one emergency escalation, raised by triage (the model's later escalate_call joins it).
    assert [(e.level, e.source) for e in escalations] == [(Escalation.Level.EMERGENCY, Escalation.Source.KEYWORD)]
    assert call.escalated and call.escalation_level == "emergency"
    # Staff are notified: the board's outbox row was written with the escalation.
    assert escalations[0].notifications.filter(channel="board").exists()
    first_caller_line = load_scenario("chest_pain_emergency").turns[0].caller
    triggering = call.segments.get(speaker="caller", seq=1)
    assert triggering.text == first_caller_line
    # The agent was steered at once: a system instruction and a response asking for 911.
    steering = [
        e for e in session.received if e.get("type") == "conversation.item.create" and e["item"].get("role") == "system"
    ]
    assert steering and "911" in steering[0]["item"]["content"][0]["text"]
    assert any(e.get("type") == "response.create" and "911" in str(e.get("response", {})) for e in session.received)
    assert session.violations == []


def test_request_for_a_human_creates_one_human_escalation(fake_openai, org_a):
    call, session = play(fake_openai, org_a, "request_human")
    assert call.escalations.filter(level="human").count() == 1
    assert session.violations == []


def test_tool_errors_go_back_to_the_model_and_the_call_continues(fake_openai, org_a):
    # The clinic requires a field the scripted model never provides: complete_intake gets an answer it can act on.
    org_a.intake_fields.create(name="pharmacy", field_type="text", required=True, position=99)
    call, session = play(fake_openai, org_a, "routine_booking")
    outputs = list(session.tool_outputs.values())
    assert any('"complete": false' in output and "pharmacy" in output for output in outputs)
    assert call.status == Call.Status.COMPLETED and session.violations == []


def test_a_sideband_that_cannot_attach_ends_the_call_as_failed(fake_openai, org_a):
    call = make_call(org_a, minutes_ago=0)
    ended = async_to_sync(run_sideband)(str(call.pk), "rtc_doesnotexist")
    assert ended.status == Call.Status.FAILED and ended.end_reason == Call.EndReason.ERROR


def test_what_the_sideband_writes_is_audited_as_the_openai_sideband(fake_openai, org_a):
    from calls.models import AuditEvent

    play(fake_openai, org_a, "routine_booking")
    # (the call row itself was created by this test, outside any request: "system")
    services = set(
        AuditEvent.objects.filter(object_type__in=["transcriptsegment", "intake"]).values_list(
            "actor_service", flat=True
        )
    )
    assert "openai-sideband" in services and "system" not in services


def test_words_said_over_the_goodbye_are_stored_triaged_and_escalated_after_the_call(fake_openai, org_a):
    call, _session = play(fake_openai, org_a, "goodbye_then_emergency")
    assert call.status == Call.Status.COMPLETED and call.end_reason == Call.EndReason.AGENT_ENDED
    late = load_scenario("goodbye_then_emergency").turns[-1].caller
    assert call.segments.filter(speaker="caller", text=late).exists()
    escalation = Escalation.objects.get(call=call, level="emergency")
    assert (escalation.source, escalation.after_call) == ("keyword", True)
    assert escalation.triage["level"] == "emergency"
    assert escalation.notifications.exists()  # on the board like any other
    note = call.segments.filter(speaker="system").last()
    assert "after the call ended" in note.text


def test_openais_session_cap_ends_the_call_as_a_timeout_not_a_caller_hang_up(fake_openai, org_a):
    # 1001 "Your session hit the maximum duration of 60 minutes." (docs/facts.md#session-cap), here after 0.5 s.
    fake_openai.fake.session_limit = 0.5
    call = make_call(org_a, minutes_ago=0)
    openai_call_id = fake_openai.register_call()  # no caller: nothing ends the call but the cap
    ended = async_to_sync(run_sideband)(str(call.pk), openai_call_id)
    assert fake_openai.calls[openai_call_id].state == "ended"
    assert ended.status == Call.Status.COMPLETED and ended.end_reason == Call.EndReason.TIMEOUT


def test_a_normal_close_is_still_the_caller_hanging_up(fake_openai, org_a):
    call = make_call(org_a, minutes_ago=0)
    openai_call_id = fake_openai.register_call()

    async def hang_up_soon():
        import asyncio

        import httpx

        await asyncio.sleep(0.5)
        async with httpx.AsyncClient() as http:
            await http.post(
                f"{fake_openai.base_url}/realtime/calls/{openai_call_id}/hangup",
                headers={"Authorization": f"Bearer {API_KEY}"},
            )

    async def run():
        import asyncio

        hangup = asyncio.create_task(hang_up_soon())
        ended = await run_sideband(str(call.pk), openai_call_id)
        await hangup
        return ended

    ended = async_to_sync(run)()
    assert ended.end_reason == Call.EndReason.CALLER_HANGUP


def test_a_refused_session_update_on_the_sideband_is_recorded_on_the_call(fake_openai, org_a, settings, caplog):
    # The day after the transcription model's announced shutdown the API refuses the sideband's session.update.
    from fakes.openai.server import clock_for

    settings.REALTIME_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
    fake_openai.fake.clock = clock_for("2027-02-27")
    call, session = play(fake_openai, org_a, "routine_booking", minted=False)

    assert [e["code"] for e in session.errors()] == ["model_not_found"]
    assert [(e["event"], e["code"]) for e in call.metadata["upstream_errors"]] == [
        ("session.update", "model_not_found")
    ]
    assert call.is_ended
    [line] = [r.getMessage() for r in caplog.records if "session.update refused" in r.getMessage()]
    assert line == "sideband session.update refused code=model_not_found"


LONG_GOODBYE = """
name: long_goodbye
turns:
  - caller: That's all, thanks.
    delay: 0
    agent:
      say: >-
        You're very welcome. Before you go, remember to bring your insurance card and a list of your medications to
        the appointment, and arrive ten minutes early. Have a lovely day, goodbye!
      tool_calls:
        - end_call: {reason: caller finished}
"""


def test_the_sideband_hangs_up_only_after_the_goodbye_has_played_out(fake_openai, org_a, tmp_path):
    # OpenAI generates audio faster than real time and plays it to the browser after response.done; the end of the
    # playback is output_audio_buffer.stopped. Here the goodbye plays ~3 s, longer than a quiet second.
    scenario = tmp_path / "long_goodbye.yaml"
    scenario.write_text(LONG_GOODBYE)
    fake_openai.fake.time_scale = 0.5
    call, session = play(fake_openai, org_a, str(scenario))

    assert call.end_reason == Call.EndReason.AGENT_ENDED
    sent = session.sent_types()
    assert (
        sent.index("output_audio_buffer.started")
        < sent.index("response.done")
        < sent.index("output_audio_buffer.stopped")
    )
    assert session.playing_at_end is False  # the caller heard the whole goodbye before the hang-up


class _ClosingUpstream:
    """A sideband socket the caller's hang-up closes just as our reply goes out."""

    def __init__(self, events: list[dict]) -> None:
        import json

        self.frames = [json.dumps(e) for e in events]

    @staticmethod
    def _closed():
        from websockets.exceptions import ConnectionClosedOK
        from websockets.frames import Close

        return ConnectionClosedOK(Close(1000, ""), Close(1000, ""), rcvd_then_sent=True)

    async def recv(self) -> str:
        if self.frames:
            return self.frames.pop(0)
        raise self._closed()

    async def send(self, _data: str) -> None:
        raise self._closed()


def test_a_socket_closed_under_a_reply_is_the_caller_hanging_up_not_a_failed_call(org_a):
    from realtime.pipeline import CallEventPipeline
    from realtime.sideband import _pump

    call = make_call(org_a, minutes_ago=0)
    pipeline = CallEventPipeline(call)
    emergency = {  # triage steers at once: client events go out, into a socket that just closed
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_1",
        "transcript": "I have crushing chest pain and can't breathe.",
    }
    reason = async_to_sync(_pump)(_ClosingUpstream([emergency]), pipeline)  # type: ignore[arg-type]
    assert reason == Call.EndReason.CALLER_HANGUP
    assert call.segments.filter(speaker="caller").exists()
