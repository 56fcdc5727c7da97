"""The schema fuzz with EVERY schemathesis check (not collected by the default suite: `make fuzz-all`).

The default fuzz (test_fuzz_schema.py) asserts no 5xx, no leak and response conformance. This one also runs the
checks that compare the served schema with what the server enforces (positive data accepted, negative data
rejected, documented status codes, ignored auth, ...), collects every distinct failure instead of stopping at the
first, and prints them (FUZZ_REPORT=path also writes one file per role). It is the target for "the served schema
matches what the server enforces"; it still finds failures, so it is a tool, not yet a gate.

Credentials are written into the case itself and also handed to the checks, so `ignored_auth` judges what was
really sent (credentials passed only beside the case undid a negative case's broken header without the check
knowing, which read as a false ST401).
"""

from __future__ import annotations

import os
import time

import pytest
import schemathesis
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from calls.models import Call
from calls.services import call_start
from voiceagent.tests.security.conftest import token_header
from voiceagent.tests.security.test_fuzz_schema import (
    CALLER_OPERATIONS,
    MAX_EXAMPLES,
    ROLES,
    _foreign_values,
    _is_uuid,
    _keep_test_connection,  # noqa: F401 (a fixture, used by name)
    leak_check,
)


@pytest.mark.slow
@pytest.mark.timeout(900)  # a hang guard only (`make fuzz` sets its own): speed is never asserted
@pytest.mark.usefixtures("_keep_test_connection")
@pytest.mark.parametrize("role", ROLES)
def test_fuzzing_with_every_schemathesis_check(world, fake, settings, capsys, role):
    a, b = world
    settings.CALLER_THROTTLE_RATES = {
        "caller_ip": "1000000/min",
        "caller_org": "1000000/min",
        "caller_org_ip": "1000000/min",
    }
    cache.clear()
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
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
    # The fuzz exercised real handlers, not only the authentication layer.
    reachable = {
        "anonymous": {"POST /api/call/start", "POST /api/realtime/session/"},
        "staff": {"GET /api/calls", "GET /api/escalations"},
        "admin": {"GET /api/calls", "GET /api/escalations"},
    }[role]
    assert reachable <= successes, successes
