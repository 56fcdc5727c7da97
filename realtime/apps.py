from __future__ import annotations

import datetime as dt
from typing import Any

from django.apps import AppConfig
from django.core import checks


class RealtimeConfig(AppConfig):
    name = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from realtime import catalog

        # At start, naming the variable: a session with an unknown or shut-down model is refused by OpenAI, so no
        # call could start (docs/facts.md#transcription-models).
        today = dt.datetime.now(dt.UTC).date()
        catalog.transcription_model(settings.REALTIME_TRANSCRIPTION_MODEL, today=today)
        catalog.check_realtime_model(settings.REALTIME_MODEL, today=today)
        checks.register(model_deprecation_check)


def model_deprecation_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A warning (manage.py check, migrate) while a configured model is deprecated but not yet shut down."""
    from django.conf import settings

    from realtime import catalog

    notices = catalog.deprecation_notices(
        realtime_model=settings.REALTIME_MODEL,
        transcription_model_name=settings.REALTIME_TRANSCRIPTION_MODEL,
        today=dt.datetime.now(dt.UTC).date(),
    )
    return [
        checks.Warning(notice, hint="See docs/facts.md#transcription-models.", id="realtime.W001") for notice in notices
    ]
