from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls import audit, audit_admin  # noqa: F401 - registers the console's audit trail page

        audit.connect_signals()
