"""Telemetry data (patent paragraphs 58, 61): measurements of environments and workloads.

Raw samples are kept for a day; a beat task rolls them up into one-minute aggregates kept
for a month, so the database does not grow without bound (see ``telemetry.services``).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Source(models.TextChoices):
    MEASURED = "measured", "Measured"
    CONFIGURED = "configured", "Configured"


class TelemetrySample(models.Model):
    """One measurement: a metric of an environment, optionally of one workload running there."""

    environment = models.ForeignKey(
        "placement.ProductionEnvironment", on_delete=models.CASCADE, related_name="telemetry_samples"
    )
    workload = models.ForeignKey(
        "placement.Workload",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="telemetry_samples",
    )
    front_end_device = models.ForeignKey(
        "placement.FrontEndDevice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    metric = models.CharField(max_length=64, help_text="e.g. latency_total_ms, cpu_percent")
    value = models.FloatField()
    unit = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MEASURED)
    at = models.DateTimeField(db_index=True)
    # Set once the sample is counted in its minute's aggregate (so late samples are not lost).
    rolled_up = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["workload", "metric", "at"], name="sample_workload_metric_at"),
            models.Index(fields=["environment", "metric", "at"], name="sample_env_metric_at"),
            models.Index(fields=["rolled_up", "at"], name="sample_rollup_at"),
        ]

    def __str__(self) -> str:
        return f"{self.metric}={self.value:g}{self.unit} @ {self.environment_id}"


class TelemetryAggregate(models.Model):
    """The samples of one metric in one minute, summarised (kept 30 days by default)."""

    environment = models.ForeignKey(
        "placement.ProductionEnvironment", on_delete=models.CASCADE, related_name="telemetry_aggregates"
    )
    workload = models.ForeignKey(
        "placement.Workload",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="telemetry_aggregates",
    )
    metric = models.CharField(max_length=64)
    unit = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MEASURED)
    minute = models.DateTimeField(db_index=True, help_text="Start of the minute (UTC).")
    count = models.PositiveIntegerField()
    total = models.FloatField()
    minimum = models.FloatField()
    maximum = models.FloatField()

    class Meta:
        ordering = ["-minute", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "workload", "metric", "source", "minute"],
                condition=Q(workload__isnull=False),
                name="unique_workload_minute_aggregate",
            ),
            models.UniqueConstraint(
                fields=["environment", "metric", "source", "minute"],
                condition=Q(workload__isnull=True),
                name="unique_environment_minute_aggregate",
            ),
        ]
        indexes = [models.Index(fields=["workload", "metric", "minute"], name="aggregate_workload_minute")]

    def __str__(self) -> str:
        return f"{self.metric} {self.minute:%Y-%m-%d %H:%M} n={self.count}"

    @property
    def mean(self) -> float:
        """Return the mean of the minute's samples."""
        return self.total / self.count if self.count else 0.0
