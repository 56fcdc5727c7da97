"""The board socket reads its frames with the same JSON check as request bodies: a frame that is not strict,
storable JSON gets an error frame and the socket stays usable (it used to close with 1011 and log a traceback)."""

from __future__ import annotations

import pytest

from calls.tests.test_board_socket import _setup, _socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json at all", "invalid_json"),
        ('{"type": "refresh", "x": "\\u0000"}', "invalid_text"),
        ('{"type": "refresh", "x": "\\ud800"}', "invalid_text"),
        ('{"type": "refresh", "x": ' + "[" * 5000 + "]" * 5000 + "}", "too_deep"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_socket_keeps_working(frame, code):
    _a, _b, staff_a, _sb = await _setup()
    communicator = await _socket(staff_a)
    try:
        assert (await communicator.connect())[0]
        await communicator.receive_json_from(timeout=3)  # the snapshot
        await communicator.send_to(text_data=frame)
        error = await communicator.receive_json_from(timeout=3)
        assert error["type"] == "error"
        assert error["code"] == code
        await communicator.send_json_to({"type": "refresh"})
        assert (await communicator.receive_json_from(timeout=3))["type"] == "snapshot"
    finally:
        await communicator.disconnect()
