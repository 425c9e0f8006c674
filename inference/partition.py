"""Split inference: run a contiguous range of decoder layers of a causal LM.

A split plan cuts the decoder into partitions P1..PK. Each partition is served by a
``PartitionRunner`` that reads only its own tensors from the safetensors files: the
embeddings when it is first, its layers, the final norm and LM head when it is last. The
rest of the model is built on the ``meta`` device and never materialised, so a node holds
only its share of the weights.

Each runner keeps a KV cache per generation session for its own layers. The first
partition takes token ids and returns hidden states, middle ones map hidden states to
hidden states, and the last returns the logits of the final position. After the prompt,
only one position's hidden state crosses each boundary per generated token.

A runner that does not hold a session's cache (it was evicted, the node restarted, or the
plan changed and this runner is new) raises ``CacheMiss``; the caller then replays the
token history through all partitions (``replay_history``). Replaying with the same
schedule of forwards as the original run (the prompt as one prefill, then one token at a
time) gives bit-identical caches, so split output equals whole-model output token for
token even across failures and re-splits. Replaying the history as one prefill is faster
but can differ from the original cache in the last bits of floating point.

Equality with the whole model holds because both paths run the same modules on the same
shapes in the same order with the same attention kernel (``sdpa``) and dtype. It is tested
in float32 and bfloat16 on the CPU. On CUDA with bf16 the same argument holds, since both
paths launch the same kernels on the same shapes, but it is not tested here (no GPU), and
a data plane that batched several sessions into one forward would change the shapes and
lose bit-equality.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from inference.runtime import (
    ATTENTION_IMPLEMENTATION,
    ModelLoadError,
    SamplingParams,
    resolve_device,
    select_next_token,
)

DEFAULT_MAX_SESSIONS = 256


class CacheMiss(Exception):
    """The runner has no cache for these positions; the session must be replayed."""

    def __init__(self, session_id: str, cached_length: int, position: int, start_layer: int) -> None:
        super().__init__(
            f"session {session_id!r}: partition starting at layer {start_layer} holds "
            f"{cached_length} cached positions but was sent position {position}"
        )
        self.session_id = session_id
        self.cached_length = cached_length
        self.position = position
        self.start_layer = start_layer


class UnsupportedArchitecture(ModelLoadError):
    """The model family has no partition layout here."""


@dataclass
class _Session:
    cache: object  # transformers DynamicCache
    length: int = 0
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _WeightReader:
    """Reads named tensors lazily from one or more safetensors files of a model directory."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors import safe_open

        index_path = model_dir / "model.safetensors.index.json"
        if index_path.is_file():
            weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
            files = {name: model_dir / filename for name, filename in weight_map.items()}
        else:
            single = model_dir / "model.safetensors"
            if not single.is_file():
                raise ModelLoadError(f"{model_dir} has no safetensors weights (model.safetensors)")
            with safe_open(str(single), framework="pt") as handle:
                files = {name: single for name in handle.keys()}  # noqa: SIM118 (not a dict)
        self._files = files
        self._handles: dict[Path, object] = {}
        self._safe_open = safe_open

    def __contains__(self, name: str) -> bool:
        return name in self._files

    def get(self, name: str) -> torch.Tensor:
        path = self._files.get(name)
        if path is None:
            raise ModelLoadError(f"tensor {name!r} is not in the model's weight files")
        handle = self._handles.get(path)
        if handle is None:
            handle = self._safe_open(str(path), framework="pt")
            self._handles[path] = handle
        return handle.get_tensor(name)

    def close(self) -> None:
        self._handles.clear()


class _Layout(ABC):
    """How one model family names and calls its parts (one subclass per family)."""

    family: str
    embedding_prefixes: dict[str, str]  # held module name -> tensor name prefix in the files
    layer_prefix: str
    final_norm_prefix: str
    head_prefix = "lm_head."
    tied_head_source: str  # tensor that serves as the head when embeddings are tied

    @abstractmethod
    def embedding_modules(self, skeleton: nn.Module) -> dict[str, nn.Module]:
        """Return the input embedding modules the first partition holds."""

    @abstractmethod
    def layers(self, skeleton: nn.Module) -> nn.ModuleList:
        """Return the decoder layer list."""

    @abstractmethod
    def final_norm(self, skeleton: nn.Module) -> nn.Module:
        """Return the norm before the LM head."""

    def rotary(self, skeleton: nn.Module, config, device: torch.device) -> nn.Module | None:
        return None

    @abstractmethod
    def embed(self, embeddings: nn.ModuleDict, input_ids: torch.Tensor, position_ids: torch.Tensor):
        """Return the hidden states of the input tokens."""

    @abstractmethod
    def run_layer(self, layer, hidden, *, mask, position_ids, position_embeddings, cache):
        """Run one decoder layer with this family's call signature."""


