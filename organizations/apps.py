from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from organizations import admin_operator, auth  # noqa: F401 - operator-only admin pages; login receivers
        from organizations.services import console_groups_ensure

        # After every migrate (and every test-database flush, which re-sends post_migrate): the console groups
        # exist with their permissions, whatever a previous flush removed.
        post_migrate.connect(console_groups_ensure, dispatch_uid="organizations.console_groups")
