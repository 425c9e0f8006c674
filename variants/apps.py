from django.apps import AppConfig


class VariantsConfig(AppConfig):
    name = "variants"
    verbose_name = "Security-based variants"

    def ready(self) -> None:
        from variants import follow, signals

        signals.connect()
        follow.connect()
