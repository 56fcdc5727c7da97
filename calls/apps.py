from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls import audit_admin  # noqa: F401 - registers the console's audit trail page
        from calls.reaper import calls_mark_active
        from core import drain

        drain.set_heartbeat(calls_mark_active)
