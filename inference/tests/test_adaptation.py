"""LoRA adaptation on real (tiny) models: training, checkpoint and resume, serving adapters per
request, and the split-inference helper. No Django: the module is pure torch + peft."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from inference import adaptation, runtime
from inference.adaptation import (
    AdapterBank,
    LoraSettings,
    adapter_for_model,
    adapter_read,
    adapter_weights_for_layers,
    adapters_applied,
    train_adapter,
)

# Short, repetitive texts a few LoRA steps can pick up; one thread so runs are bit-identical.
TEXTS = [f"Quokka {i} likes the blue harbour; quokka {i} swims at noon." for i in range(24)]
OTHER_TEXTS = [f"Error {i}: the disk at rack {i} is full, replace it before Friday." for i in range(24)]
# Every linear layer of the blocks: on a model this small, attention alone moves the output little.
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA = LoraSettings(
    rank=4,
    alpha=16,
    steps=16,
    learning_rate=3e-2,
    batch_size=4,
    seq_len=32,
    checkpoint_every=5,
    num_threads=1,
    target_modules=ALL_LINEAR,
)
PROMPT = "Quokka 3 likes"


def _train(model_dir: Path, out: Path, texts=TEXTS, lora=LORA, **options) -> adaptation.TrainingOutcome:
    return train_adapter(model_dir, texts, lora, out_dir=out, **options)


def _tensors(directory: Path) -> dict[str, torch.Tensor]:
    return adapter_read(directory).tensors


@pytest.fixture(scope="module")
def trained(tiny_llama_dir, tmp_path_factory) -> dict[str, Path]:
    """Two adapters on the tiny Llama model, trained on different texts."""
    root = tmp_path_factory.mktemp("adapters")
    _train(tiny_llama_dir, root / "quokka")
    _train(tiny_llama_dir, root / "disk", texts=OTHER_TEXTS)
    return {"quokka": root / "quokka", "disk": root / "disk"}


def _greedy(loaded: runtime.LoadedModel, prompt: str = PROMPT, tokens: int = 12) -> list[int]:
    return runtime.generate(loaded, prompt, max_new_tokens=tokens, stop_on_eos=False).token_ids


def test_an_adapter_trained_a_few_steps_changes_the_greedy_output_the_same_way_every_time(
    tiny_llama_dir, trained, tmp_path
):
    # Given a second run with the same seed, data and settings
    again = _train(tiny_llama_dir, tmp_path / "again")

    # Then it learnt exactly the same adapter (bit for bit on the CPU)
    first, second = _tensors(trained["quokka"]), _tensors(tmp_path / "again")
    assert first.keys() == second.keys() and len(first) == 8 * 7 * 2  # 8 layers x 7 linears x (A, B)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert again.metrics["loss_curve"][-1] < again.metrics["loss_curve"][0]
    assert again.metrics["heldout_perplexity"] < again.metrics["base_heldout_perplexity"]

    # And applying it changes the greedy continuation, identically for both copies
    loaded = runtime.get_model(tiny_llama_dir)
    base = _greedy(loaded)
    with adapters_applied(adapter_for_model(loaded.model, tiny_llama_dir, trained["quokka"])):
        adapted = _greedy(loaded)
    with adapters_applied(adapter_for_model(loaded.model, tiny_llama_dir, tmp_path / "again")):
        adapted_again = _greedy(loaded)
    assert adapted != base
    assert adapted == adapted_again
    # The base model itself is untouched once the block ends.
    assert _greedy(loaded) == base


def test_a_run_resumed_from_its_checkpoint_ends_with_the_same_adapter_as_an_uninterrupted_one(
    tiny_llama_dir, tmp_path
):
    # Dropout draws from torch's global generator, so the checkpoint must carry that state too.
    lora = LoraSettings(**{**LORA.to_dict(), "dropout": 0.1, "target_modules": None})
    uninterrupted = _train(tiny_llama_dir, tmp_path / "whole", lora=lora)

    # Given a run paused at step 7 (after its step-5 checkpoint, so it writes a fresh one)
    paused = train_adapter(
        tiny_llama_dir,
        TEXTS,
        lora,
        checkpoint_dir=tmp_path / "checkpoints",
        control=lambda step: "pause" if step == 7 else None,
    )
    assert (paused.status, paused.step, paused.checkpoint.name) == ("paused", 7, "step-00000007.pt")
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*.pt")) == [
        "step-00000005.pt",
        "step-00000007.pt",
    ]

    # When it is resumed (a new call, as a new worker would)
    resumed = _train(tiny_llama_dir, tmp_path / "resumed", lora=lora, checkpoint_dir=tmp_path / "checkpoints")

    # Then it continued from step 7 and ended where the uninterrupted run ended
    assert (resumed.status, resumed.resumed_from_step, resumed.step) == ("completed", 7, 16)
    assert resumed.loss_curve == uninterrupted.loss_curve
    whole, continued = _tensors(tmp_path / "whole"), _tensors(tmp_path / "resumed")
    assert all(torch.equal(whole[key], continued[key]) for key in whole)


def test_a_checkpoint_from_other_settings_is_refused(tiny_llama_dir, tmp_path):
    train_adapter(tiny_llama_dir, TEXTS, LORA, checkpoint_dir=tmp_path, control=lambda step: "pause")
    other = LoraSettings(**{**LORA.to_dict(), "rank": 2})
    with pytest.raises(adaptation.CheckpointMismatch):
        train_adapter(tiny_llama_dir, TEXTS, other, checkpoint_dir=tmp_path)


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # peft vs transformers 5
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_served_adapter_gives_the_same_logits_as_peft_itself(family, model_dirs, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model_dir = model_dirs[family]
    _train(
        model_dir,
        tmp_path / "adapter",
        lora=LoraSettings(**{**LORA.to_dict(), "steps": 6, "target_modules": None}),
    )
    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa"), tmp_path / "adapter"
    ).eval()
    loaded = runtime.get_model(model_dir)
    ids = torch.tensor([runtime.encode_prompt(loaded, PROMPT)])

    adapter = adapter_for_model(loaded.model, model_dir, tmp_path / "adapter")
    with torch.no_grad():
        expected = reference(input_ids=ids).logits
        with adapters_applied(adapter):
            served = loaded.model(input_ids=ids).logits
        base = loaded.model(input_ids=ids).logits

    assert torch.equal(served, expected)
    assert (served - base).abs().max().item() > 1e-3
    modules = {key.split(".lora_")[0].rsplit(".", 1)[1] for key in _tensors(tmp_path / "adapter")}
    assert modules == (
        {"q_proj", "k_proj", "v_proj", "o_proj"} if family == "llama" else {"c_attn", "c_proj"}
    )


def _logits(loaded: runtime.LoadedModel) -> torch.Tensor:
    """Return the logits of every greedy step: a leak from another adapter would change them."""
    steps: list[torch.Tensor] = []
    runtime.generate(loaded, PROMPT, max_new_tokens=12, stop_on_eos=False, logits_out=steps)
    return torch.stack(steps)


def test_concurrent_requests_with_different_adapters_each_get_only_their_own(tiny_llama_dir, trained):
    # Given each adapter's output (and the base model's) computed alone
    loaded = runtime.get_model(tiny_llama_dir)
    adapters = {name: adapter_for_model(loaded.model, tiny_llama_dir, path) for name, path in trained.items()}
    adapters["none"] = None
    expected = {}
    for name, adapter in adapters.items():
        with adapters_applied(adapter):
            expected[name] = _logits(loaded)
    names = list(expected)
    assert all(not torch.equal(expected[a], expected[b]) for a in names for b in names if a != b)

    # When nine requests (three per adapter) run at once on threads of one process
    barrier = threading.Barrier(9)
    results: dict[tuple[str, int], torch.Tensor] = {}

    def serve(name: str, copy: int) -> None:
        barrier.wait()
        with adapters_applied(adapters[name]):
            results[(name, copy)] = _logits(loaded)

    threads = [threading.Thread(target=serve, args=(name, copy)) for copy in range(3) for name in adapters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then every request got exactly its own adapter's output
    assert len(results) == 9
    for (name, _), logits in results.items():
        assert torch.equal(logits, expected[name]), name


def test_several_adapters_stay_loaded_side_by_side_without_reloading_the_base(tiny_llama_dir, trained):
    loaded = runtime.get_model(tiny_llama_dir)
    weights_before = loaded.model.model.layers[0].self_attn.q_proj.weight.data_ptr()
    first = adapter_for_model(loaded.model, tiny_llama_dir, trained["quokka"])
    second = adapter_for_model(loaded.model, tiny_llama_dir, trained["disk"])

    # Asking again returns the attached adapter, not a fresh read
    assert adapter_for_model(loaded.model, tiny_llama_dir, trained["quokka"]) is first
    bank = adaptation.adapter_bank(loaded.model)
    assert {str(trained["quokka"].resolve()), str(trained["disk"].resolve())} <= set(bank.names())
    assert loaded.model.model.layers[0].self_attn.q_proj.weight.data_ptr() == weights_before
    assert runtime.get_model(tiny_llama_dir) is loaded
    assert first.deltas.keys() == second.deltas.keys()


def test_an_adapter_for_another_base_model_is_refused(tiny_llama_dir, tiny_gpt2_dir, trained, tmp_path):
    import json
    import shutil

    # An adapter whose metadata names another model's fingerprint
    copy = tmp_path / "foreign"
    shutil.copytree(trained["quokka"], copy)
    meta = copy / adaptation.ADAPTER_METADATA_FILENAME
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "base_fingerprint": "0" * 64}))
    loaded = runtime.get_model(tiny_llama_dir)
    with pytest.raises(adaptation.AdapterError, match="another base model"):
        adapter_for_model(loaded.model, tiny_llama_dir, copy)
    # And a Llama adapter does not fit GPT-2's modules at all
    gpt2 = runtime.get_model(tiny_gpt2_dir)
    with pytest.raises(adaptation.AdapterError, match="no module"):
        AdapterBank.for_model(gpt2.model).load_dir(trained["quokka"])


def test_adapter_weights_for_layers_returns_only_that_partitions_tensors(trained):
    weights = adapter_weights_for_layers(trained["quokka"], 2, 5)

    layers = {adaptation.layer_index_of(key) for key in weights}
    assert layers == {2, 3, 4}
    assert len(weights) == 3 * 7 * 2
    everything = _tensors(trained["quokka"])
    assert all(torch.equal(weights[key], everything[key]) for key in weights)
    with pytest.raises(ValueError):
        adapter_weights_for_layers(trained["quokka"], 4, 4)


def test_split_partitions_with_their_share_of_the_adapter_match_the_whole_adapted_model(
    tiny_llama_dir, trained
):
    from inference.partition import PartitionRunner, generate_split

    loaded = runtime.get_model(tiny_llama_dir)
    whole = adapter_for_model(loaded.model, tiny_llama_dir, trained["quokka"])
    with adapters_applied(whole):
        expected = _greedy(loaded)

    # Each partition holds its layers' weights and only its layers' adapter tensors
    config = adapter_read(trained["quokka"]).config
    runners = [PartitionRunner(tiny_llama_dir, 0, 3), PartitionRunner(tiny_llama_dir, 3, 8)]
    parts = []
    for runner in runners:
        bank = AdapterBank.for_layers(
            runner.layers, start_layer=runner.start_layer, layer_prefix=runner.layout.layer_prefix
        )
        tensors = adapter_weights_for_layers(trained["quokka"], runner.start_layer, runner.end_layer)
        parts.append(bank.load("quokka", tensors, config))
    assert [len(part.deltas) for part in parts] == [3 * 7, 5 * 7]

    prompt_ids = runtime.encode_prompt(loaded, PROMPT)
    with adapters_applied(*parts):
        split = generate_split(runners, prompt_ids, max_new_tokens=12, stop_on_eos=False)
    plain = generate_split(runners, prompt_ids, max_new_tokens=12, stop_on_eos=False)

    assert split.token_ids == expected
    assert plain.token_ids == _greedy(loaded)


@pytest.mark.parametrize(
    ("field", "value"),
    [("rank", 0), ("rank", -2), ("steps", 0), ("learning_rate", 0.0), ("dropout", 1.0), ("seq_len", 1)],
)
def test_bad_lora_settings_are_named(field, value):
    problems = LoraSettings(**{field: value}).problems()
    assert list(problems) == [field]


def test_a_dataset_without_usable_text_is_refused(tiny_llama_dir):
    with pytest.raises(adaptation.DatasetError):
        train_adapter(tiny_llama_dir, ["", "   "], LORA)


def test_learning_rate_warms_up_then_decays_to_its_floor():
    lora = LoraSettings(steps=100, warmup_steps=10, learning_rate=1e-3, min_lr_ratio=0.1)
    assert adaptation.learning_rate_at(lora, 0) == pytest.approx(1e-4)
    assert adaptation.learning_rate_at(lora, 9) == pytest.approx(1e-3)
    assert adaptation.learning_rate_at(lora, 100) == pytest.approx(1e-4)
    assert adaptation.downsample_curve(list(range(10)), points=5) == [0.5, 2.5, 4.5, 6.5, 8.5]
