"""Settings come from the environment and refuse to start on malformed values, naming the variable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "db = settings.DATABASES['default']; "
    "print(json.dumps({'engine': db['ENGINE'], 'pool': db.get('OPTIONS', {}).get('pool'), "
    "'conn_max_age': db.get('CONN_MAX_AGE'), 'health': db.get('CONN_HEALTH_CHECKS'), "
    "'layer': settings.CHANNEL_LAYERS['default'], 'cache': settings.CACHES['default']['BACKEND'], "
    "'debug': settings.DEBUG, 'tz': settings.TIME_ZONE, 'use_tz': settings.USE_TZ}))"
)


def load_settings(**overrides: str | None) -> subprocess.CompletedProcess:  # None: unset the variable
    env: dict[str, str | None] = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "voiceagent.settings", "SECRET_KEY": "x" * 60, **overrides})
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={k: v for k, v in env.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def loaded(**overrides: str | None) -> dict:
    result = load_settings(**overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_defaults_need_nothing_but_python():
    config = loaded()
    assert config["engine"] == "django.db.backends.sqlite3"
    assert config["layer"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert config["cache"].endswith("LocMemCache")
    assert config["tz"] == "UTC" and config["use_tz"] is True


def test_postgres_uses_the_checked_pool_not_persistent_connections():
    config = loaded(DATABASE_URL="postgres://app@db.internal:5432/voiceagent")
    assert config["engine"] == "django.db.backends.postgresql"
    assert config["pool"]["max_size"] >= 1 and config["pool"]["timeout"] > 0
    assert config["conn_max_age"] == 0 and config["health"] is True


def test_redis_switches_layer_and_cache_and_keeps_idle_sockets_alive():
    config = loaded(REDIS_URL="redis://cache.internal:6379/0")
    host = config["layer"]["CONFIG"]["hosts"][0]
    assert config["layer"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    # Longer than channels-redis' 5 s BZPOPMIN: redis-py 8 defaults socket_timeout to 5 s, which tears down every idle
    # consumer with close code 1011 (https://github.com/django/channels_redis/issues/422).
    assert host["socket_timeout"] > 5
    assert config["cache"].endswith("RedisCache")


def test_secret_key_is_required_without_debug():
    result = load_settings(SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert loaded(SECRET_KEY=None, DEBUG="true")["debug"] is True


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("REDIS_URL", "http://cache"),
        ("TIME_ZONE", "Europe/Atlantis"),
        ("PUBLIC_BASE_URL", "clinic.example"),
        ("OPENAI_BASE_URL", "ftp://x"),
        ("OPENAI_TIMEOUT_SECONDS", "soon"),
        ("DB_POOL_MAX_SIZE", "0"),
        ("LOG_LEVEL", "LOUD"),
        ("CSRF_TRUSTED_ORIGINS", "clinic.example"),
        ("TWILIO_ACCOUNT_SID", "not-a-sid"),
    ],
)
def test_malformed_values_fail_loudly_naming_the_variable(variable, value):
    result = load_settings(**{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


PRICES_PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({m: settings.REALTIME_PRICES[m] for m in ('gpt-realtime-2.1', 'gpt-realtime-whisper')}))"
)


def test_realtime_prices_json_replaces_the_named_models_prices():
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
    override = {"gpt-realtime-2.1": {"audio_input": 30, "audio_output": "60.5"}}
    env.update(
        DJANGO_SETTINGS_MODULE="voiceagent.settings", SECRET_KEY="x" * 60, REALTIME_PRICES_JSON=json.dumps(override)
    )
    result = subprocess.run(
        [sys.executable, "-c", PRICES_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    prices = json.loads(result.stdout)
    assert prices["gpt-realtime-2.1"] == {"audio_input": "30", "audio_output": "60.5"}
    assert prices["gpt-realtime-whisper"] == {"per_minute": "0.017"}  # models it does not name keep their prices


@pytest.mark.parametrize(
    "value",
    [
        "{not json",
        '["gpt-realtime-2.1"]',
        '{"gpt-realtime-2.1": {"audio_inptu": 32}}',
        '{"gpt-realtime-2.1": {"audio_input": -1}}',
        '{"gpt-realtime-2.1": {"audio_input": "cheap"}}',
        '{"gpt-realtime-2.1": {}}',
    ],
)
def test_malformed_realtime_prices_refuse_to_start_naming_the_variable(value):
    result = load_settings(REALTIME_PRICES_JSON=value)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "REALTIME_PRICES_JSON" in result.stderr
