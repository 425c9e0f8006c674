"""Capacity profiling (the paper's CP step): a node measures what a layer costs it.

On start a node loads a few middle layers of a model and runs warm-up forwards on synthetic
hidden states: one prompt-sized chunk (prefill) and single positions (decode). It reports
ms per layer per token for both, and the bytes one position's hidden state takes when it
crosses a boundary (``inference.wire`` framing). The planner uses these instead of its
equal default, so a slow node gets fewer layers. No Django here.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from inference.partition import PartitionRunner
from inference.wire import encode_tensor

# A prompt of this many tokens stands for prefill; long enough that the per-call
# overhead does not dominate, short enough to profile in well under a second.
PROFILE_PROMPT_TOKENS = 32
PROFILE_DECODE_STEPS = 8
# Middle layers only: they are what the planner moves between nodes.
PROFILE_MAX_LAYERS = 2


def profile_layers(
    model_dir: Path | str,
    *,
    device: str | None = "cpu",
    prompt_tokens: int = PROFILE_PROMPT_TOKENS,
    decode_steps: int = PROFILE_DECODE_STEPS,
    max_layers: int = PROFILE_MAX_LAYERS,
) -> dict[str, float | int | str]:
    """Return ``{"prefill_ms_per_layer", "decode_ms_per_layer", "activation_bytes_per_token", ...}``.

    Values are medians over repeated forwards, divided by the layer count (and for
    prefill by the token count), so they are per layer per token.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    num_layers = int(config.num_hidden_layers)
    # Skip layer 0 and the last layer when the model has room: those carry the
    # embeddings and the LM head, which the planner folds into P1 and PK separately.
    start = 1 if num_layers >= 3 else 0
    end = min(start + max_layers, num_layers - 1 if num_layers >= 3 else num_layers)
    runner = PartitionRunner(model_dir, start, end, device=device)
    layer_count = end - start
    hidden_size = int(config.hidden_size)
    generator = torch.Generator().manual_seed(0)

    def inputs(tokens: int) -> torch.Tensor:
        if runner.is_first:
            return torch.randint(0, int(config.vocab_size), (tokens,), generator=generator)
        return torch.randn(1, tokens, hidden_size, generator=generator)

    prefill_ms: list[float] = []
    decode_ms: list[float] = []
    for round_index in range(3):
        session = f"profile-{round_index}"
        runner.reset_session(session)
        started = time.perf_counter()
        runner.forward(session, inputs(prompt_tokens), 0)
        prefill_ms.append((time.perf_counter() - started) * 1000.0)
        for step in range(decode_steps):
            started = time.perf_counter()
            hidden = runner.forward(session, inputs(1), prompt_tokens + step)
            decode_ms.append((time.perf_counter() - started) * 1000.0)
        runner.drop_session(session)
    # The first round warms allocators and kernels; medians drop the stragglers.
    prefill = sorted(prefill_ms[1:])[len(prefill_ms[1:]) // 2]
    decode = sorted(decode_ms[decode_steps:])[len(decode_ms[decode_steps:]) // 2]
    activation = hidden if not runner.is_last else torch.zeros(1, 1, hidden_size, dtype=runner.dtype)
    return {
        "prefill_ms_per_layer": round(prefill / layer_count / prompt_tokens, 6),
        "decode_ms_per_layer": round(decode / layer_count, 6),
        "activation_bytes_per_token": len(encode_tensor(activation[:, -1:, :])),
        "layers_profiled": layer_count,
        "device": str(runner.device),
        "model_dir": str(Path(model_dir).resolve()),
    }
