"""Classify prompts from a JSONL file without generating payloads (for evaluation).

Input: one JSON object per line with a "text" field. Output: one JSON line per input line,
in the same order: {"eligible", "sensitive", "score", "variant", "categories"}.
"""

from __future__ import annotations

import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from placement.models import ProductionEnvironment
from variants import selectors
from variants.eligibility import RequestFacts, decide_eligibility
from variants.models import SensitivityModel
from variants.services import sensitivity_model_train


class Command(BaseCommand):
    help = (
        'Read {"text": ...} lines and write one {"eligible", "sensitive", "score", "variant", '
        '"categories"} line each, in order, using the active eligibility policy and classifier.'
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--input", required=True, help="JSONL file ('-' for standard input).")
        parser.add_argument("--output", default="-", help="Where to write (default: standard output).")
        parser.add_argument(
            "--train-examples",
            type=int,
            default=None,
            help="Examples to generate if a classifier must be trained first (default: the trainer's).",
        )

    def _classifier(self, train_examples: int | None):
        if not SensitivityModel.objects.filter(active=True).exists():
            self.stderr.write(
                "No trained sensitivity model is active: training one now "
                "(run `manage.py train_sensitivity_classifier` to do this ahead of time)."
            )
            started = time.monotonic()
            row = sensitivity_model_train(n_examples=train_examples, activate=True)
            self.stderr.write(
                f"Trained sensitivity model v{row.version} in {time.monotonic() - started:.1f}s."
            )
        try:
            return selectors.active_classifier()[1]
        except selectors.ClassifierUnavailable as exc:
            raise CommandError(str(exc)) from exc

    def _ensure_database(self) -> None:
        """Apply migrations first on a database that has none yet (a fresh checkout)."""
        from django.core.management import call_command
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            self.stderr.write("The database is not set up yet: applying migrations first.")
            call_command("migrate", interactive=False, verbosity=0)

    def handle(self, *args, input: str, output: str, train_examples: int | None, **options) -> None:
        self._ensure_database()
        snapshot = selectors.active_policy()
        rules = snapshot.rules
        classifier = self._classifier(train_examples)
        # Requests that skip classification go to the bypass environment: report its kind.
        bypass_kind = "public"
        if snapshot.bypass_environment_id is not None:
            environment = ProductionEnvironment.objects.filter(pk=snapshot.bypass_environment_id).first()
            if environment is not None and environment.is_trusted:
                bypass_kind = "secured"

        source = sys.stdin if input == "-" else open(input, encoding="utf-8")  # noqa: SIM115
        sink = self.stdout if output == "-" else open(output, "w", encoding="utf-8")  # noqa: SIM115
        errors = 0
        try:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    text = record["text"] if isinstance(record, dict) else None
                    if not isinstance(text, str):
                        raise ValueError('no "text" string')
                except (ValueError, KeyError) as exc:
                    errors += 1
                    self.stderr.write(f'line {number}: not a {{"text": ...}} object ({type(exc).__name__})')
                    # Fail closed, and keep the output aligned with the input.
                    result = {"eligible": True, "sensitive": True, "score": 1.0, "variant": "secured",
                              "categories": [], "error": "unreadable line"}  # fmt: skip
                    sink.write(json.dumps(result) + "\n")
                    continue
                eligible = decide_eligibility(rules, RequestFacts(prompt=text)).eligible
                try:
                    classified = classifier.classify(text)
                    score = min(max(float(classified.score), 0.0), 1.0)
                    categories = sorted({str(category) for category in classified.categories})
                except Exception as exc:  # noqa: BLE001 - fail closed, as the gateway does
                    errors += 1
                    self.stderr.write(f"line {number}: classification failed ({type(exc).__name__})")
                    score, categories = 1.0, []
                sensitive = score >= rules.threshold
                variant = ("secured" if sensitive else "public") if eligible else bypass_kind
                result = {
                    "eligible": eligible,
                    "sensitive": sensitive,
                    "score": round(score, 6),
                    "variant": variant,
                    "categories": categories,
                }
                sink.write(json.dumps(result) + "\n")
        finally:
            if source is not sys.stdin:
                source.close()
            if sink is not self.stdout:
                sink.close()
        if errors:
            self.stderr.write(f"{errors} line(s) could not be classified normally; see above.")
