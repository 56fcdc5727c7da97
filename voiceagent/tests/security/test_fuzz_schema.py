"""Schema-driven fuzz of every API operation as three roles: anonymous (the website caller, with
only the clinic's public key and its own call's token), clinic A staff and clinic A admin (API tokens).

schemathesis generates valid and invalid requests from /api/schema/ and sends them through the real WSGI stack;
minting reaches the shipped fake OpenAI. Every schemathesis check runs (all are on by default): no 5xx, responses
as documented (status codes, content types, bodies), schema-valid requests accepted and schema-violating ones
refused (the served schema says what the server enforces), authentication not ignored; and `no_leak`: no response
body holds "Traceback", "psycopg", "django.db", "sk-", the Twilio auth token, the OpenAI key, any clinic's webhook
secret, a call token, or any canary value or id of clinic B (for the anonymous caller: of any call but its own).
A run goes on past a failure and reports every distinct one (FUZZ_REPORT=path also writes one file per role).

Credentials are written into the case itself and also handed to the checks, so `ignored_auth` judges what was
really sent (credentials passed only beside the case undid a negative case's broken header without the check
knowing, which read as a false ignored-auth failure).

One rule the schema states outside JSON Schema's keywords is honoured: a field's `x-max-json-bytes` (a serialised
size, which no keyword expresses). A schema-valid body refused with a 400 naming only such fields, each sent over its
bound, is the documented refusal, not a mismatch.

Bounded by default (FUZZ_MAX_EXAMPLES per operation and mode, default 20; under a minute for all three roles).
`make fuzz` runs 100 examples per operation and mode. Cases per role are printed. FUZZ_OPERATIONS=call_start,call_end
(operationIds) fuzzes only those, to look into one failure.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from calls.models import Call
from calls.services import call_start
from core.api.schema import MAX_JSON_BYTES_KEYWORD, json_size
from voiceagent.tests.security.conftest import OPENAI_KEY, TWILIO_TOKEN, Clinic, token_header

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
ONLY = {name for name in os.environ.get("FUZZ_OPERATIONS", "").split(",") if name}  # operationIds; empty: all
CALLER_OPERATIONS = {"call_start", "call_end", "realtime_session", "realtime_attach", "call_events", "call_transcript"}
ROLES = ("anonymous", "staff", "admin")
POSITIVE_DATA_ACCEPTANCE = "ST202"  # schemathesis' code for "schema-valid request rejected"
ALWAYS_FORBIDDEN = ("Traceback", "psycopg", "django.db", "sk-")


@pytest.fixture
def _keep_test_connection():
    """The WSGI handler would close the test's database connection (and its transaction) after each request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


class LeakFound(AssertionError):
    pass


def leak_check(forbidden: list[str]):
    def no_leak(ctx, response, case) -> None:
        body = response.content.decode(errors="replace")
        request = response.request
        sent = f"{request.url} {request.body!r}" if request is not None else ""
        for marker in (*ALWAYS_FORBIDDEN, *forbidden):
            # A marker the client itself sent may be echoed in a validation message; anything else is a leak.
            if marker and marker in body and marker not in sent:
                raise LeakFound(f"{case.operation.label}: response {response.status_code} contains {marker!r}")

    return no_leak


