"""Model adaptation with LoRA (patent paragraph 33: parameter-efficient fine tuning).

Pure torch + peft, no Django: the Celery tasks, the benchmark and the tests call it.

- :func:`train_adapter` fine-tunes a LoRA adapter on a list of texts. The run is a pure
  function of (base model, texts, settings): the LoRA initialisation, the batches and the
  dropout masks all come from the seed, and a checkpoint holds everything that evolves
  (adapter weights, optimizer moments, both random generators, the step, the loss curve),
  so a run paused at any checkpoint and resumed, here or on another worker, ends with the
  same adapter as a run that was never interrupted (bit for bit on the CPU with the same
  thread count).
- The adapter, the *model adaptation payload*, is written in peft's own format
  (``adapter_config.json`` + ``adapter_model.safetensors``) plus ``switchyard-adapter.json``
  (base model fingerprint, dataset, metrics), so any peft user can load it too.
- :class:`AdapterBank` applies adapters at inference time without touching the base
  weights: each LoRA target module gets one forward hook that adds ``scale * B(A(x))`` for
  the adapter active *in the calling context* (a ``ContextVar``). Several adapters stay
  loaded side by side; each request picks its own, and concurrent requests on other
  threads never see it. Switching is setting a context variable, not reloading anything.
- :func:`adapter_weights_for_layers` extracts the tensors of a layer range so that, in
  split inference, the adapter travels with the partition whose layers it modifies.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import os
import re
import shutil
import threading
import time
import uuid
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported inside the functions that compute: the web process imports this module
# (for the settings, the errors and the fingerprint check) and must not pay for torch.

ADAPTER_METADATA_FILENAME = "switchyard-adapter.json"
ADAPTER_WEIGHTS_FILENAME = "adapter_model.safetensors"
ADAPTER_CONFIG_FILENAME = "adapter_config.json"
CHECKPOINT_FORMAT = 1
# Checkpoints kept per job: the newest, plus one in case the newest is cut short by a crash.
CHECKPOINTS_KEPT = 2
# Points of the loss curve kept in metadata (longer runs are averaged into this many buckets).
LOSS_CURVE_POINTS = 200
# Adapters kept loaded per base model; the least recently used beyond this are dropped.
ADAPTERS_PER_MODEL = 32

# LoRA targets per model family: every attention projection (peft's own default for Llama
# is only q and v; all four adapt noticeably faster for the same rank). Families not named
# here use peft's built-in table.
DEFAULT_TARGET_MODULES: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "gpt2": ("c_attn", "c_proj"),
}
# How decoder layers are named in the state dict keys of the supported families.
_LAYER_INDEX = re.compile(r"\.(?:layers|h|blocks|layer)\.(\d+)\.")
_PEFT_PREFIX = "base_model.model."


class AdaptationError(Exception):
    """An adaptation that cannot run as configured; the message is safe to show."""


class DatasetError(AdaptationError):
    """The dataset is empty or yields no usable training example."""


class AdapterError(AdaptationError):
    """An adapter directory is missing, malformed, or does not fit the base model."""


class CheckpointMismatch(AdaptationError):
    """A checkpoint was written by a run with other settings, model or data."""


@dataclass(frozen=True)
class LoraSettings:
    """The LoRA configuration and the optimisation schedule of one adaptation run."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    # None: the family's default (DEFAULT_TARGET_MODULES, else peft's table).
    target_modules: tuple[str, ...] | None = None
    steps: int = 100
    learning_rate: float = 1e-3
    warmup_steps: int = 0
    # The learning rate decays along a cosine to this fraction of its peak by the last step.
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    batch_size: int = 4
    seq_len: int = 128
    seed: int = 0
    checkpoint_every: int = 25
    heldout_fraction: float = 0.1
    # 0 leaves torch's thread count alone. A fixed count is what makes resumed runs
    # bit-identical to uninterrupted ones (the order of float sums depends on it).
    num_threads: int = 0

    def problems(self) -> dict[str, str]:
        """Return the invalid fields with a message each (empty when the settings are usable)."""
        found: dict[str, str] = {}
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank <= 0:
            found["rank"] = "The LoRA rank must be a positive integer."
        elif self.rank > 1024:
            found["rank"] = "The LoRA rank must be at most 1024."
        if not self.alpha > 0:
            found["alpha"] = "LoRA alpha must be positive."
        if not 0.0 <= self.dropout < 1.0:
            found["dropout"] = "Dropout must lie in [0, 1)."
        if self.target_modules is not None and not self.target_modules:
            found["target_modules"] = "Name at least one module, or leave it out for the default."
        if not 1 <= self.steps <= 1_000_000:
            found["steps"] = "Steps must lie between 1 and 1,000,000."
        if not 0.0 < self.learning_rate <= 1.0:
            found["learning_rate"] = "The learning rate must lie in (0, 1]."
        if self.warmup_steps < 0:
            found["warmup_steps"] = "Warm-up steps cannot be negative."
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            found["min_lr_ratio"] = "min_lr_ratio must lie in [0, 1]."
        if self.weight_decay < 0 or self.grad_clip <= 0:
            found["grad_clip"] = "Weight decay must be >= 0 and the gradient clip > 0."
        if not 1 <= self.batch_size <= 1024:
            found["batch_size"] = "The batch size must lie between 1 and 1024."
        if not 2 <= self.seq_len <= 65536:
            found["seq_len"] = "The sequence length must lie between 2 and 65536 tokens."
        if self.checkpoint_every < 0:
            found["checkpoint_every"] = "checkpoint_every cannot be negative (0: no periodic checkpoints)."
        if not 0.0 <= self.heldout_fraction < 1.0:
            found["heldout_fraction"] = "The held-out fraction must lie in [0, 1)."
        if self.num_threads < 0:
            found["num_threads"] = "The thread count cannot be negative."
        return found

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON values."""
        values = asdict(self)
        values["target_modules"] = list(self.target_modules) if self.target_modules else None
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LoraSettings:
        """Return settings from JSON values; raise AdaptationError on an unknown field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise AdaptationError(f"unknown LoRA settings: {', '.join(unknown)}")
        values = dict(values)
        targets = values.get("target_modules")
        if targets is not None:
            if isinstance(targets, str):
                targets = [part.strip() for part in targets.split(",") if part.strip()]
            values["target_modules"] = tuple(str(name) for name in targets)
        return cls(**values)

    def digest(self) -> str:
        """Return a short hash of everything that shapes the run (the checkpoint's identity)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def target_modules_for(model_type: str, lora: LoraSettings) -> list[str] | None:
    """Return the LoRA target module names for a family (None lets peft choose)."""
    if lora.target_modules:
        return list(lora.target_modules)
    default = DEFAULT_TARGET_MODULES.get(model_type)
    return list(default) if default else None


# --- data -------------------------------------------------------------------------------


def texts_digest(texts: Sequence[str]) -> str:
    """Return the sha256 of a dataset (its texts, in order)."""
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def encode_examples(tokenizer, texts: Sequence[str], seq_len: int) -> list[list[int]]:
    """Return each text as token ids (begin and end markers included), cut to ``seq_len``.

    Texts that give fewer than two tokens teach nothing (no next token) and are dropped.
    """
    eos = tokenizer.eos_token_id
    examples = []
    for text in texts:
        if not text or not text.strip():
            continue
        ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
        if eos is not None and (not ids or ids[-1] != eos):
            ids.append(eos)
        ids = ids[:seq_len]
        if len(ids) >= 2:
            examples.append(ids)
    return examples


def split_heldout(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Return (train, held-out) example indices: a seeded shuffle, at least one of each when
    there are five examples or more, and no held-out set below that."""
    import torch

    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed + 7919)).tolist()
    heldout_count = 0
    if count >= 5 and fraction > 0:
        heldout_count = min(count - 1, max(1, round(count * fraction)))
    return sorted(order[heldout_count:]), sorted(order[:heldout_count])


