"""A protocol-faithful fake of the OpenAI Realtime GA API, for tests, `make run` without a key, the simulator and
benchmarks. See README.md in this package."""

from .protocol import DEFAULT_MODEL, ProtocolError
from .scenarios import AgentReply, Scenario, ScenarioError, ToolCall, Turn, list_scenarios, load_scenario
from .server import CallRecord, ClientSecret, Failure, FakeOpenAI, FakeOpenAIThread, RecordedRequest
from .session import SessionLog

__all__ = [
    "DEFAULT_MODEL",
    "AgentReply",
    "CallRecord",
    "ClientSecret",
    "Failure",
    "FakeOpenAI",
    "FakeOpenAIThread",
    "ProtocolError",
    "RecordedRequest",
    "Scenario",
    "ScenarioError",
    "SessionLog",
    "ToolCall",
    "Turn",
    "list_scenarios",
    "load_scenario",
]
