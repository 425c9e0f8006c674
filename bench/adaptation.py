"""Model adaptation (LoRA) on the default model: training speed, time to the first adapted
token, and the cost of choosing an adapter per request.

Runs in this process on the real default model in ``MODEL_DIR/default`` (when it is absent,
a small one is built with the project's builder and ``adaptation.model`` says so). The data
are passages of the builder's own corpus (Python documentation), so nothing is downloaded.

Figures:

* ``adaptation.steps_per_s``: LoRA training steps per second (rank 8 on q/k/v/o, batch 4 x
  128 tokens, float32, torch's default thread count), measured on the job below after its
  first two steps (allocator and thread-pool warm-up);
* ``adaptation.first_token_s``: from the start of an adaptation job (the moment it is
  approved and its worker begins: base model load, LoRA setup, the job's training steps,
  held-out evaluation, writing the versioned adapter) to the first token of a prompt served
  with that adapter by an already warm serving model (adapter read from disk and attached,
  prefill, first token). Celery dispatch (milliseconds) is not included. The job is
  ``adaptation.first_token_job_steps`` steps long; a longer job adds steps / steps_per_s.
  ``adaptation.first_token_after_training_s`` is the part after the adapter is written;
* ``adaptation.switch_ms``: the per-request cost of switching the serving model from one
  adapter to another with several loaded side by side (look-up of the attached adapter and
  activation for the request's context), mean over many alternations; the target is
  <= 50 ms. ``adaptation.adapter_load_ms`` is the one-off cost of the first request that
  uses an adapter (read + attach), and ``adaptation.peft_set_adapter_ms`` the same switch
  done with peft's own ``set_adapter`` on a PeftModel, for comparison;
* ``adaptation.decode_overhead_pct``: extra decode time per token with an adapter applied
  (the LoRA hooks' arithmetic) over the base model alone (``..._ms_per_token_base`` and
  ``..._adapted`` are the medians it compares).
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from inference import adaptation, runtime
from inference.modelbuild import build_default_model, load_corpus

FIRST_TOKEN_STEPS = 20
SWITCHES = 2000
PROMPT = "The list type supports"


def _model_dir() -> tuple[Path, str]:
    from django.conf import settings

    default = Path(settings.MODEL_DIR) / "default"
    if (default / "config.json").is_file():
        return default, "default"
    small = Path(settings.VAR_DIR) / "bench" / "adaptation-small-model"
    if not (small / "config.json").is_file():
        # No default model on this machine: a small one from the same builder, said so in the figures.
        build_default_model(
            small, max_steps=60, seed=0, hidden_size=128, intermediate_size=256, num_layers=4, num_heads=4
        )
    return small, "built-small (MODEL_DIR/default absent)"


def _texts(count: int) -> list[str]:
    """Return passages of ~600 characters from the builder's corpus (about 128 tokens each)."""
    passages: list[str] = []
    for document in load_corpus(max_chars=count * 2000):
        text = document.text
        for start in range(0, len(text) - 300, 600):
            passages.append(text[start : start + 600])
            if len(passages) == count:
                return passages
    return passages


def _lora(steps: int) -> adaptation.LoraSettings:
    return adaptation.LoraSettings(
        rank=8, alpha=16, steps=steps, learning_rate=1e-3, batch_size=4, seq_len=128, checkpoint_every=0
    )


def _job_figures(model_dir: Path, texts: list[str], steps: int, work: Path) -> dict[str, float | int]:
    """Run one adaptation job and serve its first token: steps/s and time to first adapted token."""
    loaded = runtime.get_model(model_dir)  # the serving worker's warm model
    runtime.generate(loaded, PROMPT, max_new_tokens=1)
    fingerprint = adaptation.base_fingerprint(model_dir)
    stamps: list[float] = []
    started = time.perf_counter()
    adaptation.train_adapter(
        model_dir,
        texts,
        _lora(steps),
        out_dir=work / "first-token",
        metadata={"base_fingerprint": fingerprint},
        progress=lambda _: stamps.append(time.perf_counter()),
    )
    trained = time.perf_counter()
    adapter = adaptation.adapter_for_model(loaded.model, model_dir, work / "first-token")
    with adaptation.adapters_applied(adapter):
        runtime.generate(loaded, PROMPT, max_new_tokens=1)
    finished = time.perf_counter()
    return {
        # Steps 3.. only: the first two pay for allocator and thread-pool warm-up.
        "adaptation.steps_per_s": round((len(stamps) - 2) / (stamps[-1] - stamps[1]), 4),
        "adaptation.first_token_s": round(finished - started, 3),
        "adaptation.first_token_job_steps": steps,
        "adaptation.first_token_after_training_s": round(finished - trained, 4),
    }