class _LlamaLayout(_Layout):
    family = "llama"
    embedding_prefixes = {"embed_tokens": "model.embed_tokens."}
    layer_prefix = "model.layers."
    final_norm_prefix = "model.norm."
    tied_head_source = "model.embed_tokens.weight"

    def embedding_modules(self, skeleton):
        return {"embed_tokens": skeleton.model.embed_tokens}

    def layers(self, skeleton):
        return skeleton.model.layers

    def final_norm(self, skeleton):
        return skeleton.model.norm

    def rotary(self, skeleton, config, device):
        # The rotary tables are buffers computed from the config, not weights; the skeleton's
        # copy lives on the meta device, so build a real one the same way the model does.
        rotary = type(skeleton.model.rotary_emb)(config=config)
        return rotary.to(device)

    def embed(self, embeddings, input_ids, position_ids):
        return embeddings["embed_tokens"](input_ids)

    def run_layer(self, layer, hidden, *, mask, position_ids, position_embeddings, cache):
        # Same keyword call as LlamaModel.forward in the installed transformers (5.x).
        return layer(
            hidden,
            attention_mask=mask,
            position_embeddings=position_embeddings,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
        )


class _Gpt2Layout(_Layout):
    family = "gpt2"
    embedding_prefixes = {"wte": "transformer.wte.", "wpe": "transformer.wpe."}
    layer_prefix = "transformer.h."
    final_norm_prefix = "transformer.ln_f."
    tied_head_source = "transformer.wte.weight"

    def embedding_modules(self, skeleton):
        return {"wte": skeleton.transformer.wte, "wpe": skeleton.transformer.wpe}

    def layers(self, skeleton):
        return skeleton.transformer.h

    def final_norm(self, skeleton):
        return skeleton.transformer.ln_f

    def embed(self, embeddings, input_ids, position_ids):
        # As GPT2Model.forward: token embedding plus learned position embedding (dropout is
        # the identity in eval mode).
        inputs_embeds = embeddings["wte"](input_ids)
        return inputs_embeds + embeddings["wpe"](position_ids).to(inputs_embeds.device)

    def run_layer(self, layer, hidden, *, mask, position_ids, position_embeddings, cache):
        # Same positional call as GPT2Model.forward: (hidden, cache, mask, encoder states).
        return layer(
            hidden,
            cache,
            mask,
            None,
            encoder_attention_mask=None,
            use_cache=True,
            position_ids=position_ids,
        )


_LAYOUTS: dict[str, _Layout] = {"llama": _LlamaLayout(), "gpt2": _Gpt2Layout()}


def supported_families() -> list[str]:
    """Return the model types (``config.model_type``) that can be partitioned."""
    return sorted(_LAYOUTS)


