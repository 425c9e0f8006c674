"""Train the payload sensitivity classifier (FIG. 2.3 step 242) and make it the active version."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from variants.services import sensitivity_model_train


def format_progress(event: str | dict) -> str:
    """Return one terminal line for a training progress event (a message or a dict of figures)."""
    if isinstance(event, str):
        return event
    if "message" in event:
        return str(event["message"])
    parts = []
    for key, value in event.items():
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def metrics_summary(metrics: dict) -> str:
    """Return the held-out figures (or any top-level numbers) of a metrics dict as one line."""
    figures = (
        metrics.get("heldout_templates") if isinstance(metrics.get("heldout_templates"), dict) else metrics
    )
    parts = [
        f"{key} {value}" if isinstance(value, int) else f"{key} {value:.3f}"
        for key, value in figures.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    return ("Held-out: " + ", ".join(parts) + ".") if parts else ""


class Command(BaseCommand):
    help = (
        "Generate labelled prompts, train the sensitivity classifier on them, store it as a new "
        "versioned artifact under ARTIFACT_DIR/sensitivity/ with its metrics, and activate it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=0, help="Seed of the data generator and the model.")
        parser.add_argument("--examples", type=int, default=None, help="How many examples to generate.")
        parser.add_argument("--no-activate", action="store_true", help="Store the model without using it.")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing when an active model loads (make run uses this on every start).",
        )

    def handle(
        self, *args, seed: int, examples: int | None, no_activate: bool, if_missing: bool, **options
    ) -> None:
        started = time.monotonic()
        if if_missing:
            from variants.selectors import ClassifierUnavailable, active_classifier

            try:
                version, _ = active_classifier()
            except ClassifierUnavailable as exc:
                self.stdout.write(f"No usable sensitivity model ({exc}); training one.")
            else:
                self.stdout.write(f"Sensitivity model v{version} is active.")
                return

        def progress(event: str | dict) -> None:
            self.stdout.write(f"[{time.monotonic() - started:7.1f}s] {format_progress(event)}")
            self.stdout.flush()

        self.stdout.write(f"Training the sensitivity classifier (seed {seed})...")
        row = sensitivity_model_train(
            seed=seed, n_examples=examples, activate=not no_activate, progress=progress
        )
        summary = metrics_summary(row.metrics if isinstance(row.metrics, dict) else {})
        state = "active" if row.active else "stored, not active"
        self.stdout.write(
            self.style.SUCCESS(
                f"Sensitivity model v{row.version} ({state}) in {row.directory} "
                f"after {time.monotonic() - started:.1f}s. {summary}"
            )
        )
