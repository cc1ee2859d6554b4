from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # events.checks registers the system checks on import.
        from events import checks, metrics  # noqa: F401

        metrics.process_start()
