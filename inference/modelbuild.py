"""Build the default model offline: a byte-level BPE tokenizer and a small Llama decoder.

Nothing is downloaded. The corpus is text that ships with the Python interpreter itself
(the language reference topics in ``pydoc_data`` and the docstrings of the standard
library, read with ``ast`` so no module is imported). The result is an ordinary
Hugging Face model directory (``save_pretrained``, safetensors) plus ``switchyard.json``
describing how it was made, so every other part of the product can treat it like any
causal language model on disk.

Two stop criteria: a wall-clock budget (``seconds``, the normal way to build the default
model) or a step budget (``max_steps``, deterministic for a seed; the tests use it).
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
import shutil
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path

import torch

METADATA_FILENAME = "switchyard.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin")

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN)

# Standard-library folders whose text is test fixtures or machine-generated tables, not prose.
_SKIPPED_STDLIB_PARTS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "turtledemo"}
)

ProgressCallback = Callable[[dict], None]


@dataclass(frozen=True)
class BuildConfig:
    """Everything that shapes the built model; any field can be overridden by keyword."""

    vocab_size: int = 8192
    hidden_size: int = 384
    num_layers: int = 8
    num_heads: int = 8
    intermediate_size: int = 1024
    # Longer than the training windows so prompts plus replies fit; RoPE has no learned table,
    # so positions past seq_len work but are weaker.
    max_position_embeddings: int = 1024
    tie_word_embeddings: bool = False
    seq_len: int = 128
    batch_size: int = 8
    learning_rate: float = 2e-3
    min_lr_ratio: float = 0.1
    # Short: a few-minute budget on two cores runs only a few hundred steps.
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    # Fraction of the token stream held out to report an evaluation loss.
    eval_fraction: float = 0.02
    eval_batches: int = 8
    # Cap on corpus characters; the tests use a small one so tokenizer training takes a second.
    corpus_max_chars: int | None = None
    include_package_docs: bool = False
    # None: a step-budget build uses every core; a time-budget build measures which thread
    # count trains fastest right now (see _ThreadTuner).
    num_threads: int | None = None
    progress_every: int = 10


@dataclass(frozen=True)
class CorpusDocument:
    source: str
    text: str


_HEADING_RULE = re.compile(r"^([*=\-~^#])\1{2,}\s*$")


def reflow(text: str) -> str:
    """Return the text with hard-wrapped prose paragraphs joined into single lines.

    Reference text wraps at 72 columns, so most of its tokens would otherwise be line
    breaks, and a briefly trained model learns to print nothing but newlines. Indented
    blocks (code, grammar, examples) and ``>>>`` sessions keep their lines; heading rules
    (``*****``) are dropped.
    """
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.rstrip() for line in block.splitlines() if not _HEADING_RULE.match(line)]
        if not lines:
            continue
        verbatim = any(line.startswith((" ", "\t", ">>>", "...")) for line in lines)
        if verbatim:
            paragraphs.append("\n".join(lines))
        else:
            paragraphs.append(re.sub(r"\s+", " ", " ".join(lines)))
    return "\n\n".join(paragraphs)


def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _docstrings_of(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node)
            # One-liners such as "Return self." teach little and crowd out prose.
            if docstring and len(docstring) >= 40:
                yield docstring


def _package_doc_files() -> list[Path]:
    found: list[Path] = []
    for entry in sorted({p for p in sys.path if "site-packages" in p}):
        root = Path(entry)
        if root.is_dir():
            found.extend(sorted(root.rglob("*.rst")))
            found.extend(sorted(root.rglob("*.txt")))
    return sorted(set(found))


def iter_corpus(*, include_package_docs: bool = False) -> Iterator[CorpusDocument]:
    """Yield the training documents in a fixed order (the same interpreter gives the same text)."""
    import pydoc_data.topics

    for name in sorted(pydoc_data.topics.topics):
        yield CorpusDocument(source=f"pydoc_data.topics:{name}", text=reflow(pydoc_data.topics.topics[name]))

    root = _stdlib_root()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if _SKIPPED_STDLIB_PARTS.intersection(relative.parts):
            continue
        for index, docstring in enumerate(_docstrings_of(path)):
            yield CorpusDocument(source=f"stdlib:{relative}#{index}", text=reflow(docstring))

    if include_package_docs:
        for path in _package_doc_files():
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if len(text) >= 200:
                yield CorpusDocument(source=f"package-doc:{path.name}", text=reflow(text))


def load_corpus(*, max_chars: int | None = None, include_package_docs: bool = False) -> list[CorpusDocument]:
    """Return the corpus documents, truncated to ``max_chars`` characters in total."""
    documents: list[CorpusDocument] = []
    total_chars = 0
    for document in iter_corpus(include_package_docs=include_package_docs):
        if max_chars is not None and total_chars + len(document.text) > max_chars:
            remaining = max_chars - total_chars
            if remaining > 0:
                documents.append(replace(document, text=document.text[:remaining]))
            break
        documents.append(document)
        total_chars += len(document.text)
    return documents


def _corpus_sha256(documents: list[CorpusDocument]) -> str:
    digest = hashlib.sha256()
    for document in documents:
        digest.update(document.text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def train_tokenizer(documents: list[CorpusDocument], *, vocab_size: int):
    """Train a byte-level BPE tokenizer; returns a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        # Every byte gets a token, so no input is ever unknown.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator((document.text for document in documents), trainer=trainer)
    bos_id = backend.token_to_id(BOS_TOKEN)
    # Prompts start with <s> just as every training document does.
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B", special_tokens=[(BOS_TOKEN, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,
    )


