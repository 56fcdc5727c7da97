"""Log lines through the configured handler: one record is one line whatever the input (no forged lines), and a
database error is its class and SQLSTATE, never its text (which carries row data)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import psycopg
import pytest
from django.db import IntegrityError
from django.test import Client

from core.observability import ContextFilter

FORGED = "2026-12-01 00:00:00,000 INFO voiceagent.request FORGED-LINE"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the project's console handler (settings.LOGGING) writes, captured from its real formatter and filter."""
    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, ContextFilter) for f in h.filters))
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    root = logging.getLogger()
    # Swapped directly, not with setStream(): that flushes the old stream, which may be a capture file an earlier
    # test's output capturing has closed.
    previous, level = handler.stream, root.level
    handler.stream = buffer
    root.setLevel(logging.INFO)  # the test settings log warnings only; the request line is INFO
    try:
        yield buffer
    finally:
        handler.stream = previous
        root.setLevel(level)


def test_a_newline_in_the_request_path_does_not_forge_a_log_line(db, log_lines):
    Client().get("/healthz%0a" + FORGED.replace(" ", "%20"))
    lines = log_lines.getvalue().splitlines()
    request_lines = [line for line in lines if "FORGED-LINE" in line]
    assert len(request_lines) == 1
    assert not request_lines[0].startswith("2026-12-01")  # the forged text sits inside our own line
    assert "/healthz\\n2026-12-01" in request_lines[0]


def test_caller_chosen_fields_logged_as_arguments_stay_on_one_line(log_lines):
    logger = logging.getLogger("realtime.pipeline")
    logger.warning("upstream error code=%s type=%s", "LOGFORGE1\n" + FORGED, "x\r\x1b[31mred\u2028y\ud800")
    written = log_lines.getvalue()
    assert written.count("\n") == 1  # exactly one line, ended by the handler's terminator
    assert "LOGFORGE1\\n2026" in written
    assert "\\r\\x1b[31mred\\u2028y\\ud800" in written


def test_a_message_without_arguments_is_escaped_too(log_lines):
    logging.getLogger("anything").error("built by hand: %s" % ("a\nb",))  # noqa: UP031 - the point of the test
    assert log_lines.getvalue().count("\n") == 1


def test_numbers_keep_their_format(log_lines):
    logging.getLogger("voiceagent.request").info("%s %s %d %.1fms", "GET", "/x", 200, 1.25)
    assert "GET /x 200 1.2ms" in log_lines.getvalue()


def _integrity_error_with_row_data() -> IntegrityError:
    """What Django raises for PostgreSQL's not-null violation: its text holds the failing row."""
    cause = psycopg.errors.NotNullViolation(
        'null value in column "x" of relation "calls_call" violates not-null constraint\n'
        "DETAIL:  Failing row contains (PGCANARY Jane Roe, +14155550177, null)."
    )
    error = IntegrityError(*cause.args)
    error.__cause__ = cause
    return error


def test_a_database_error_traceback_logs_class_and_sqlstate_only(log_lines):
    try:
        try:
            raise _integrity_error_with_row_data()
        except IntegrityError as exc:
            raise RuntimeError("the write failed") from exc
    except RuntimeError:
        logging.getLogger("core.errors").exception("unhandled API error: %s", "RuntimeError")
    written = log_lines.getvalue()
    assert "PGCANARY" not in written
    assert "+14155550177" not in written
    assert "Failing row" not in written
    assert "IntegrityError (SQLSTATE 23502)" in written
    assert "NotNullViolation (SQLSTATE 23502)" in written
    assert "RuntimeError: the write failed" in written
    assert "Traceback (most recent call last):" in written
    assert "test_log_safety.py" in written  # the frames (code locations) are still there


def test_a_database_error_passed_as_an_argument_is_described_not_printed(log_lines):
    logging.getLogger("realtime.bridge").warning("pipeline write failed: %s", _integrity_error_with_row_data())
    written = log_lines.getvalue()
    assert "PGCANARY" not in written
    assert "pipeline write failed: IntegrityError (SQLSTATE 23502)" in written
