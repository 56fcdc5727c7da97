"""`manage.py simulate_call`: a whole scripted call through the real code path, then what was stored."""

import io

import pytest
from django.core.management import CommandError, call_command

from calls.models import Call

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate_call", *args, stdout=out)
    return out.getvalue()


def test_list_shows_the_shipped_scenarios():
    output = run("--list")
    for name in ("routine_booking", "after_hours_message", "chest_pain_emergency", "request_human", "spanish_routine"):
        assert name in output


def test_a_routine_web_call_is_simulated_and_stored(org_a, settings):
    output = run("--org", org_a.slug, "--scenario", "routine_booking", "--time-scale", "0")
    call = Call.objects.get()
    assert call.status == Call.Status.COMPLETED and call.intake.completed
    assert "Transcript" in output and "completed=True" in output and "mint_ms=" in output
    segment = call.segments.filter(speaker="caller").first()
    assert segment is not None and segment.text in output


def test_the_emergency_simulation_shows_the_triage_escalation(org_a):
    output = run("--org", org_a.slug, "--scenario", "chest_pain_emergency", "--time-scale", "0")
    assert "emergency via keyword" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "routine_booking"], "--org"),
        (["--org", "no-such-clinic", "--scenario", "routine_booking"], "No clinic"),
        (["--org", "clinic-a", "--scenario", "no_such_scenario"], "no_such_scenario"),
    ],
)
def test_bad_arguments_are_explained(org_a, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