def _switch_figures(model_dir: Path, texts: list[str], work: Path, switches: int) -> dict[str, float]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    loaded = runtime.get_model(model_dir)
    directories = []
    for index in range(4):
        # Different seeds give different adapters at the cost of one step each.
        lora = adaptation.LoraSettings(**{**_lora(1).to_dict(), "seed": index, "heldout_fraction": 0.0})
        directory = work / f"switch-{index}"
        adaptation.train_adapter(model_dir, texts[:16], lora, out_dir=directory)
        directories.append(directory)

    load_ms = []
    for directory in directories:
        started = time.perf_counter()
        adaptation.adapter_for_model(loaded.model, model_dir, directory)
        load_ms.append((time.perf_counter() - started) * 1000.0)

    # Per request: find the request's adapter among those attached and activate it.
    started = time.perf_counter()
    for index in range(switches):
        adapter = adaptation.adapter_for_model(loaded.model, model_dir, directories[index % 4])
        with adaptation.adapters_applied(adapter):
            pass
    switch_ms = (time.perf_counter() - started) * 1000.0 / switches

    # Decode cost of the hooks: 32 tokens with and without an adapter, alternated so that a
    # busy moment on a shared machine hits both; medians of five each, after a warm-up pair.
    adapter = adaptation.adapter_for_model(loaded.model, model_dir, directories[0])
    per_token: dict[bool, list[float]] = {False: [], True: []}
    for repetition in range(6):
        for applied in (False, True):
            with adaptation.adapters_applied(adapter if applied else None):
                result = runtime.generate(loaded, PROMPT, max_new_tokens=32, stop_on_eos=False)
            if repetition:
                per_token[applied].append(result.timings.decode_ms_per_token)
    base_ms, adapted_ms = statistics.median(per_token[False]), statistics.median(per_token[True])

    # The same switch done by peft: set_adapter on a PeftModel holding the four adapters.
    with warnings.catch_warnings():
        # peft calls a transformers API that transformers 5 marks deprecated; noise here.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        peft_model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(model_dir), directories[0], adapter_name="a0"
        )
        for index, directory in enumerate(directories[1:], start=1):
            peft_model.load_adapter(directory, adapter_name=f"a{index}")
    peft_switches = max(switches // 10, 50)
    started = time.perf_counter()
    for index in range(peft_switches):
        peft_model.set_adapter(f"a{index % 4}")
    peft_ms = (time.perf_counter() - started) * 1000.0 / peft_switches

    return {
        "adaptation.switch_ms": round(switch_ms, 4),
        "adaptation.adapter_load_ms": round(statistics.median(load_ms), 2),
        "adaptation.peft_set_adapter_ms": round(peft_ms, 4),
        "adaptation.decode_overhead_pct": round((adapted_ms / base_ms - 1.0) * 100.0, 1),
        "adaptation.decode_ms_per_token_base": round(base_ms, 3),
        "adaptation.decode_ms_per_token_adapted": round(adapted_ms, 3),
    }


def run(quick: bool = False) -> dict[str, float | int | bool | str]:
    model_dir, model_name = _model_dir()
    texts = _texts(64)
    config = runtime.get_model(model_dir).model.config
    figures: dict[str, float | int | bool | str] = {
        "adaptation.model": model_name,
        "adaptation.model_layers": int(config.num_hidden_layers),
        "adaptation.model_hidden_size": int(config.hidden_size),
        "adaptation.threads": torch.get_num_threads(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-adaptation-") as work:
        figures.update(_job_figures(model_dir, texts, 5 if quick else FIRST_TOKEN_STEPS, Path(work)))
        figures.update(_switch_figures(model_dir, texts, Path(work), 200 if quick else SWITCHES))
    return figures


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    django.setup()
    for key, value in run(quick=True).items():
        print(f"{key:<45} {value}")
