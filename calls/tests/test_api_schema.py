"""The published API contract: the OpenAPI schema validates, the docs are served offline, and a bounded
property-based run of schemathesis against the served schema finds no 5xx and no response that breaks it."""

from __future__ import annotations

import io
import time

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.cache import cache
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from calls.models import Call
from calls.services import call_start, transcript_segment_append
from conftest import token_for

# The operations this API issue owns; other apps' endpoints are fuzzed by their own suites (they call upstreams).
OPERATIONS = [
    "call_start",
    "call_end",
    "calls_list",
    "calls_retrieve",
    "org_config_retrieve",
    "org_config_update",
    "org_config_partial_update",
]
CALLER_OPERATIONS = {"call_start", "call_end"}
MAX_EXAMPLES = 25


def test_the_schema_validates_without_warnings(db):
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out)
    assert '"/api/call/start"' in out.getvalue()


def test_the_schema_documents_every_endpoint_with_examples_and_error_shapes(db):
    schema = Client().get("/api/schema/", headers={"Accept": "application/json"}).json()
    paths = schema["paths"]
    ours = {"/api/call/start", "/api/call/end", "/api/calls", "/api/calls/{call_id}", "/api/org/config/{org_id}"}
    assert ours <= set(paths)
    assert not any(path.endswith("/") for path in paths if path.rstrip("/") in paths)
    start = paths["/api/call/start"]["post"]
    assert start["security"] == [{"orgKey": []}]
    assert "examples" in start["requestBody"]["content"]["application/json"]
    assert {"201", "400", "401", "403", "429"} <= set(start["responses"])
    assert set(paths["/api/org/config/{org_id}"]) >= {"get", "post", "patch"}
    assert {"401", "404"} <= set(paths["/api/calls/{call_id}"]["get"]["responses"])


def test_every_request_body_is_documented_with_examples(db):
    schema = Client().get("/api/schema/", headers={"Accept": "application/json"}).json()
    bodies = {
        f"{method.upper()} {path}": operation["requestBody"]["content"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "requestBody" in operation
    }

    assert "POST /api/call/start" in bodies and "POST /api/auth/token" in bodies
    undocumented = [name for name, content in bodies.items() if not all("examples" in c for c in content.values())]
    assert undocumented == []
    # `{}` is a valid call start (every field optional), and the schema says so.
    start = bodies["POST /api/call/start"]["application/json"]
    assert {} in [example["value"] for example in start["examples"].values()]
    assert not schema["paths"]["/api/call/start"]["post"]["requestBody"].get("required")


def test_the_docs_page_is_served_with_local_assets(db, settings):
    # Releases run collectstatic (hashed names); tests have no manifest, so name assets plainly.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema" in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")  # shipped, not fetched


@pytest.fixture
def _keep_test_connection():
    """The WSGI app would close the database connection after each request (and with it the test's
    transaction); Django's test client disconnects the same handlers."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
@pytest.mark.timeout(900)  # a hang guard only: speed is measured in bench/, never asserted
@pytest.mark.usefixtures("_keep_test_connection")
def test_schemathesis_finds_no_server_error_and_no_schema_violation(org_a, admin_a, settings, capsys):
    settings.CALLER_THROTTLE_RATES = {
        "caller_ip": "1000000/min",
        "caller_org": "1000000/min",
        "caller_org_ip": "1000000/min",
    }
    cache.clear()
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application()).include(operation_id=OPERATIONS)
    reviewed, _ = call_start(organization=org_a, channel=Call.Channel.WEB)
    transcript_segment_append(call=reviewed, speaker="caller", text="hello")
    staff_headers = {"Authorization": f"Token {token_for(admin_a)}"}
    counts: dict[str, int] = {}
    started = time.monotonic()

    def prepare(case) -> dict[str, str]:
        """Aim generated requests at real objects so handlers run past the 404, with valid credentials."""
        operation_id = case.operation.definition.raw.get("operationId")
        if case.path_parameters and "org_id" in case.path_parameters:
            case.path_parameters["org_id"] = str(org_a.pk)
        if case.path_parameters and "call_id" in case.path_parameters:
            case.path_parameters["call_id"] = str(reviewed.pk)
        if operation_id not in CALLER_OPERATIONS:
            return staff_headers
        headers = {"X-Org-Key": org_a.publishable_key}
        if operation_id == "call_end" and isinstance(case.body, dict):
            live, token = call_start(organization=org_a, channel=Call.Channel.WEB)
            case.body["call_id"] = str(live.pk)
            headers["X-Call-Token"] = token
        return headers

    def run_operation(operation, mode, checks) -> None:
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
            case.call_and_validate(headers=prepare(case), checks=checks)

        run()

    for mode, checks in (
        (schemathesis.GenerationMode.POSITIVE, [not_a_server_error, response_schema_conformance]),
        (schemathesis.GenerationMode.NEGATIVE, [not_a_server_error]),
    ):
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # an operation our schema could not describe
            run_operation(result.ok(), mode, checks)

    total = sum(counts.values())
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nschemathesis: {total} cases over {len(counts)} operation/mode pairs in {elapsed:.1f}s")
        for label, count in sorted(counts.items()):
            print(f"  {count:4d}  {label}")
    assert len(counts) == 2 * len(OPERATIONS)
    assert total >= 5 * len(counts)