def _body_properties(case) -> dict:
    """The request body's properties as the served schema declares them (one $ref deep, as drf-spectacular writes)."""
    body = (case.operation.definition.raw.get("requestBody") or {}).get("content", {}).get("application/json", {})
    schema = body.get("schema") or {}
    if "$ref" in schema:
        schema = case.operation.schema.raw_schema["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema.get("properties") or {}


def refused_for_a_declared_size(case, response) -> bool:
    """A schema-valid body refused only for sizes the schema states with x-max-json-bytes (a bound JSON Schema has
    no keyword for): every field in the 400 carries that extension and the value sent is over it."""
    if response.status_code != 400 or not isinstance(case.body, dict):
        return False
    fields = (response.json().get("error") or {}).get("fields") or {}
    declared = _body_properties(case)
    return bool(fields) and all(
        name in case.body
        and MAX_JSON_BYTES_KEYWORD in declared.get(name, {})
        and json_size(case.body[name]) > declared[name][MAX_JSON_BYTES_KEYWORD]
        for name in fields
    )


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(900)  # a hang guard only (`make fuzz` sets its own): speed is never asserted
@pytest.mark.usefixtures("_keep_test_connection")
@pytest.mark.parametrize("role", ROLES)
def test_fuzzing_every_operation_finds_no_failure_of_any_check(world, fake, settings, capsys, role):
    a, b = world
    settings.CALLER_THROTTLE_RATES = {
        "caller_ip": "1000000/min",
        "caller_org": "1000000/min",
        "caller_org_ip": "1000000/min",
    }
    cache.clear()
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    # A body over the server's size limit is refused with 413 before it is parsed (documented on every operation that
    # takes one): a rejection, which schemathesis' default list for invalid data leaves out.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    foreign = _foreign_values(role, a, b)
    no_leak = leak_check(foreign)
    # Distinct failures (operation, failure code, title) with one example each: the run goes on past a failure so
    # one run reports them all, instead of stopping at the first and shrinking it.
    failures: dict[tuple[str, str, str], str] = {}
    counts: dict[str, int] = {}
    successes: set[str] = set()
    user = a.staff if role == "staff" else a.admin
    started = time.monotonic()

    def prepare(case, mode) -> dict[str, str]:
        """Aim valid-looking ids at clinic A's real rows so handlers run past the lookup; credentials by role.

        Everything is written into the case itself, so the checks judge what was really sent (credentials passed
        beside the case would undo a negative case's missing or broken header without the checks knowing)."""
        operation_id = case.operation.definition.raw.get("operationId")
        live, token = None, None
        if operation_id in CALLER_OPERATIONS and role == "anonymous":
            live, token = call_start(organization=a.org, channel=Call.Channel.WEB)
        params = case.path_parameters or {}
        if _is_uuid(params.get("org_id")):
            params["org_id"] = str(a.org.pk)
        if _is_uuid(params.get("escalation_id")):
            params["escalation_id"] = str(a.escalation.pk)
        if _is_uuid(params.get("call_id")):
            params["call_id"] = str(live.pk if live else a.call.pk)
        if isinstance(case.body, dict) and _is_uuid(case.body.get("call_id")):
            case.body["call_id"] = str(live.pk if live else a.ended_call.pk)
        if mode == schemathesis.GenerationMode.POSITIVE and isinstance(case.query, dict):
            # A cursor is an opaque token the server issued (its next/previous links); no schema can say which
            # strings those are, so a generated one can only be refused. Positive cases ask for the first page.
            case.query.pop("cursor", None)
        if role != "anonymous":
            credentials = token_header(user)  # re-issued when a fuzzed logout revoked it
        elif operation_id in CALLER_OPERATIONS:
            credentials = {"X-Org-Key": a.org.publishable_key, **({"X-Call-Token": token} if token else {})}
        else:
            credentials = {}
        case.headers = {**(case.headers or {}), **credentials}
        return credentials  # also given to the checks as explicit: ignored_auth then probes without them

    def run_operation(operation, mode) -> None:
        label = f"{mode.value} {operation.label}"

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:
            counts[label] = counts.get(label, 0) + 1
            credentials = prepare(case, mode)
            response = case.call()
            if 200 <= response.status_code < 300:
                successes.add(operation.label)
            try:  # every built-in check (all are enabled by default) and the leak check
                case.validate_response(response, headers=credentials, additional_checks=[no_leak])
            except FailureGroup as group:
                for failure in group.exceptions:
                    if failure.code == POSITIVE_DATA_ACCEPTANCE and refused_for_a_declared_size(case, response):
                        continue
                    key = (operation.label, failure.code, failure.title)
                    answer = f"{response.status_code} {response.text[:300]}"
                    curl = case.as_curl_command()[:600]
                    example = f"{mode.value}: {failure.message[:300]}\n  answer: {answer}\n  {curl}"
                    failures.setdefault(key, example)

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid (e.g. logout has no inputs): nothing to send
            unsatisfiable.append(label)

    unsatisfiable: list[str] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema has an operation schemathesis cannot use: {result.err()}"
        if not ONLY or result.ok().definition.raw.get("operationId") in ONLY:
            operations.append(result.ok())
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        for operation in operations:
            run_operation(operation, mode)

    total = sum(counts.values())
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\nfuzz as {role}: {total} cases over {len(operations)} operations x 2 modes in {elapsed:.1f}s; "
            f"{len(successes)} operations reached a 2xx; {len(failures)} distinct failures"
        )
    report = "\n".join(f"{op} {code} {title}: {example}" for (op, code, title), example in failures.items())
    if os.environ.get("FUZZ_REPORT"):
        with open(os.environ["FUZZ_REPORT"] + f".{role}", "w") as out:
            out.write(report)
    assert not failures, report
    assert len(counts) + len(unsatisfiable) == 2 * len(operations)
    assert all(label.startswith("negative") for label in unsatisfiable), unsatisfiable
    assert total >= 2 * len(operations) * min(MAX_EXAMPLES, 3)
    if ONLY:  # a partial run (triage of one failure) need not reach the whole API
        return
    # The fuzz exercised real handlers, not only the authentication layer.
    reachable = {
        "anonymous": {"POST /api/call/start", "POST /api/realtime/session/"},
        "staff": {"GET /api/calls", "GET /api/escalations"},
        "admin": {"GET /api/calls", "GET /api/escalations"},
    }[role]
    assert reachable <= successes, successes


