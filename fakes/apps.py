from django.apps import AppConfig


class FakesConfig(AppConfig):
    """Protocol-faithful fakes of OpenAI and Twilio over real sockets, and the commands that drive them
    (`serve`, `fake_openai`, `simulate_call`). Product code never imports this package."""

    name = "fakes"
    default_auto_field = "django.db.models.BigAutoField"
