from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls import audit_admin  # noqa: F401 - registers the console's audit trail page
        from calls.audit import audit_team_change
        from calls.reaper import calls_mark_active
        from core import drain
        from organizations.services import team_audit_install

        drain.set_heartbeat(calls_mark_active)
        team_audit_install(audit_team_change)  # team changes are recorded in the audit trail
