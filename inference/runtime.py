"""Whole-model inference: load a causal language model from disk and generate from it.

The decoding loop is written out here (one prefill forward, then one forward per new
token over a KV cache) instead of calling ``model.generate`` so that the prefill and
per-token timings are measured where they happen, and so that split inference
(``inference.partition``) can follow exactly the same schedule of forwards and be
compared with this path token for token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

# Upper bound on new tokens per request, whatever the model's context would allow.
MAX_NEW_TOKENS_CAP = 2048
# Sampling seeds are mixed with the step number through this odd constant so that each
# step draws from its own generator (see ``step_generator``).
_SEED_STRIDE = 0x9E3779B97F4A7C15
# Attention kernel used by both the whole model and the partitions; the two must agree
# for their outputs to be identical.
ATTENTION_IMPLEMENTATION = "sdpa"


class ModelLoadError(Exception):
    """The model directory is missing, incomplete or not a causal language model."""


class InvalidRequest(ValueError):
    """A generation request that can never succeed (empty prompt, bad limits)."""


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    dtype: torch.dtype


def pick_device() -> DeviceChoice:
    """Return CUDA with bf16 (fp16 where bf16 is unsupported) when present, else CPU float32."""
    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return DeviceChoice(torch.device("cuda"), dtype)
    return DeviceChoice(torch.device("cpu"), torch.float32)


def resolve_device(device: torch.device | str | None, dtype: torch.dtype | None = None) -> DeviceChoice:
    """Return the device and dtype to use, filling what the caller left open from ``pick_device``."""
    if device is None:
        choice = pick_device()
        return DeviceChoice(choice.device, dtype or choice.dtype)
    device = torch.device(device)
    if dtype is None:
        if device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
    return DeviceChoice(device, dtype)


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    model_dir: Path
    device: torch.device
    dtype: torch.dtype
    eos_token_id: int | None
    max_positions: int
    vocab_size: int

    @property
    def architecture(self) -> str:
        """Return the model type named in its config (``llama``, ``gpt2``, ...)."""
        return self.model.config.model_type


@dataclass(frozen=True)
class GenerationTimings:
    prefill_ms: float
    decode_ms_per_token: float
    total_ms: float


@dataclass(frozen=True)
class GenerationResult:
    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str  # "stop" (end-of-sequence token) or "length"
    timings: GenerationTimings

    @property
    def completion_tokens(self) -> int:
        """Return how many tokens were generated."""
        return len(self.token_ids)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        """Return whether tokens are chosen by argmax."""
        return self.temperature <= 0.0


def model_max_positions(config) -> int:
    """Return the longest sequence (prompt plus reply) the config allows."""
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def load_model(
    model_dir: Path | str,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from a directory written by ``save_pretrained``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelLoadError(f"model directory {directory} does not exist")
    if not (directory / "config.json").is_file():
        raise ModelLoadError(f"model directory {directory} has no config.json")
    choice = resolve_device(device, dtype)
    # Workers load models in the background; progress bars would only clutter their logs.
    transformers_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(
            directory, dtype=choice.dtype, attn_implementation=ATTENTION_IMPLEMENTATION
        )
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise ModelLoadError(f"cannot load a causal language model from {directory}: {exc}") from exc
    model.to(choice.device)
    model.eval()
    eos_token_id = tokenizer.eos_token_id
    if eos_token_id is None:
        configured = getattr(model.config, "eos_token_id", None)
        eos_token_id = configured[0] if isinstance(configured, list) else configured
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_dir=directory.resolve(),
        device=choice.device,
        dtype=choice.dtype,
        eos_token_id=eos_token_id,
        max_positions=model_max_positions(model.config),
        vocab_size=model.config.vocab_size,
    )


_model_cache: dict[tuple[str, str], LoadedModel] = {}
_model_cache_lock = threading.Lock()


def get_model(model_dir: Path | str, device: torch.device | str | None = None) -> LoadedModel:
    """Return the process-wide loaded model for a directory, loading it on first use.

    A worker keeps its model warm across requests. The lock is held while loading so two
    threads asking at once do not load the weights twice.
    """
    choice = resolve_device(device)
    key = (str(Path(model_dir).resolve()), str(choice.device))
    with _model_cache_lock:
        loaded = _model_cache.get(key)
        if loaded is None:
            loaded = load_model(model_dir, choice.device, choice.dtype)
            _model_cache[key] = loaded
        return loaded


def forget_models() -> None:
    """Drop every cached model (after the model on disk was rebuilt, and in tests)."""
    with _model_cache_lock:
        _model_cache.clear()


def encode_prompt(loaded: LoadedModel, prompt: str | Sequence[int] | torch.Tensor) -> list[int]:
    """Return the prompt's token ids, checking that it is usable."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidRequest("prompt is empty")
        ids = list(loaded.tokenizer(prompt, add_special_tokens=True)["input_ids"])
    else:
        ids = [int(token) for token in (prompt.reshape(-1).tolist() if torch.is_tensor(prompt) else prompt)]
        if not ids:
            raise InvalidRequest("prompt is empty")
        # The message names the limit only: prompt content never goes into errors or logs.
        if any(not 0 <= token < loaded.vocab_size for token in ids):
            raise InvalidRequest(f"prompt token ids must lie in [0, {loaded.vocab_size})")
    if not ids:
        raise InvalidRequest("prompt is empty")
    return ids


