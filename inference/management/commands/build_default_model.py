"""Build the project's default model offline and register it as the AI model ``default``."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from console.progress import progress_publish
from inference.modelbuild import build_default_model, model_fingerprint, read_metadata
from placement.models import AIModel


def register_model(slug: str, name: str, directory: Path) -> AIModel:
    """Create or refresh the AIModel row that describes a model directory."""
    config = json.loads((directory / "config.json").read_text())
    metadata = read_metadata(directory) or {}
    layers = config.get("num_hidden_layers") or config.get("n_layer") or 1
    inside_store = directory.is_relative_to(settings.MODEL_DIR)
    relative = directory.relative_to(settings.MODEL_DIR) if inside_store else directory
    model, _ = AIModel.objects.update_or_create(
        slug=slug,
        defaults={
            "name": name,
            "directory": str(relative),
            "architecture": config.get("model_type", ""),
            "layer_count": layers,
            "parameter_count": metadata.get("params", 0),
            "fingerprint": model_fingerprint(directory),
        },
    )
    return model


class Command(BaseCommand):
    help = "Train the default model (tokenizer + small Llama decoder) on text shipped with Python."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--seconds",
            type=float,
            default=480.0,
            help="Training time budget (readable text needs ~400k tokens).",
        )
        parser.add_argument("--max-steps", type=int, default=None, help="Stop after N steps instead.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--output", default=None, help="Directory (default MODEL_DIR/default).")
        parser.add_argument(
            "--if-missing", action="store_true", help="Do nothing when the model already exists."
        )

    def handle(self, *args, seconds, max_steps, seed, output, if_missing, **options) -> None:
        out_dir = Path(output) if output else settings.MODEL_DIR / "default"
        if AIModel._meta.db_table not in connection.introspection.table_names():
            # Checked first: otherwise minutes of training end in a traceback at registration.
            raise CommandError(
                "The database has no Switchyard tables yet: run `python manage.py migrate` first "
                "(`make run` does it for you)."
            )
        if if_missing and (out_dir / "config.json").exists():
            model = register_model("default", "Switchyard default model", out_dir)
            self.stdout.write(f"Default model present at {out_dir} ({model.parameter_count:,} parameters).")
            return
        budget = f"{max_steps} steps" if max_steps else f"{seconds:.0f} s of training"
        self.stdout.write(f"Building the default model into {out_dir} ({budget}); progress follows.")

        def progress(event: dict) -> None:
            progress_publish("model-build", "default", event)
            if event.get("phase") == "train" and "loss" in event:
                self.stdout.write(
                    f"  step {event['step']:>5}  loss {event['loss']:.3f}  "
                    f"{event['tokens_per_s']:>8.0f} tok/s  elapsed {event['elapsed_s']:>6.0f}s  "
                    f"eta {event['eta_s']:>5.0f}s"
                )
            else:
                details = ", ".join(f"{k}={v}" for k, v in event.items() if k != "phase")
                self.stdout.write(f"  {event.get('phase')}: {details}")

        try:
            metadata = build_default_model(
                out_dir, seconds=seconds, max_steps=max_steps, seed=seed, progress=progress
            )
        except (ValueError, OSError) as exc:
            raise CommandError(f"model build failed: {exc}") from exc
        model = register_model("default", "Switchyard default model", out_dir)
        progress_publish("model-build", "default", {"phase": "done", "params": metadata.get("params")})
        self.stdout.write(
            self.style.SUCCESS(
                f"Default model ready: {model.parameter_count:,} parameters, {model.layer_count} layers, "
                f"final loss {metadata.get('final_loss', float('nan')):.3f}."
            )
        )