def _batch(examples: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return right-padded input ids and the attention mask of a list of examples."""
    import torch

    width = max(len(ids) for ids in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, ids in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = 1
    return input_ids, mask


def _token_losses(model: nn.Module, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Return the next-token losses of every real (non-padding) position, flattened."""
    from torch import nn

    logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
    targets = input_ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    losses = nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="none"
    )
    return losses[targets.reshape(-1) != -100]


def perplexity(model: nn.Module, examples: list[list[int]], *, pad_id: int, batch_size: int = 8) -> float:
    """Return exp(mean next-token loss) over the examples (NaN when there are none)."""
    import torch

    if not examples:
        return float("nan")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            input_ids, mask = _batch(examples[start : start + batch_size], pad_id)
            losses = _token_losses(model, input_ids.to(device), mask.to(device))
            total += float(losses.sum())
            count += losses.numel()
    if was_training:
        model.train()
    return math.exp(total / count) if count else float("nan")


def learning_rate_at(lora: LoraSettings, step: int) -> float:
    """Return the learning rate of a step: linear warm-up, then a cosine down to the floor."""
    if step < lora.warmup_steps:
        return lora.learning_rate * (step + 1) / lora.warmup_steps
    span = max(lora.steps - lora.warmup_steps, 1)
    progress = min((step - lora.warmup_steps) / span, 1.0)
    floor = lora.learning_rate * lora.min_lr_ratio
    return floor + (lora.learning_rate - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def downsample_curve(values: Sequence[float], points: int = LOSS_CURVE_POINTS) -> list[float]:
    """Return at most ``points`` values: bucket means of a longer curve, the curve itself otherwise."""
    if len(values) <= points:
        return [round(float(v), 5) for v in values]
    edges = [round(i * len(values) / points) for i in range(points + 1)]
    return [round(sum(values[a:b]) / (b - a), 5) for a, b in zip(edges, edges[1:], strict=False) if b > a]


# --- checkpoints ------------------------------------------------------------------------


def checkpoint_latest(checkpoint_dir: Path | str | None) -> Path | None:
    """Return the newest complete checkpoint file in a directory, if any."""
    if checkpoint_dir is None:
        return None
    directory = Path(checkpoint_dir)
    if not directory.is_dir():
        return None
    files = sorted(path for path in directory.glob("step-*.pt") if path.stem.split("-")[1].isdigit())
    return files[-1] if files else None


def checkpoint_step(path: Path | str) -> int:
    """Return the step a checkpoint file was written at (from its name)."""
    return int(Path(path).stem.split("-")[1])


def _checkpoint_save(directory: Path, state: dict[str, Any]) -> Path:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step-{state['step']:08d}.pt"
    # Written beside and renamed: a crash mid-write leaves the previous checkpoint usable.
    temporary = directory / f".tmp-{uuid.uuid4().hex[:8]}.pt"
    torch.save(state, temporary)
    os.replace(temporary, path)
    for old in sorted(directory.glob("step-*.pt"))[:-CHECKPOINTS_KEPT]:
        old.unlink(missing_ok=True)
    return path


def _checkpoint_load(path: Path) -> dict[str, Any]:
    import torch

    # weights_only: a checkpoint is tensors, numbers, strings and lists, never pickled code.
    return torch.load(path, map_location="cpu", weights_only=True)


# --- training ---------------------------------------------------------------------------

ProgressCallback = Callable[[dict[str, Any]], None]
# Called after every step with the number of steps done; returns "pause", "cancel" or None.
ControlCallback = Callable[[int], str | None]


@dataclass
class TrainingOutcome:
    """How a run ended: ``completed`` (adapter written), ``paused`` (checkpoint written) or
    ``cancelled``; the step reached, the metrics, and where the adapter or checkpoint is."""

    status: str
    step: int
    loss_curve: list[float] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    adapter_dir: Path | None = None
    checkpoint: Path | None = None
    resumed_from_step: int = 0


def _load_base(model_dir: Path, device: torch.device):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    from inference.runtime import ATTENTION_IMPLEMENTATION, ModelLoadError

    transformers_logging.disable_progress_bar()
    if not (model_dir / "config.json").is_file():
        raise AdaptationError(f"the base model directory {model_dir} has no config.json")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        # Float32 whatever the serving dtype: LoRA updates are small and bf16 would round them away.
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation=ATTENTION_IMPLEMENTATION
        )
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, ModelLoadError) as exc:
        raise AdaptationError(f"cannot load the base model from {model_dir}: {exc}") from exc
    return tokenizer, model.to(device)