def check_limits(prompt_tokens: int, max_new_tokens: int, max_positions: int) -> None:
    """Raise InvalidRequest when a request's lengths cannot be served."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise InvalidRequest("max_new_tokens must be an integer")
    cap = min(MAX_NEW_TOKENS_CAP, max_positions - 1)
    if not 1 <= max_new_tokens <= cap:
        raise InvalidRequest(f"max_new_tokens must be between 1 and {cap}; got {max_new_tokens}")
    if prompt_tokens + max_new_tokens > max_positions:
        raise InvalidRequest(
            f"prompt ({prompt_tokens} tokens) plus max_new_tokens ({max_new_tokens}) exceeds the "
            f"model's context of {max_positions} tokens"
        )


def check_sampling(temperature: float, top_p: float) -> SamplingParams:
    """Return validated sampling parameters (without seed)."""
    if not 0.0 <= temperature <= 10.0:
        raise InvalidRequest(f"temperature must be between 0 and 10; got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise InvalidRequest(f"top_p must be in (0, 1]; got {top_p}")
    return SamplingParams(temperature=float(temperature), top_p=float(top_p))


def step_generator(seed: int | None, step: int) -> torch.Generator:
    """Return the random generator for one decoding step.

    Deriving it from (seed, step) rather than carrying one generator through the loop
    makes sampling stateless: a split pipeline whose last partition is replaced or
    replayed mid-generation draws exactly what the whole model would have drawn.
    """
    base = 0 if seed is None else int(seed)
    return torch.Generator(device="cpu").manual_seed((base * _SEED_STRIDE + step) % (1 << 63))


def select_next_token(logits: torch.Tensor, sampling: SamplingParams, step: int) -> int:
    """Choose the next token from the final position's logits (a 1-D vocabulary vector)."""
    if sampling.greedy:
        return int(torch.argmax(logits).item())
    # Sampling happens in float32 on the CPU so every backend draws the same token from
    # the same logits.
    scores = logits.detach().to(device="cpu", dtype=torch.float32) / sampling.temperature
    probabilities = torch.softmax(scores, dim=-1)
    if sampling.top_p < 1.0:
        sorted_probabilities, order = torch.sort(probabilities, descending=True)
        cumulative = torch.cumsum(sorted_probabilities, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (always at least one token).
        outside = cumulative - sorted_probabilities >= sampling.top_p
        sorted_probabilities = sorted_probabilities.masked_fill(outside, 0.0)
        probabilities = torch.zeros_like(probabilities).scatter(0, order, sorted_probabilities)
    choice = torch.multinomial(probabilities, 1, generator=step_generator(sampling.seed, step))
    return int(choice.item())


class TextAssembler:
    """Turns a growing list of token ids into text pieces that never split a character."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self._emitted = ""

    def piece(self, token_ids: list[int], final: bool = False) -> str:
        text = self._tokenizer.decode(token_ids, skip_special_tokens=True)
        # A byte-level token can end inside a multi-byte character; wait for the rest.
        if not final and text.endswith("\ufffd"):
            return ""
        new_text = text[len(self._emitted) :] if text.startswith(self._emitted) else ""
        self._emitted = text
        return new_text


class TokenStream:
    """Iterator over the text pieces of a generation; ``result`` is set once it is exhausted."""

    def __init__(
        self,
        loaded: LoadedModel,
        prompt_ids: list[int],
        max_new_tokens: int,
        sampling: SamplingParams,
        stop_on_eos: bool,
        *,
        emit_pieces: bool = True,
        logits_out: list[torch.Tensor] | None = None,
    ) -> None:
        self._loaded = loaded
        self._emit_pieces = emit_pieces
        self._logits_out = logits_out
        self._prompt_ids = prompt_ids
        self._max_new_tokens = max_new_tokens
        self._sampling = sampling
        self._stop_on_eos = stop_on_eos
        self.result: GenerationResult | None = None
        self._pieces = self._run()

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def __next__(self) -> str:
        return next(self._pieces)

    def _run(self) -> Iterator[str]:
        loaded = self._loaded
        assembler = TextAssembler(loaded.tokenizer)
        generated: list[int] = []
        finish_reason = "length"
        decode_ms: list[float] = []
        prefill_ms = 0.0
        started = time.perf_counter()
        for step, token in enumerate(
            _decode_tokens(
                loaded,
                self._prompt_ids,
                self._max_new_tokens,
                self._sampling,
                decode_ms,
                self._logits_out,
            )
        ):
            if step == 0:
                prefill_ms = (time.perf_counter() - started) * 1000.0
            if self._stop_on_eos and token == loaded.eos_token_id:
                finish_reason = "stop"
                break
            generated.append(token)
            if self._emit_pieces:
                piece = assembler.piece(generated)
                if piece:
                    yield piece
        if self._emit_pieces:
            tail = assembler.piece(generated, final=True)
            if tail:
                yield tail
        total_ms = (time.perf_counter() - started) * 1000.0
        self.result = GenerationResult(
            text=loaded.tokenizer.decode(generated, skip_special_tokens=True),
            token_ids=generated,
            prompt_tokens=len(self._prompt_ids),
            finish_reason=finish_reason,
            timings=GenerationTimings(
                prefill_ms=round(prefill_ms, 3),
                decode_ms_per_token=round(sum(decode_ms) / len(decode_ms), 3) if decode_ms else 0.0,
                total_ms=round(total_ms, 3),
            ),
        )


def _decode_tokens(
    loaded: LoadedModel,
    prompt_ids: list[int],
    max_new_tokens: int,
    sampling: SamplingParams,
    decode_ms: list[float],
    logits_out: list[torch.Tensor] | None = None,
) -> Iterator[int]:
    """Yield new token ids: one prefill forward for the prompt, then one forward per token.

    The forward after the last token is never run. ``decode_ms`` collects the duration of
    each single-token forward (including choosing its token); ``logits_out``, when given,
    receives each step's final-position logits.
    """
    from transformers import DynamicCache

    model = loaded.model
    device = loaded.device
    cache = DynamicCache(config=model.config)
    input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    position = 0
    for step in range(max_new_tokens):
        step_started = time.perf_counter()
        length = input_ids.shape[1]
        # Inference mode per step, not around the loop: a generator suspended inside the
        # block would leave the mode switched on in its consumer's code between tokens.
        with torch.inference_mode():
            position_ids = torch.arange(position, position + length, device=device).unsqueeze(0)
            outputs = model(
                input_ids=input_ids,
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            logits = outputs.logits[0, -1]
            if logits_out is not None:
                logits_out.append(logits.clone())
            token = select_next_token(logits, sampling, step)
        if step > 0:
            decode_ms.append((time.perf_counter() - step_started) * 1000.0)
        position += length
        yield token
        input_ids = torch.tensor([[token]], dtype=torch.long, device=device)


def prepare_request(
    loaded: LoadedModel,
    prompt: str | Sequence[int] | torch.Tensor,
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
) -> tuple[list[int], SamplingParams]:
    """Validate a request and return its prompt ids and sampling parameters."""
    prompt_ids = encode_prompt(loaded, prompt)
    check_limits(len(prompt_ids), max_new_tokens, loaded.max_positions)
    sampling = check_sampling(temperature, top_p)
    return prompt_ids, SamplingParams(sampling.temperature, sampling.top_p, seed)


def generate_stream(
    loaded: LoadedModel,
    prompt: str | Sequence[int] | torch.Tensor,
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    stop_on_eos: bool = True,
) -> TokenStream:
    """Return a stream of text pieces; the request is validated before the first piece."""
    prompt_ids, sampling = prepare_request(
        loaded, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
    )
    return TokenStream(loaded, prompt_ids, max_new_tokens, sampling, stop_on_eos)


def generate(
    loaded: LoadedModel,
    prompt: str | Sequence[int] | torch.Tensor,
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    stop_on_eos: bool = True,
    logits_out: list[torch.Tensor] | None = None,
) -> GenerationResult:
    """Generate a reply with the whole model; greedy when ``temperature`` is 0.

    ``logits_out``, when given, receives the logits each step chose from (for comparing
    execution paths).
    """
    prompt_ids, sampling = prepare_request(
        loaded, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
    )
    stream = TokenStream(
        loaded,
        prompt_ids,
        max_new_tokens,
        sampling,
        stop_on_eos,
        emit_pieces=False,
        logits_out=logits_out,
    )
    for _ in stream:
        pass
    assert stream.result is not None
    return stream.result