def _token_stream(tokenizer, documents: list[CorpusDocument]) -> torch.Tensor:
    """Concatenate documents as ``<s> text </s>`` into one long tensor of token ids."""
    eos_id = tokenizer.eos_token_id
    encoded = tokenizer([document.text for document in documents], add_special_tokens=True)
    ids: list[int] = []
    for document_ids in encoded["input_ids"]:
        ids.extend(document_ids)
        ids.append(eos_id)
    return torch.tensor(ids, dtype=torch.long)


def _llama_config(config: BuildConfig, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_position_embeddings,
        rms_norm_eps=1e-5,
        tie_word_embeddings=config.tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _learning_rate(config: BuildConfig, step: int, progress: float) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio`` over the budget's progress (0..1)."""
    warmup = min(1.0, (step + 1) / max(1, config.warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.learning_rate * warmup * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def _optimizer(model: torch.nn.Module, config: BuildConfig) -> torch.optim.Optimizer:
    decayed, plain = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            # Norm gains are vectors; decaying them toward zero only hurts.
            (decayed if parameter.ndim >= 2 else plain).append(parameter)
    return torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": config.weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
        eps=1e-8,
    )


def _sample_batch(
    stream: torch.Tensor, config: BuildConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.randint(0, len(stream) - config.seq_len - 1, (config.batch_size,), generator=generator)
    windows = torch.stack([stream[start : start + config.seq_len + 1] for start in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def _loss(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=inputs, use_cache=False).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@torch.no_grad()
def _evaluation_loss(model: torch.nn.Module, stream: torch.Tensor, config: BuildConfig) -> float:
    model.eval()
    window = config.seq_len + 1
    count = min(config.eval_batches * config.batch_size, (len(stream) - 1) // window)
    if count == 0:
        return float("nan")
    windows = stream[: count * window].view(count, window)
    losses = [_loss(model, chunk[:, :-1], chunk[:, 1:]).item() for chunk in windows.split(config.batch_size)]
    model.train()
    return sum(losses) / len(losses)


def model_fingerprint(model_dir: Path | str) -> str:
    """Return the sha256 of the weight files of a model directory (names and bytes, sorted)."""
    directory = Path(model_dir)
    weight_files = sorted(
        path for path in directory.iterdir() if path.is_file() and path.name.endswith(WEIGHT_SUFFIXES)
    )
    if not weight_files:
        raise FileNotFoundError(f"no weight files (*.safetensors, *.bin) in {directory}")
    digest = hashlib.sha256()
    for path in weight_files:
        digest.update(path.name.encode("utf-8") + b"\x00")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_metadata(model_dir: Path | str) -> dict | None:
    """Return the ``switchyard.json`` of a model directory, or None when it has none."""
    path = Path(model_dir) / METADATA_FILENAME
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


class _ThreadTuner:
    """Picks the intra-op thread count that currently gives the fastest training step.

    On a machine shared with other busy processes, two threads on two cores can be several
    times slower than one, because each OpenMP thread keeps waiting for the other to be
    scheduled. Each candidate is tried for a few steps and re-tried now and then, since
    the load changes while the budget runs.
    """

    PROBE_EVERY_STEPS = 40
    STEPS_PER_PROBE = 2

    def __init__(self, cpu_count: int) -> None:
        self.candidates = sorted({1, max(1, cpu_count // 2), max(1, cpu_count)})
        self._step_s: dict[int, float] = {}
        self._measured: dict[int, int] = dict.fromkeys(self.candidates, 0)
        self.steps_by_threads: dict[int, int] = dict.fromkeys(self.candidates, 0)

    def choose(self, step: int) -> int:
        for threads in self.candidates:
            if self._measured[threads] < self.STEPS_PER_PROBE + 1:
                return threads
        best = min(self._step_s, key=self._step_s.__getitem__)
        if len(self.candidates) > 1 and step % self.PROBE_EVERY_STEPS < self.STEPS_PER_PROBE:
            others = [threads for threads in self.candidates if threads != best]
            return others[(step // self.PROBE_EVERY_STEPS) % len(others)]
        return best

    def record(self, threads: int, step_s: float, switched: bool) -> None:
        self.steps_by_threads[threads] += 1
        self._measured[threads] += 1
        # The first step after a switch pays for waking the thread pool; do not judge by it.
        if switched:
            return
        previous = self._step_s.get(threads)
        self._step_s[threads] = step_s if previous is None else 0.5 * previous + 0.5 * step_s


def _emit(progress: ProgressCallback | None, event: dict) -> None:
    if progress is not None:
        progress(event)


def _replace_directory(built: Path, out_dir: Path) -> None:
    # Readers (workers loading the model) see either the old directory or the new one,
    # never a half-written one.
    previous = out_dir.with_name(out_dir.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    if out_dir.exists():
        out_dir.rename(previous)
    built.rename(out_dir)
    if previous.exists():
        shutil.rmtree(previous)


def build_default_model(
    out_dir: Path | str,
    *,
    seconds: float = 180,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    max_steps: int | None = None,
    **overrides,
) -> dict:
    """Train the tokenizer and the model, save both into ``out_dir`` and return the metadata.

    ``seconds`` bounds the optimisation loop (corpus reading and tokenizer training come on
    top). With ``max_steps`` the loop stops after that many steps instead, and the learning
    rate schedule follows steps rather than the clock, so a seed gives the same weights.
    ``overrides`` are fields of :class:`BuildConfig`.
    """
    known = {field.name for field in fields(BuildConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown build options: {', '.join(unknown)}")
    config = replace(BuildConfig(), **overrides)
    if max_steps is not None and max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    if max_steps is None and seconds <= 0:
        raise ValueError("seconds must be positive")

    from transformers import LlamaForCausalLM

    out_dir = Path(out_dir)
    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    cpu_count = max(1, os.cpu_count() or 1)
    # Thread count changes the order of floating-point sums, so a step-budget build (the
    # deterministic one) keeps a fixed count.
    tuner = _ThreadTuner(cpu_count) if config.num_threads is None and max_steps is None else None
    fixed_threads = config.num_threads or cpu_count
    torch.set_num_threads(fixed_threads)
    try:
        _emit(progress, {"phase": "corpus"})
        documents = load_corpus(
            max_chars=config.corpus_max_chars, include_package_docs=config.include_package_docs
        )
        corpus_chars = sum(len(document.text) for document in documents)

        _emit(progress, {"phase": "tokenizer", "documents": len(documents), "chars": corpus_chars})
        tokenizer = train_tokenizer(documents, vocab_size=config.vocab_size)
        stream = _token_stream(tokenizer, documents)
        eval_tokens = int(len(stream) * config.eval_fraction)
        if eval_tokens > config.seq_len + 1:
            train_stream, eval_stream = stream[:-eval_tokens], stream[-eval_tokens:]
        else:
            train_stream, eval_stream = stream, stream[:0]
        if len(train_stream) <= config.seq_len + 1:
            raise ValueError("corpus is shorter than one training window; raise corpus_max_chars")

        torch.manual_seed(seed)
        model = LlamaForCausalLM(_llama_config(config, tokenizer))
        model.train()
        parameter_count = sum(parameter.numel() for parameter in model.parameters())
        optimizer = _optimizer(model, config)
        generator = torch.Generator().manual_seed(seed)
        _emit(progress, {"phase": "train", "step": 0, "params": parameter_count, "tokens": len(stream)})

        tokens_per_step = config.batch_size * config.seq_len
        train_started = time.perf_counter()
        step = 0
        loss_value = float("nan")
        smoothed_loss: float | None = None
        while True:
            elapsed_s = time.perf_counter() - train_started
            if max_steps is not None:
                if step >= max_steps:
                    break
                budget_progress = step / max_steps
            else:
                if elapsed_s >= seconds:
                    break
                budget_progress = elapsed_s / seconds
            learning_rate = _learning_rate(config, step, budget_progress)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate

            threads = fixed_threads
            if tuner is not None:
                threads = tuner.choose(step)
                switched = threads != torch.get_num_threads()
                torch.set_num_threads(threads)
            step_started = time.perf_counter()
            inputs, targets = _sample_batch(train_stream, config, generator)
            loss = _loss(model, inputs, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if tuner is not None:
                tuner.record(threads, time.perf_counter() - step_started, switched)
            step += 1
            loss_value = loss.item()
            smoothed_loss = loss_value if smoothed_loss is None else 0.9 * smoothed_loss + 0.1 * loss_value

            if step % config.progress_every == 0 or step == max_steps:
                elapsed_s = time.perf_counter() - train_started
                if max_steps is not None:
                    eta_s = elapsed_s / step * (max_steps - step)
                else:
                    eta_s = max(0.0, seconds - elapsed_s)
                _emit(
                    progress,
                    {
                        "phase": "train",
                        "step": step,
                        "loss": round(loss_value, 4),
                        "smoothed_loss": round(smoothed_loss, 4),
                        "learning_rate": learning_rate,
                        "tokens_per_s": round(step * tokens_per_step / elapsed_s, 1),
                        "elapsed_s": round(elapsed_s, 2),
                        "eta_s": round(eta_s, 2),
                        "threads": threads,
                    },
                )
        train_seconds = time.perf_counter() - train_started

        _emit(progress, {"phase": "evaluate", "step": step})
        eval_loss = _evaluation_loss(model, eval_stream, config) if len(eval_stream) else float("nan")
        model.eval()

        _emit(progress, {"phase": "save", "step": step})
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = out_dir.with_name(out_dir.name + ".building")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

        import transformers

        metadata = {
            "format": 1,
            "architecture": "llama",
            "corpus": {
                "description": (
                    "Python language reference topics (pydoc_data.topics) and standard-library "
                    "docstrings read with ast"
                    + (", plus .txt/.rst files of installed packages" if config.include_package_docs else "")
                ),
                "python": sys.version.split()[0],
                "documents": len(documents),
                "chars": corpus_chars,
                "tokens": len(stream),
                "sha256": _corpus_sha256(documents),
            },
            "config": asdict(config),
            "params": parameter_count,
            "layers": config.num_layers,
            "vocab_size": len(tokenizer),
            "seed": seed,
            "steps": step,
            "max_steps": max_steps,
            "tokens_seen": step * tokens_per_step,
            "steps_by_threads": tuner.steps_by_threads if tuner else {fixed_threads: step},
            "final_loss": loss_value,
            "smoothed_loss": smoothed_loss,
            "eval_loss": eval_loss,
            "train_seconds": round(train_seconds, 2),
            "seconds": round(time.perf_counter() - started, 2),
            "budget_seconds": None if max_steps is not None else seconds,
            "weights_sha256": model_fingerprint(staging),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        }
        (staging / METADATA_FILENAME).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        _replace_directory(staging, out_dir)
        _emit(progress, {"phase": "done", "step": step, "loss": loss_value, "path": str(out_dir)})
        return metadata
    finally:
        torch.set_num_threads(previous_threads)
