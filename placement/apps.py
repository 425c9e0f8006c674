from django.apps import AppConfig


class PlacementConfig(AppConfig):
    name = "placement"
    verbose_name = "Workload placement"

    def ready(self) -> None:
        # Registers the reference training job's checkpoint handler in every process,
        # workers included, so migrations can pause and resume it.
        from placement import reference_job  # noqa: F401