def _pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def train_adapter(
    model_dir: Path | str,
    texts: Sequence[str],
    lora: LoraSettings,
    *,
    out_dir: Path | str | None = None,
    checkpoint_dir: Path | str | None = None,
    metadata: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    control: ControlCallback | None = None,
    device: torch.device | str | None = None,
) -> TrainingOutcome:
    """Fine-tune a LoRA adapter on ``texts``; resume from ``checkpoint_dir`` if it holds one.

    Checkpoints are written every ``lora.checkpoint_every`` steps and when ``control``
    answers "pause". On completion the adapter is written to ``out_dir`` (atomically: a
    reader never sees half an adapter) with ``metadata`` merged into its metadata file.
    """
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    problems = lora.problems()
    if problems:
        raise AdaptationError("; ".join(f"{name}: {message}" for name, message in problems.items()))
    model_dir = Path(model_dir)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    previous_threads = torch.get_num_threads()
    if lora.num_threads:
        torch.set_num_threads(lora.num_threads)
    try:
        tokenizer, model = _load_base(model_dir, device)
        pad_id = _pad_id(tokenizer)
        examples = encode_examples(tokenizer, texts, lora.seq_len)
        if not examples:
            raise DatasetError("the dataset has no example of at least two tokens")
        train_index, heldout_index = split_heldout(len(examples), lora.heldout_fraction, lora.seed)
        train_examples = [examples[i] for i in train_index]
        heldout_examples = [examples[i] for i in heldout_index]
        data_digest = texts_digest(texts)

        targets = target_modules_for(model.config.model_type, lora)
        config = LoraConfig(
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=targets,
            bias="none",
            task_type="CAUSAL_LM",
            # GPT-2 style Conv1D layers store their weight transposed; peft must know.
            fan_in_fan_out=model.config.model_type == "gpt2",
        )
        # The LoRA A matrices are drawn from torch's global generator: seed it first.
        torch.manual_seed(lora.seed)
        try:
            with warnings.catch_warnings():
                # peft calls a transformers API that transformers 5 marks deprecated; not ours to fix.
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
                peft_model = get_peft_model(model, config)
        except ValueError as exc:
            raise AdaptationError(f"LoRA cannot target these modules: {exc}") from exc
        peft_model.train()
        trainable = [p for p in peft_model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable, lr=lora.learning_rate, weight_decay=lora.weight_decay, betas=(0.9, 0.999)
        )
        batches = torch.Generator().manual_seed(lora.seed)
        step = 0
        loss_curve: list[float] = []
        elapsed_before_s = 0.0
        resumed_from = 0
        identity = {"settings": lora.digest(), "data": data_digest}

        latest = checkpoint_latest(checkpoint_dir)
        if latest is not None:
            state = _checkpoint_load(latest)
            if state.get("identity") != identity or state.get("format") != CHECKPOINT_FORMAT:
                raise CheckpointMismatch(
                    f"checkpoint {latest.name} belongs to a run with other settings or data"
                )
            set_peft_model_state_dict(peft_model, state["adapter"])
            optimizer.load_state_dict(state["optimizer"])
            batches.set_state(state["batch_rng"])
            torch.set_rng_state(state["torch_rng"])
            step = resumed_from = int(state["step"])
            loss_curve = [float(v) for v in state["loss_curve"]]
            elapsed_before_s = float(state.get("elapsed_s", 0.0))

        def save_checkpoint() -> Path | None:
            if checkpoint_dir is None:
                return None
            return _checkpoint_save(
                Path(checkpoint_dir),
                {
                    "format": CHECKPOINT_FORMAT,
                    "identity": identity,
                    "step": step,
                    "adapter": {
                        k: v.detach().cpu() for k, v in get_peft_model_state_dict(peft_model).items()
                    },
                    "optimizer": optimizer.state_dict(),
                    "batch_rng": batches.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "loss_curve": loss_curve,
                    "elapsed_s": elapsed_before_s + (time.perf_counter() - started),
                },
            )

        started = time.perf_counter()
        last_checkpoint: Path | None = latest
        while step < lora.steps:
            learning_rate = learning_rate_at(lora, step)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
            picks = torch.randint(0, len(train_examples), (lora.batch_size,), generator=batches).tolist()
            input_ids, mask = _batch([train_examples[i] for i in picks], pad_id)
            loss = _token_losses(peft_model, input_ids.to(device), mask.to(device)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, lora.grad_clip)
            optimizer.step()
            step += 1
            loss_curve.append(float(loss.detach()))
            if lora.checkpoint_every and step % lora.checkpoint_every == 0 and step < lora.steps:
                last_checkpoint = save_checkpoint()
            if progress is not None:
                elapsed_s = time.perf_counter() - started
                seconds_per_step = elapsed_s / max(step - resumed_from, 1)
                progress(
                    {
                        "step": step,
                        "steps_total": lora.steps,
                        "loss": round(loss_curve[-1], 5),
                        "learning_rate": learning_rate,
                        "seconds_per_step": round(seconds_per_step, 5),
                        "eta_s": round(seconds_per_step * (lora.steps - step), 2),
                        "checkpoint_step": checkpoint_step(last_checkpoint) if last_checkpoint else 0,
                    }
                )
            decision = control(step) if control is not None and step < lora.steps else None
            if decision == "cancel":
                return TrainingOutcome("cancelled", step, loss_curve, resumed_from_step=resumed_from)
            if decision == "pause":
                if last_checkpoint is None or checkpoint_step(last_checkpoint) != step:
                    last_checkpoint = save_checkpoint()
                return TrainingOutcome(
                    "paused", step, loss_curve, checkpoint=last_checkpoint, resumed_from_step=resumed_from
                )
        train_seconds = elapsed_before_s + (time.perf_counter() - started)

        heldout_ppl = perplexity(peft_model, heldout_examples, pad_id=pad_id, batch_size=lora.batch_size)
        with peft_model.disable_adapter():
            base_ppl = perplexity(peft_model, heldout_examples, pad_id=pad_id, batch_size=lora.batch_size)
        tail = loss_curve[-10:]
        metrics = {
            "steps": step,
            "final_loss": round(sum(tail) / len(tail), 5),
            "loss_curve": downsample_curve(loss_curve),
            "heldout_perplexity": None if math.isnan(heldout_ppl) else round(heldout_ppl, 4),
            "base_heldout_perplexity": None if math.isnan(base_ppl) else round(base_ppl, 4),
            "examples": len(examples),
            "train_examples": len(train_examples),
            "heldout_examples": len(heldout_examples),
            "trainable_parameters": sum(p.numel() for p in trainable),
            "seconds": round(train_seconds, 3),
            "resumed_from_step": resumed_from,
        }
        outcome = TrainingOutcome("completed", step, loss_curve, metrics, resumed_from_step=resumed_from)
        if out_dir is not None:
            document = {
                "format": 1,
                "base_model_dir": str(model_dir.resolve()),
                "base_model_type": peft_model.base_model.model.config.model_type,
                "dataset_sha256": data_digest,
                "lora": lora.to_dict(),
                "target_modules": sorted(peft_model.peft_config["default"].target_modules),
                "metrics": metrics,
                **(metadata or {}),
            }
            outcome.adapter_dir = adapter_save(peft_model, Path(out_dir), document)
        return outcome
    finally:
        torch.set_num_threads(previous_threads)


