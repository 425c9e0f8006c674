import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from inference.modelbuild import (
    METADATA_FILENAME,
    build_default_model,
    load_corpus,
    model_fingerprint,
    read_metadata,
)
from inference.tests.conftest import TINY_BUILD, TINY_STEPS


def test_built_directory_holds_a_llama_model_of_at_least_eight_layers(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    config = json.loads((tiny_llama_dir / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)

    assert config["model_type"] == "llama"
    assert config["num_hidden_layers"] >= 8
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (tiny_llama_dir / "model.safetensors").is_file()


def test_tokenizer_round_trips_text_and_defines_the_special_tokens(tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    text = "The function returns a list of (key, value) pairs. Ünïcode too: 3 ≥ 2."

    ids = tokenizer(text)["input_ids"]

    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert {tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token} == {
        "<s>",
        "</s>",
        "<pad>",
        "<unk>",
    }
    assert len(tokenizer) == TINY_BUILD["vocab_size"]


def test_metadata_records_the_run_and_the_weight_fingerprint(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    metadata = read_metadata(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)

    assert metadata == json.loads((tiny_llama_dir / METADATA_FILENAME).read_text())
    assert metadata["steps"] == TINY_STEPS
    assert metadata["seed"] == 0
    assert metadata["layers"] == 8
    assert metadata["params"] == sum(parameter.numel() for parameter in model.parameters())
    assert metadata["weights_sha256"] == model_fingerprint(tiny_llama_dir)
    assert metadata["corpus"]["chars"] == TINY_BUILD["corpus_max_chars"]
    assert "pydoc_data.topics" in metadata["corpus"]["description"]
    assert math.isfinite(metadata["final_loss"])
    # Training from scratch starts near ln(vocab) = 6.6 and must have gone down.
    assert metadata["final_loss"] < math.log(TINY_BUILD["vocab_size"])


def test_same_seed_and_step_budget_give_identical_loss_and_weights(tmp_path):
    options = {**TINY_BUILD, "corpus_max_chars": 60_000, "vocab_size": 512}

    first = build_default_model(tmp_path / "a", max_steps=6, seed=7, **options)
    second = build_default_model(tmp_path / "b", max_steps=6, seed=7, **options)
    other_seed = build_default_model(tmp_path / "c", max_steps=6, seed=8, **options)

    assert first["final_loss"] == second["final_loss"]
    assert first["weights_sha256"] == second["weights_sha256"]
    assert other_seed["weights_sha256"] != first["weights_sha256"]


def test_progress_reports_step_loss_speed_and_remaining_time(tmp_path):
    events = []
    options = {**TINY_BUILD, "corpus_max_chars": 60_000, "vocab_size": 512, "progress_every": 2}

    build_default_model(tmp_path / "m", max_steps=4, seed=0, progress=events.append, **options)

    train_reports = [event for event in events if event["phase"] == "train" and "loss" in event]
    assert [event["step"] for event in train_reports] == [2, 4]
    assert {"loss", "tokens_per_s", "elapsed_s", "eta_s"} <= set(train_reports[0])
    assert train_reports[-1]["eta_s"] == 0
    assert events[-1]["phase"] == "done"


def test_rebuilding_replaces_the_previous_model(tmp_path):
    options = {**TINY_BUILD, "corpus_max_chars": 60_000, "vocab_size": 512}
    out_dir = tmp_path / "model"

    first = build_default_model(out_dir, max_steps=2, seed=1, **options)
    second = build_default_model(out_dir, max_steps=2, seed=2, **options)

    assert read_metadata(out_dir)["seed"] == 2
    assert model_fingerprint(out_dir) == second["weights_sha256"] != first["weights_sha256"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_unknown_build_option_is_refused(tmp_path):
    with pytest.raises(TypeError, match="hidden_sise"):
        build_default_model(tmp_path / "m", max_steps=1, hidden_sise=32)


def test_corpus_is_python_reference_text_in_a_fixed_order():
    first = load_corpus(max_chars=80_000)
    second = load_corpus(max_chars=80_000)

    assert first == second
    assert first[0].source.startswith("pydoc_data.topics:")
    assert sum(len(document.text) for document in first) == 80_000


def test_fingerprint_changes_when_a_weight_changes(tmp_path):
    weights = {"w": torch.zeros(4)}
    save_file(weights, tmp_path / "model.safetensors")
    before = model_fingerprint(tmp_path)

    weights = load_file(tmp_path / "model.safetensors")
    weights["w"][2] = 1.0
    save_file(weights, tmp_path / "model.safetensors")

    assert model_fingerprint(tmp_path) != before
    assert len(before) == 64


def test_fingerprint_of_a_directory_without_weights_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weight files"):
        model_fingerprint(tmp_path)


@pytest.mark.django_db
def test_build_command_refuses_an_unmigrated_database_before_training(tmp_path, monkeypatch):
    from django.core.management import CommandError, call_command
    from django.db import connection

    monkeypatch.setattr(connection.introspection, "table_names", lambda *args, **kwargs: [])
    with pytest.raises(CommandError, match="manage.py migrate"):
        call_command("build_default_model", output=str(tmp_path / "model"), max_steps=2)
    assert not (tmp_path / "model").exists()  # nothing was trained or written
