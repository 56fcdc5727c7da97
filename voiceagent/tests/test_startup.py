"""What a server process has ready before its first call."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings


def test_the_server_loads_the_triage_model_at_startup_not_on_the_first_callers_words():
    # A fresh interpreter: in this test process another test may already have loaded the model.
    probe = (
        "import voiceagent.asgi\n"
        "from calls.triage.model import default_model\n"
        "print(default_model.cache_info().currsize, default_model() is not None)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "voiceagent.settings", "DEBUG": "true"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "True"]  # loaded once, and it is the shipped model