def adapter_save(peft_model, out_dir: Path, metadata: dict[str, Any]) -> Path:
    """Write a peft model's adapter and the metadata file into ``out_dir`` (atomically)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex[:8]}")
    peft_model.save_pretrained(staging, safe_serialization=True)
    # peft records the absolute base path; the fingerprint in our metadata is what identifies it.
    (staging / ADAPTER_METADATA_FILENAME).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return out_dir


# --- reading adapters -------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterFiles:
    """An adapter as read from disk: peft's config, its tensors, and our metadata (if any)."""

    directory: Path
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, Any]

    @property
    def scaling(self) -> float:
        """Return the factor LoRA multiplies B(A(x)) by: alpha / r (alpha / sqrt(r) with rsLoRA)."""
        rank = int(self.config["r"])
        alpha = float(self.config.get("lora_alpha", rank))
        return alpha / math.sqrt(rank) if self.config.get("use_rslora") else alpha / rank


def adapter_config_check(config: dict[str, Any]) -> None:
    """Raise AdapterError for adapter options the hook-based serving does not reproduce."""
    if str(config.get("peft_type", "")).upper() != "LORA":
        raise AdapterError(f"only LoRA adapters are served (this one is {config.get('peft_type')!r})")
    unsupported = [
        name
        for name in ("use_dora", "rank_pattern", "alpha_pattern", "modules_to_save", "layer_replication")
        if config.get(name)
    ]
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        unsupported.append("bias")
    if unsupported:
        raise AdapterError(f"adapter options not supported for serving: {', '.join(unsupported)}")
    if not isinstance(config.get("r"), int) or config["r"] <= 0:
        raise AdapterError("the adapter config has no positive rank r")


