"""Tool arguments from the model (or forwarded by a caller's browser) go through the same JSON check as request
bodies: too deep, NUL or a lone surrogate is an error the model can act on, never an exception or a stored row."""

from __future__ import annotations

import json

import pytest

from calls.models import Intake
from conftest import make_call
from realtime.tools import execute_tool

INTAKE = {
    "patient_name": "Maria Lopez",
    "date_of_birth": "1985-04-12",
    "callback_number": "(415) 555-0142",
    "urgency": "routine",
}


@pytest.mark.parametrize(
    "arguments",
    [
        "[" * 5000 + "]" * 5000,
        json.dumps({**INTAKE, "reason_for_call": "cough\u0000"}),
        json.dumps({**INTAKE, "reason_for_call": "cough \ud800"}),
    ],
)
def test_unstorable_or_absurd_arguments_are_an_error_for_the_model(org_a, arguments):
    call = make_call(org_a)
    result = execute_tool(call, "complete_intake", arguments)
    assert result.output["ok"] is False
    assert result.output["error"] in {"invalid_arguments", "intake_invalid"}
    assert not Intake.objects.filter(call=call).exists()


def test_deep_arguments_say_why(org_a):
    result = execute_tool(make_call(org_a), "escalate_call", '{"level": ' + "[" * 5000 + "]" * 5000 + "}")
    assert result.output["error"] == "invalid_arguments"
    assert "nest" in result.output["message"]
