"""Turn latency: from the end of the caller's speech to the agent's first audio, measured by the transport.

The transport feeds the clock what it sees: `input_audio_buffer.speech_stopped` (the caller finished), then
`response.created` (the response that answers), then that response's first audio (the first
`response.output_audio.delta` on a socket that carries audio, `output_audio_buffer.started` on a WebRTC/SIP
sideband), then its `response.done`, where `take` hands the measure to the pipeline. A response that answers with a
tool call and no audio passes the turn on to the next response (the caller waits through both). Pure and
in-memory: on the phone bridge the only per-frame cost is reading `waiting_for_audio`.
"""

from __future__ import annotations


class TurnClock:
    def __init__(self) -> None:
        self._stopped_at: float | None = None  # the caller stopped speaking (monotonic seconds)
        self._response_id = ""  # the response answering the turn
        self._measured: dict[str, int] = {}  # response id -> ms, until its response.done
        self.waiting_for_audio = False  # a response answers a turn and has produced no audio yet

    def speech_stopped(self, now: float) -> None:
        self._stopped_at = now
        self._response_id = ""
        self.waiting_for_audio = False

    def response_created(self, response_id: str) -> None:
        if self._stopped_at is not None and response_id and not self._response_id:
            self._response_id = response_id
            self.waiting_for_audio = True

    def audio(self, response_id: str, now: float) -> None:
        """The first audio of `response_id` (later calls for the same turn do nothing)."""
        if not self.waiting_for_audio or self._stopped_at is None:
            return
        if response_id and response_id != self._response_id:
            return  # the tail of an earlier response, not the answer
        if len(self._measured) > 16:  # response.done never came for these; keep the clock bounded
            self._measured.clear()
        self._measured[self._response_id] = max(0, round((now - self._stopped_at) * 1000))
        self._stopped_at = None
        self._response_id = ""
        self.waiting_for_audio = False

    def take(self, response_id: str) -> int | None:
        """At `response.done`: the turn latency this response answered with, if it had audio."""
        if response_id and response_id == self._response_id:
            # Done without audio (a tool call, or cancelled first): the next response answers the same turn.
            self._response_id = ""
            self.waiting_for_audio = False
        return self._measured.pop(response_id, None)
