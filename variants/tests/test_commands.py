"""The training and evaluation commands of the payload classifier."""

import io
import json

import pytest
from django.core.management import call_command

from variants.models import SensitivityModel

pytestmark = pytest.mark.django_db

LINES = [
    {"text": "My SSN is 536-22-8146 and I need the tax form filled in."},
    {"text": "How do I reverse a list in Python?"},
    {"text": "hi, my card number is 4539 1488 0343 6467, exp 04/27"},
    {"text": "What does a credit score measure?"},
]


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def classify(tmp_path, *args) -> tuple[list[dict], str]:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, LINES)
    out, err = io.StringIO(), io.StringIO()
    call_command("classify_prompts", "--input", str(source), *args, stdout=out, stderr=err)
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_training_stores_an_active_versioned_artifact_with_its_metrics(settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path
    out = io.StringIO()

    call_command("train_sensitivity_classifier", "--examples", "1500", stdout=out)
    call_command("train_sensitivity_classifier", "--examples", "1500", "--seed", "1", stdout=io.StringIO())

    first, second = SensitivityModel.objects.order_by("version")
    assert (first.version, first.active, second.version, second.active) == (1, False, 2, True)
    assert second.directory == tmp_path / "sensitivity" / "v2"
    assert (second.directory / "meta.json").is_file()
    assert (tmp_path / "sensitivity" / "latest").resolve() == second.directory
    assert 0.5 < first.metrics["heldout_templates"]["f1"] <= 1.0
    assert first.n_examples == 1500
    assert "generated 1500 examples" in out.getvalue()
    assert "Sensitivity model v1 (active)" in out.getvalue()


def test_classify_prompts_writes_one_line_per_input_in_order(gateway, tmp_path):
    results, _ = classify(tmp_path)

    assert [r["sensitive"] for r in results] == [True, False, True, False]
    assert [r["variant"] for r in results] == ["secured", "public", "secured", "public"]
    assert all(r["eligible"] is True for r in results)
    assert "government_id" in results[0]["categories"]
    assert set(results[0]) == {"eligible", "sensitive", "score", "variant", "categories"}
    assert 0.0 <= results[1]["score"] < 0.5 <= results[0]["score"] <= 1.0


def test_classify_prompts_applies_the_active_eligibility_policy(gateway, tmp_path):
    gateway.policy.bypass_phrases = "python"
    gateway.policy.save()

    results, _ = classify(tmp_path)

    # The bypass goes to the policy's bypass environment, the public one in the demo.
    assert (results[1]["eligible"], results[1]["variant"]) == (False, "public")
    assert results[0]["eligible"] is True


def test_classify_prompts_trains_a_classifier_first_on_a_fresh_database(settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"

    results, err = classify(tmp_path, "--train-examples", "1500")

    assert len(results) == len(LINES)
    assert "No trained sensitivity model is active: training one now" in err
    assert SensitivityModel.objects.get().active is True


def test_if_missing_retrains_when_the_active_artifact_has_a_stale_feature_config(settings, tmp_path):
    from variants.selectors import forget_cached

    settings.ARTIFACT_DIR = tmp_path
    call_command("train_sensitivity_classifier", "--examples", "1500", stdout=io.StringIO())
    first = SensitivityModel.objects.get()
    # An artifact written by an older feature version: its config hash no longer matches.
    meta_path = first.directory / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["feature_config_hash"] = "0" * 16
    meta_path.write_text(json.dumps(meta))
    forget_cached()  # a fresh process, as `make run` starts one

    out = io.StringIO()
    call_command("train_sensitivity_classifier", "--examples", "1500", "--if-missing", stdout=out)

    assert "No usable sensitivity model" in out.getvalue()
    second = SensitivityModel.objects.get(active=True)
    assert second.version == first.version + 1
    out = io.StringIO()
    call_command("train_sensitivity_classifier", "--examples", "1500", "--if-missing", stdout=out)
    assert f"Sensitivity model v{second.version} is active." in out.getvalue()
    assert SensitivityModel.objects.count() == 2


def test_classify_prompts_sets_up_an_empty_database_before_classifying(tmp_path):
    """A fresh checkout, nothing run but the command: it migrates, trains, then classifies."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    source = tmp_path / "in.jsonl"
    write_jsonl(source, LINES)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE") and not key.startswith("PYTEST")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        VAR_DIR=str(tmp_path / "var"),
        ARTIFACT_DIR=str(tmp_path / "var" / "artifacts"),
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "classify_prompts", "--input", str(source), "--train-examples", "1500"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "applying migrations first" in done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["sensitive"] for r in results] == [True, False, True, False]
