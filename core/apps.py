from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The platform under the domain apps: error shape, API plumbing, middleware, health, resilience, drain."""

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"