def _foreign_values(role: str, a: Clinic, b: Clinic) -> list[str]:
    values = [
        TWILIO_TOKEN,
        OPENAI_KEY,
        a.org.webhook_secret,
        b.org.webhook_secret,
        a.call_token,
        b.call_token,
        b.org.publishable_key,
        *b.canaries,
        *b.ids,
        a.call.token_hash,
    ]
    if role == "anonymous":  # a caller sees its own call only: none of A's staff-side data either
        values += [*a.canaries, str(a.escalation.pk)]
    return values


def test_the_leak_check_catches_a_leak():
    """The check above can fail: a body with a foreign canary or a traceback is reported."""

    class Fake:
        status_code = 200
        request = None

        def __init__(self, content: bytes) -> None:
            self.content = content

    class Case:
        class operation:  # mimics schemathesis
            label = "GET /api/x"

    check = leak_check(["ZZQX-Canary-B"])
    check(None, Fake(b'{"ok": true}'), Case)
    for body in (b"... ZZQX-Canary-B ...", b"Traceback (most recent call last)", b"psycopg.errors.X", b"sk-abc"):
        with pytest.raises(LeakFound):
            check(None, Fake(body), Case)


# --- POST /openai/webhook is not an API operation (no schema): fuzzed here with hypothesis directly -------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@pytest.mark.django_db
def test_the_openai_webhook_answers_any_signed_or_unsigned_input_without_a_server_error_or_a_leak(settings):
    from django.test import Client

    from fakes.openai.webhooks import new_secret, signed_headers

    secret = new_secret()
    settings.OPENAI_WEBHOOK_SECRET = secret
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # OpenAI unreachable: accept/reject fail fast, never a 500
    settings.OPENAI_API_KEY = OPENAI_KEY
    signed_shapes = st.fixed_dictionaries(
        {"type": st.sampled_from(["realtime.call.incoming", "response.completed"]) | st.text(max_size=30)},
        optional={"data": _json | st.fixed_dictionaries({"call_id": _json, "sip_headers": _json}), "id": _json},
    )

    @hypothesis_settings(max_examples=MAX_EXAMPLES * 4, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        signed=st.booleans(),
        event=signed_shapes | _json,
        raw=st.binary(max_size=200),
        use_raw=st.booleans(),
        headers=st.dictionaries(
            st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]), st.text(max_size=60)
        ),
    )
    def run(signed, event, raw, use_raw, headers):
        import json

        body = raw if use_raw else json.dumps(event).encode()
        sent = signed_headers(secret, body) if signed else headers
        extra = {k: v for k, v in sent.items() if k != "content-type" and "\n" not in v and "\r" not in v}
        response = Client().post("/openai/webhook", data=body, content_type="application/json", headers=extra)
        assert response.status_code < 500, response.content
        text = response.content.decode(errors="replace")
        for marker in (*ALWAYS_FORBIDDEN, secret, OPENAI_KEY):
            assert marker not in text

    run()
