"""The fake's Responses API (`POST /v1/responses`): the official SDK reads its answers, every answer validates
against the SDK's own model, structured output fills the caller's schema deterministically, and what the real API
refuses is refused (unknown fields, a strict schema that is not strict-valid, ephemeral keys), with failures on
demand."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response

from fakes.openai import Failure, FakeOpenAI

SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "reason_for_call": {"type": "string"},
        "follow_up_needed": {"type": "boolean"},
        "level": {"type": "string", "enum": ["routine", "urgent"]},
    },
    "required": ["summary", "reason_for_call", "follow_up_needed", "level"],
    "additionalProperties": False,
}
TRANSCRIPT = "Caller: My prescription ran out, can you call me back?\nReceptionist: Of course."
BODY: dict[str, Any] = {
    "model": "gpt-5.4-mini",
    "input": [{"role": "user", "content": TRANSCRIPT}],
    "text": {"format": {"type": "json_schema", "name": "call_summary", "schema": SCHEMA, "strict": True}},
    "store": False,
}


async def post(fake: FakeOpenAI, body, *, key: str = "sk-test") -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.post(fake.base_url + "/responses", json=body, headers={"Authorization": f"Bearer {key}"})


async def test_the_sdk_reads_a_structured_answer_that_fills_the_schema():
    async with FakeOpenAI() as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        response = await client.responses.create(**BODY)
        data = json.loads(response.output_text)
        assert data == {
            "summary": "A call of 2 lines with the clinic's receptionist. The caller said: \"My prescription ran out, "
            'can you call me back?"',
            "reason_for_call": "My prescription ran out, can you call me back?",
            "follow_up_needed": True,
            "level": "routine",
        }
        assert response.status == "completed" and response.model == "gpt-5.4-mini"
        assert response.output[0].type == "reasoning"  # a reasoning model: the message is not output[0]
        assert response.usage is not None and response.usage.total_tokens > 0
        assert fake.requests_to("/responses")[0].body["store"] is False


async def test_every_answer_validates_against_the_sdk_model_and_is_deterministic():
    async with FakeOpenAI() as fake:
        first, second = (await post(fake, BODY)).json(), (await post(fake, BODY)).json()
        Response.model_validate(first)  # strict pydantic validation, not the SDK's lenient construct
        assert first["output"][1]["content"][0]["text"] == second["output"][1]["content"][0]["text"]
        assert first["id"] != second["id"]


@pytest.mark.parametrize(
    ("change", "code", "param"),
    [
        ({"model": None}, "missing_required_parameter", "model"),
        ({"colour": "blue"}, "unknown_parameter", "colour"),
        ({"text": {"format": {"type": "xml"}}}, "invalid_value", "text.format.type"),
        (
            {"text": {"format": {"type": "json_schema", "schema": SCHEMA}}},
            "missing_required_parameter",
            "text.format.name",
        ),
        (
            {
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "call_summary",
                        "strict": True,
                        "schema": {**SCHEMA, "required": ["summary"]},
                    }
                }
            },
            "invalid_json_schema",
            "text.format.schema",
        ),
        (
            {
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "call_summary",
                        "strict": True,
                        "schema": {k: v for k, v in SCHEMA.items() if k != "additionalProperties"},
                    }
                }
            },
            "invalid_json_schema",
            "text.format.schema",
        ),
    ],
)
async def test_what_the_api_refuses_is_refused_with_its_error_body(change, code, param):
    body = {**BODY, **change}
    body = {key: value for key, value in body.items() if value is not None}
    async with FakeOpenAI() as fake:
        answer = await post(fake, body)
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")


async def test_an_ephemeral_key_cannot_create_responses():
    async with FakeOpenAI() as fake:
        answer = await post(fake, BODY, key="ek_not_minted")
        assert answer.status_code == 401


async def test_failures_on_demand_reach_the_sdk_as_its_own_errors():
    failure = Failure(kind="rate_limit", path="/v1/responses", retry_after=7, times=1)
    async with FakeOpenAI(failure=failure) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        with pytest.raises(openai.RateLimitError) as error:
            await client.responses.create(**BODY)
        assert error.value.response.headers["retry-after"] == "7"
        fake.failure = Failure(kind="server_error", path="/v1/responses", times=1)
        with pytest.raises(openai.InternalServerError):
            await client.responses.create(**BODY)
        response = await client.responses.create(**BODY)
        assert response.status == "completed"