def adapter_read(adapter_dir: Path | str) -> AdapterFiles:
    """Read an adapter directory written by peft's ``save_pretrained``."""
    from safetensors.torch import load_file

    directory = Path(adapter_dir)
    config_path = directory / ADAPTER_CONFIG_FILENAME
    weights_path = directory / ADAPTER_WEIGHTS_FILENAME
    if not config_path.is_file() or not weights_path.is_file():
        raise AdapterError(f"{directory} is not an adapter directory (no config or safetensors weights)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        tensors = load_file(weights_path)
    except (OSError, ValueError) as exc:
        raise AdapterError(f"cannot read the adapter in {directory}: {exc}") from exc
    adapter_config_check(config)
    metadata_path = directory / ADAPTER_METADATA_FILENAME
    metadata = json.loads(metadata_path.read_text(encoding="utf-8")) if metadata_path.is_file() else {}
    return AdapterFiles(directory=directory, config=config, tensors=tensors, metadata=metadata)


def lora_pairs(tensors: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Return {module path in the base model: (A, B)} from peft state dict keys."""
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = re.fullmatch(r"(.+)\.lora_([AB])(?:\.[^.]+)?\.weight", key)
        if match is None:
            raise AdapterError(f"unexpected tensor {key!r} in a LoRA adapter")
        path = match.group(1)
        path = path[len(_PEFT_PREFIX) :] if path.startswith(_PEFT_PREFIX) else path
        pairs.setdefault(path, {})[match.group(2)] = tensor
    incomplete = sorted(path for path, pair in pairs.items() if set(pair) != {"A", "B"})
    if incomplete:
        raise AdapterError(f"LoRA modules without both A and B matrices: {', '.join(incomplete[:3])}")
    return {path: (pair["A"], pair["B"]) for path, pair in pairs.items()}


def layer_index_of(key: str) -> int | None:
    """Return the decoder layer a state dict key belongs to, or None (embeddings, head)."""
    match = _LAYER_INDEX.search(key)
    return int(match.group(1)) if match else None


def adapter_weights_for_layers(adapter_dir: Path | str, start: int, end: int) -> dict[str, torch.Tensor]:
    """Return the adapter tensors that modify decoder layers ``[start, end)`` (split inference).

    Keys are kept as peft wrote them, so the subset can be loaded by an AdapterBank on the
    partition that holds those layers. Tensors outside any layer (none for attention-only
    LoRA) are refused rather than silently dropped: no partition would know to own them.
    """
    if not 0 <= start < end:
        raise ValueError(f"[{start}, {end}) is not a non-empty layer range")
    files = adapter_read(adapter_dir)
    selected: dict[str, torch.Tensor] = {}
    for key, tensor in files.tensors.items():
        index = layer_index_of(key)
        if index is None:
            raise AdapterError(f"adapter tensor {key!r} belongs to no decoder layer")
        if start <= index < end:
            selected[key] = tensor
    return selected


# --- serving: adapters applied per request ------------------------------------------------

# The adapters applied in the current context (thread or task): one per bank at most.
_active_adapters: contextvars.ContextVar[tuple[LoadedAdapter, ...]] = contextvars.ContextVar(
    "switchyard_active_adapters", default=()
)


@dataclass(frozen=True)
class LoadedAdapter:
    """An adapter attached to one bank: per target module, A, B and the scale."""

    name: str
    bank_id: int
    deltas: dict[str, tuple[torch.Tensor, torch.Tensor, float]]
    metadata: dict[str, Any]
    loaded_ms: float

    @property
    def secured(self) -> bool:
        """Return True when the adapter was trained on secured data."""
        return bool(self.metadata.get("secured"))


ModuleResolver = Callable[[str], "nn.Module | None"]


class AdapterBank:
    """Adapters applied to one set of base modules (a whole model, or a partition's layers).

    Each LoRA target module gets a single forward hook, registered the first time an
    adapter targets it; the hook adds the delta of the adapter active in the caller's
    context and does nothing otherwise, so requests without an adapter run the base model
    unchanged (one Python call per hooked module and forward).
    """

    def __init__(self, resolve: ModuleResolver, *, max_adapters: int = ADAPTERS_PER_MODEL) -> None:
        self._resolve = resolve
        self._max_adapters = max_adapters
        self._adapters: OrderedDict[str, LoadedAdapter] = OrderedDict()
        self._hooked: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_model(cls, model: nn.Module) -> AdapterBank:
        """Return a bank over a whole model (module paths as in its state dict)."""
        modules = dict(model.named_modules())
        return cls(modules.get)

    @classmethod
    def for_layers(cls, layers: Sequence[nn.Module], *, start_layer: int, layer_prefix: str) -> AdapterBank:
        """Return a bank over a partition's layers; ``layers[0]`` is model layer ``start_layer``
        and ``layer_prefix`` is how the model names its layers (``model.layers.``)."""

        def resolve(path: str) -> nn.Module | None:
            if not path.startswith(layer_prefix):
                return None
            index_text, _, rest = path[len(layer_prefix) :].partition(".")
            if not index_text.isdigit():
                return None
            local = int(index_text) - start_layer
            if not 0 <= local < len(layers):
                return None
            try:
                return layers[local].get_submodule(rest) if rest else layers[local]
            except AttributeError:
                return None

        return cls(resolve)

    def names(self) -> list[str]:
        """Return the loaded adapters' names, least recently used first."""
        with self._lock:
            return list(self._adapters)

    def get(self, name: str) -> LoadedAdapter | None:
        """Return a loaded adapter (and mark it recently used), or None."""
        with self._lock:
            adapter = self._adapters.get(name)
            if adapter is not None:
                self._adapters.move_to_end(name)
            return adapter

    def load(
        self,
        name: str,
        tensors: dict[str, torch.Tensor],
        config: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> LoadedAdapter:
        """Attach an adapter's tensors under ``name`` (replacing one of that name)."""

        started = time.perf_counter()
        adapter_config_check(config)
        rank = int(config["r"])
        alpha = float(config.get("lora_alpha", rank))
        scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
        deltas: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}
        targets: dict[str, nn.Module] = {}
        for path, (a, b) in lora_pairs(tensors).items():
            module = self._resolve(path)
            if module is None:
                raise AdapterError(f"the base model has no module {path!r} for this adapter")
            in_features, out_features = _module_features(module)
            if a.shape != (rank, in_features) or b.shape != (out_features, rank):
                raise AdapterError(
                    f"adapter matrices for {path!r} have shapes {tuple(a.shape)} and {tuple(b.shape)}; "
                    f"the base module maps {in_features} -> {out_features} (rank {rank})"
                )
            weight = module.weight
            deltas[path] = (
                a.to(device=weight.device, dtype=weight.dtype),
                b.to(device=weight.device, dtype=weight.dtype),
                scale,
            )
            targets[path] = module
        adapter = LoadedAdapter(
            name=name,
            bank_id=id(self),
            deltas=deltas,
            metadata=dict(metadata or {}),
            loaded_ms=round((time.perf_counter() - started) * 1000.0, 3),
        )
        with self._lock:
            for path, module in targets.items():
                if path not in self._hooked:
                    self._hooked[path] = module.register_forward_hook(self._hook(path))
            self._adapters[name] = adapter
            self._adapters.move_to_end(name)
            # Requests still using an evicted adapter hold it through their context: unharmed.
            while len(self._adapters) > self._max_adapters:
                self._adapters.popitem(last=False)
        return adapter

    def load_dir(self, adapter_dir: Path | str, *, name: str | None = None) -> LoadedAdapter:
        """Read an adapter directory and attach it (named after its directory by default)."""
        files = adapter_read(adapter_dir)
        return self.load(name or str(files.directory), files.tensors, files.config, files.metadata)

    def unload(self, name: str) -> bool:
        """Forget an adapter; return whether it was loaded."""
        with self._lock:
            return self._adapters.pop(name, None) is not None

    def _hook(self, path: str):
        from torch import nn

        bank_id = id(self)

        def add_delta(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            for adapter in _active_adapters.get():
                if adapter.bank_id == bank_id:
                    delta = adapter.deltas.get(path)
                    if delta is None:
                        return None
                    a, b, scale = delta
                    # Same operations, in the same order, as peft's LoRA layer in eval mode.
                    x = args[0].to(a.dtype)
                    return output + nn.functional.linear(nn.functional.linear(x, a), b) * scale
            return None

        return add_delta


def _module_features(module: nn.Module) -> tuple[int, int]:
    """Return (in, out) features of a Linear or a GPT-2 style Conv1D (weight stored in x out)."""
    from torch import nn

    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    weight = getattr(module, "weight", None)
    if type(module).__name__ == "Conv1D" and weight is not None and weight.ndim == 2:
        return int(weight.shape[0]), int(weight.shape[1])
    raise AdapterError(f"LoRA serving supports Linear and Conv1D modules, not {type(module).__name__}")


@contextmanager
def adapters_applied(*adapters: LoadedAdapter | None) -> Iterator[None]:
    """Apply adapters to every forward run in this context (thread) until the block ends.

    Nesting replaces, not stacks: the innermost block's adapters are the ones applied.
    """
    token = _active_adapters.set(tuple(adapter for adapter in adapters if adapter is not None))
    try:
        yield
    finally:
        _active_adapters.reset(token)


_banks: weakref.WeakKeyDictionary[nn.Module, AdapterBank] = weakref.WeakKeyDictionary()
_banks_lock = threading.Lock()


def adapter_bank(model: nn.Module) -> AdapterBank:
    """Return the process's adapter bank for a loaded whole model (created on first use)."""
    with _banks_lock:
        bank = _banks.get(model)
        if bank is None:
            bank = AdapterBank.for_model(model)
            _banks[model] = bank
        return bank


_fingerprints: dict[tuple[str, float], str] = {}
_fingerprints_lock = threading.Lock()


def base_fingerprint(model_dir: Path | str) -> str:
    """Return the model's weight fingerprint, computed once per directory and modification time."""
    from inference.modelbuild import model_fingerprint

    directory = Path(model_dir).resolve()
    stamp = max((p.stat().st_mtime for p in directory.iterdir() if p.is_file()), default=0.0)
    key = (str(directory), stamp)
    with _fingerprints_lock:
        known = _fingerprints.get(key)
    if known is None:
        known = model_fingerprint(directory)
        with _fingerprints_lock:
            _fingerprints[key] = known
    return known


def adapter_for_model(model: nn.Module, model_dir: Path | str, adapter_dir: Path | str) -> LoadedAdapter:
    """Return an adapter attached to a loaded model, reading it from disk on first use.

    An adapter whose metadata names another base model (by fingerprint) is refused: its
    deltas were learnt against other weights and would produce nonsense.
    """
    bank = adapter_bank(model)
    name = str(Path(adapter_dir).resolve())
    adapter = bank.get(name)
    if adapter is not None:
        return adapter
    files = adapter_read(adapter_dir)
    expected = files.metadata.get("base_fingerprint")
    if expected and expected != base_fingerprint(model_dir):
        raise AdapterError("the adapter was trained on another base model (fingerprints differ)")
    return bank.load(name, files.tensors, files.config, files.metadata)