def _to_device(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if tensor.is_floating_point():
        return tensor.to(device=device, dtype=dtype)
    return tensor.to(device=device)


class PartitionRunner:
    """Serves decoder layers ``[start_layer, end_layer)`` of a model for many sessions."""

    def __init__(
        self,
        model_dir: Path | str,
        start_layer: int,
        end_layer: int,
        *,
        is_first: bool | None = None,
        is_last: bool | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        from transformers import AutoConfig, AutoModelForCausalLM

        directory = Path(model_dir)
        if not (directory / "config.json").is_file():
            raise ModelLoadError(f"model directory {directory} does not exist or has no config.json")
        try:
            config = AutoConfig.from_pretrained(directory)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot read the config in {directory}: {exc}") from exc
        layout = _LAYOUTS.get(config.model_type)
        if layout is None:
            raise UnsupportedArchitecture(
                f"model type {config.model_type!r} cannot be partitioned; supported: "
                f"{', '.join(supported_families())}"
            )
        num_layers = config.num_hidden_layers
        if not 0 <= start_layer < end_layer <= num_layers:
            raise ValueError(
                f"partition [{start_layer}, {end_layer}) is not a non-empty range of the "
                f"model's {num_layers} layers"
            )
        # The first partition is the one that sees raw tokens, the last the one that
        # produces them; a flag that disagrees with the range is a planning bug.
        if is_first is None:
            is_first = start_layer == 0
        if is_last is None:
            is_last = end_layer == num_layers
        if is_first != (start_layer == 0) or is_last != (end_layer == num_layers):
            raise ValueError(
                f"partition [{start_layer}, {end_layer}) of {num_layers} layers cannot have "
                f"is_first={is_first}, is_last={is_last}"
            )

        choice = resolve_device(device, dtype)
        self.model_dir = directory.resolve()
        self.config = config
        self.layout = layout
        self.start_layer = start_layer
        self.end_layer = end_layer
        self.num_layers = num_layers
        self.is_first = is_first
        self.is_last = is_last
        self.device = choice.device
        self.dtype = choice.dtype
        self.max_sessions = max_sessions
        self.loaded_tensor_names: list[str] = []

        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config, attn_implementation=ATTENTION_IMPLEMENTATION)
        # from_config records the attention kernel on the config the layers read.
        self.config = skeleton.config

        reader = _WeightReader(directory)
        try:
            self.embeddings = nn.ModuleDict()
            if is_first:
                for name, module in layout.embedding_modules(skeleton).items():
                    self._load(module, layout.embedding_prefixes[name], reader)
                    self.embeddings[name] = module
            layers = layout.layers(skeleton)
            self.layers = nn.ModuleList()
            for index in range(start_layer, end_layer):
                layer = layers[index]
                self._load(layer, f"{layout.layer_prefix}{index}.", reader)
                self.layers.append(layer)
            self.final_norm: nn.Module | None = None
            self.head: nn.Module | None = None
            if is_last:
                self.final_norm = layout.final_norm(skeleton)
                self._load(self.final_norm, layout.final_norm_prefix, reader)
                self.head = skeleton.lm_head
                self._load_head(self.head, reader)
        finally:
            reader.close()
        self.rotary = layout.rotary(skeleton, self.config, self.device)
        del skeleton

        for module in self._held_modules():
            module.eval()
            for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
                if tensor.is_meta:
                    raise ModelLoadError(f"partition left tensor {name!r} unloaded (meta)")

        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._sessions_lock = threading.Lock()

    # Loading -------------------------------------------------------------------------

    def _load(self, module: nn.Module, prefix: str, reader: _WeightReader) -> None:
        state = {}
        for key in module.state_dict():
            name = prefix + key
            state[key] = _to_device(reader.get(name), self.device, self.dtype)
            self.loaded_tensor_names.append(name)
        # assign=True swaps the meta tensors for the loaded ones without allocating twice.
        module.load_state_dict(state, strict=True, assign=True)

    def _load_head(self, head: nn.Module, reader: _WeightReader) -> None:
        tied = getattr(self.config, "tie_word_embeddings", False)
        if "lm_head.weight" in reader and not tied:
            self._load(head, self.layout.head_prefix, reader)
            return
        source = self.layout.tied_head_source
        if not tied and "lm_head.weight" not in reader:
            raise ModelLoadError("the model has no lm_head.weight and its embeddings are not tied")
        if self.is_first:
            # One partition holding both ends shares the matrix, as the whole model does.
            embedding = next(iter(self.embeddings.values()))
            head.weight = embedding.weight
            return
        # With tied embeddings the last partition needs the embedding matrix as its head.
        head.load_state_dict(
            {"weight": _to_device(reader.get(source), self.device, self.dtype)},
            strict=True,
            assign=True,
        )
        self.loaded_tensor_names.append(source)

    def _held_modules(self) -> list[nn.Module]:
        modules: list[nn.Module] = [self.embeddings, self.layers]
        if self.final_norm is not None:
            modules.append(self.final_norm)
        if self.head is not None:
            modules.append(self.head)
        if self.rotary is not None:
            modules.append(self.rotary)
        return modules

    def parameters(self) -> list[nn.Parameter]:
        """Return the distinct parameters this runner holds."""
        seen: dict[int, nn.Parameter] = {}
        for module in self._held_modules():
            for parameter in module.parameters():
                seen.setdefault(id(parameter), parameter)
        return list(seen.values())

    def parameter_count(self) -> int:
        """Return how many weights this runner holds."""
        return sum(parameter.numel() for parameter in self.parameters())

    def parameter_bytes(self) -> int:
        """Return the memory taken by this runner's weights."""
        return sum(parameter.numel() * parameter.element_size() for parameter in self.parameters())

    # Sessions ------------------------------------------------------------------------

    def session_ids(self) -> list[str]:
        """Return the sessions that have a cache here, least recently used first."""
        with self._sessions_lock:
            return list(self._sessions)

    def session_length(self, session_id: str) -> int:
        """Return how many positions of a session are cached here (0 when none)."""
        with self._sessions_lock:
            session = self._sessions.get(session_id)
            return session.length if session is not None else 0

    def drop_session(self, session_id: str) -> bool:
        """Forget a session's cache; returns whether there was one."""
        with self._sessions_lock:
            return self._sessions.pop(session_id, None) is not None

    def reset_session(self, session_id: str) -> None:
        """Start a session over with an empty cache (for a replay from position 0)."""
        with self._sessions_lock:
            self._sessions[session_id] = self._new_session()
            self._sessions.move_to_end(session_id)
            self._evict_locked()

    def drop_idle_sessions(self, max_idle_s: float) -> list[str]:
        """Forget sessions unused for ``max_idle_s`` seconds; returns their ids."""
        cutoff = time.monotonic() - max_idle_s
        with self._sessions_lock:
            idle = [sid for sid, session in self._sessions.items() if session.last_used < cutoff]
            for session_id in idle:
                del self._sessions[session_id]
        return idle

    def cache_bytes(self) -> int:
        """Return the memory held by all sessions' KV caches."""
        total = 0
        with self._sessions_lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            for layer in session.cache.layers:
                for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
                    if torch.is_tensor(tensor):
                        total += tensor.numel() * tensor.element_size()
        return total

    def _new_session(self) -> _Session:
        from transformers import DynamicCache

        # A cache with a slot per layer of the whole model: the layers keep their global
        # indices, and only this partition's slots are ever filled.
        return _Session(cache=DynamicCache(config=self.config))

    def _evict_locked(self) -> None:
        while len(self._sessions) > self.max_sessions:
            # The evicted session will answer CacheMiss and be replayed if it comes back.
            self._sessions.popitem(last=False)

    def _session_for(self, session_id: str, first_position: int) -> _Session:
        with self._sessions_lock:
            session = self._sessions.get(session_id)
            if session is None and first_position == 0:
                session = self._new_session()
                self._sessions[session_id] = session
                self._evict_locked()
            if session is None:
                raise CacheMiss(session_id, 0, first_position, self.start_layer)
            self._sessions.move_to_end(session_id)
            session.last_used = time.monotonic()
            return session

    def _check_current(self, session_id: str, session: _Session, first_position: int) -> None:
        # Called with the session's lock held: another thread may have extended, reset or
        # dropped the session between lookup and lock.
        with self._sessions_lock:
            current = self._sessions.get(session_id) is session
        if not current or first_position != session.length:
            raise CacheMiss(session_id, session.length if current else 0, first_position, self.start_layer)

    def _discard(self, session_id: str, session: _Session) -> None:
        with self._sessions_lock:
            if self._sessions.get(session_id) is session:
                del self._sessions[session_id]

    # Execution -----------------------------------------------------------------------

    def _positions(self, positions, length: int) -> torch.Tensor:
        if isinstance(positions, int):
            values = torch.arange(positions, positions + length)
        else:
            values = torch.as_tensor(positions, dtype=torch.long).reshape(-1).cpu()
        if values.numel() != length:
            raise ValueError(f"got {values.numel()} positions for {length} inputs")
        expected = torch.arange(int(values[0]), int(values[0]) + length)
        if not torch.equal(values, expected):
            raise ValueError("positions must be consecutive and increasing")
        return values.to(self.device)

    def _prepare_inputs(self, inputs) -> torch.Tensor:
        if self.is_first:
            ids = torch.as_tensor(inputs, dtype=torch.long)
            if ids.ndim == 1:
                ids = ids.unsqueeze(0)
            if ids.ndim != 2 or ids.shape[0] != 1 or ids.shape[1] == 0:
                raise ValueError("the first partition takes a non-empty 1-D sequence of token ids")
            if int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size:
                raise ValueError(f"token ids must lie in [0, {self.config.vocab_size})")
            return ids.to(self.device)
        hidden = torch.as_tensor(inputs)
        if hidden.ndim == 2:
            hidden = hidden.unsqueeze(0)
        if hidden.ndim != 3 or hidden.shape[0] != 1 or hidden.shape[2] != self.config.hidden_size:
            raise ValueError(
                f"partition starting at layer {self.start_layer} takes hidden states of shape "
                f"(1, positions, {self.config.hidden_size}); got {tuple(hidden.shape)}"
            )
        return hidden.to(device=self.device, dtype=self.dtype)

    def forward(self, session_id: str, inputs, positions) -> torch.Tensor:
        """Run this partition on new positions of a session and extend its cache.

        ``inputs`` are token ids for the first partition and hidden states of shape
        (1, n, hidden) otherwise; ``positions`` are the n absolute positions (or the first
        of them as an int). Returns hidden states (1, n, hidden), or for the last
        partition the logits of the final position as a 1-D vocabulary vector.
        """
        from transformers.masking_utils import create_causal_mask

        prepared = self._prepare_inputs(inputs)
        position_values = self._positions(positions, prepared.shape[1])
        first_position = int(position_values[0])
        session = self._session_for(session_id, first_position)
        with session.lock, torch.inference_mode():
            self._check_current(session_id, session, first_position)
            try:
                position_ids = position_values.unsqueeze(0)
                if self.is_first:
                    hidden = self.layout.embed(self.embeddings, prepared, position_ids)
                else:
                    hidden = prepared
                # Built exactly as the whole model builds it, sized against this
                # partition's first cache slot (all slots hold the same length).
                mask = create_causal_mask(
                    config=self.config,
                    inputs_embeds=hidden,
                    attention_mask=None,
                    past_key_values=session.cache,
                    position_ids=position_ids,
                    layer_idx=self.start_layer,
                )
                position_embeddings = self.rotary(hidden, position_ids) if self.rotary is not None else None
                for layer in self.layers:
                    hidden = self.layout.run_layer(
                        layer,
                        hidden,
                        mask=mask,
                        position_ids=position_ids,
                        position_embeddings=position_embeddings,
                        cache=session.cache,
                    )
                if self.is_last:
                    hidden = self.final_norm(hidden)
                    # Normalise every position, then project only the last one, as the
                    # whole model does with logits_to_keep=1.
                    logits = self.head(hidden[:, -1:, :])
                    result = logits[0, -1]
                else:
                    result = hidden
            except BaseException:
                # Some layers may have appended to the cache and others not; a half-updated
                # cache must never be used again.
                self._discard(session_id, session)
                raise
            session.length += prepared.shape[1]
        return result

    def next_token(self, session_id: str, inputs, positions, *, sampling: SamplingParams, step: int) -> int:
        """Run the last partition and choose the next token (``step`` counts new tokens from 0)."""
        if not self.is_last:
            raise ValueError("only the last partition chooses tokens")
        return select_next_token(self.forward(session_id, inputs, positions), sampling, step)

    def describe(self) -> dict:
        """Return a summary for telemetry and logs."""
        return {
            "family": self.layout.family,
            "start_layer": self.start_layer,
            "end_layer": self.end_layer,
            "is_first": self.is_first,
            "is_last": self.is_last,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "parameters": self.parameter_count(),
            "parameter_bytes": self.parameter_bytes(),
            "sessions": len(self.session_ids()),
            "cache_bytes": self.cache_bytes(),
        }


# In-process chains --------------------------------------------------------------------


def check_chain(runners: Sequence[PartitionRunner]) -> None:
    """Raise ValueError unless the runners cover one model's layers contiguously, in order."""
    if not runners:
        raise ValueError("a split needs at least one partition")
    if not runners[0].is_first or not runners[-1].is_last:
        raise ValueError("the chain must start with the first partition and end with the last")
    for before, after in zip(runners, runners[1:], strict=False):
        if before.model_dir != after.model_dir:
            raise ValueError("all partitions must come from the same model directory")
        if before.end_layer != after.start_layer:
            raise ValueError(
                f"partitions [{before.start_layer}, {before.end_layer}) and "
                f"[{after.start_layer}, {after.end_layer}) are not contiguous"
            )


def chain_forward(
    runners: Sequence[PartitionRunner], session_id: str, token_ids: Sequence[int], start_position: int
) -> torch.Tensor:
    """Pass new tokens through every partition in order; returns the final position's logits."""
    carried: object = list(token_ids)
    for runner in runners:
        carried = runner.forward(session_id, carried, start_position)
    return carried


def replay_schedule(prompt_length: int, history_length: int, *, exact: bool = True) -> list[tuple[int, int]]:
    """Return the [start, end) chunks in which a token history is re-run.

    ``exact`` repeats the original schedule (prompt, then one token per forward) so the
    rebuilt caches are bit-identical to the lost ones; otherwise the history is one chunk.
    """
    if not 0 < prompt_length <= history_length:
        raise ValueError("the history must contain the whole, non-empty prompt")
    if not exact:
        return [(0, history_length)]
    return [(0, prompt_length)] + [
        (position, position + 1) for position in range(prompt_length, history_length)
    ]


def replay_history(
    runners: Sequence[PartitionRunner],
    session_id: str,
    history: Sequence[int],
    prompt_length: int,
    *,
    exact: bool = True,
) -> torch.Tensor:
    """Rebuild a session's caches in every partition from its token history.

    Returns the logits after the last history token, i.e. those for the next token.
    """
    for runner in runners:
        runner.reset_session(session_id)
    logits = None
    for start, end in replay_schedule(prompt_length, len(history), exact=exact):
        logits = chain_forward(runners, session_id, history[start:end], start)
    return logits


@dataclass(frozen=True)
class SplitGenerationResult:
    token_ids: list[int]
    finish_reason: str
    replays: int
    step_logits: list[torch.Tensor]


StepHook = Callable[[int, list[PartitionRunner]], Sequence[PartitionRunner] | None]


def generate_split(
    runners: Sequence[PartitionRunner],
    prompt_ids: Sequence[int],
    *,
    max_new_tokens: int,
    sampling: SamplingParams | None = None,
    eos_token_id: int | None = None,
    stop_on_eos: bool = True,
    session_id: str = "split",
    before_step: StepHook | None = None,
    keep_logits: bool = False,
) -> SplitGenerationResult:
    """Generate through a chain of in-process partitions with the whole model's schedule.

    ``before_step(step, runners)`` runs before each decoding step after the first; it may
    drop caches or return a new chain (a re-split), and the loop recovers by replaying the
    history. Used by the tests and benchmarks, and as the reference for the distributed
    data plane.
    """
    sampling = sampling or SamplingParams()
    chain = list(runners)
    check_chain(chain)
    prompt = [int(token) for token in prompt_ids]
    history = list(prompt)
    generated: list[int] = []
    step_logits: list[torch.Tensor] = []
    replays = 0
    finish_reason = "length"
    pending = prompt
    position = 0
    for step in range(max_new_tokens):
        if step > 0 and before_step is not None:
            replaced = before_step(step, chain)
            if replaced is not None:
                chain = list(replaced)
                check_chain(chain)
        try:
            logits = chain_forward(chain, session_id, pending, position)
        except CacheMiss:
            replays += 1
            logits = replay_history(chain, session_id, history, len(prompt))
        position = len(history)
        if keep_logits:
            step_logits.append(logits.detach().clone())
        token = select_next_token(logits, sampling, step)
        if stop_on_eos and eos_token_id is not None and token == eos_token_id:
            finish_reason = "stop"
            break
        generated.append(token)
        history.append(token)
        pending = [token]
    for runner in chain:
        runner.drop_session(session_id)
    return SplitGenerationResult(
        token_ids=generated, finish_reason=finish_reason, replays=replays, step_logits=step_logits
    )
