import pytest

from realtime.fake_openai import FakeOpenAI

# A canary: must never reach a response or a log line.
API_KEY = "sk-test-SECRETKEY-do-not-leak-0123456789"


@pytest.fixture
def fake_openai(settings):
    """The shipped fake OpenAI on a real loopback socket, with the app pointed at it like a deployment would be."""
    with FakeOpenAI.start_in_thread(time_scale=0.02, pace=0.0, api_key=API_KEY) as handle:
        settings.OPENAI_BASE_URL = handle.base_url
        settings.OPENAI_API_KEY = API_KEY
        settings.OPENAI_TIMEOUT_SECONDS = 2.0
        yield handle
