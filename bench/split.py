"""Split inference on this machine: whole model vs 2 and 4 partitions on separate node processes.

Same model (``MODEL_DIR/default``; built for a short budget if absent, see
``split.model``), loopback Redis (``DATAPLANE_REDIS_URL``), greedy decoding. Every torch
computation runs with one thread -- the bench process's whole model and each node
process (``--threads 1``) -- so the comparison measures the split's overhead, not a
different share of the two shared cores. A pipeline runs one partition at a time per
token, so one thread per node uses what a single whole-model thread uses.

The configurations are timed in turns (whole, 1, 2, 4 partitions, then again), so load
that drifts during the run weighs on all of them alike.

Keys: ``split.decode_ms_whole`` (in-process whole model, ms per decoded token),
``split.decode_ms_1`` (the whole model as one partition on a node process: adds one
Redis round trip), ``split.decode_ms_2`` / ``_4``, ``split.decode_ratio_2`` / ``_4`` and
``split.prefill_ratio_2`` (split / in-process whole model), ``split.prefill_ms_*``,
``split.half_forward_cpu_ms_warm`` / ``_after_sleep`` (CPU ms of one decode forward of the
first half of the layers, back to back and right after a 6 ms sleep as a pipeline node
does between tokens: on a shared machine the woken process pays for cold caches),
``split.decode_ms_2_spin`` / ``_4_spin`` and their ratios (the same with nodes that poll
their socket for ``SPIN_MS`` after each message instead of sleeping, ``--spin-ms``: on two
shared cores a spinning node takes CPU from the computing one, so this shows what spinning
is worth where each node has a core), ``split.bytes_per_token_boundary`` (tensor bytes
crossing one boundary per decoded token), ``split.tokens_identical`` (every split run
produced the whole model's tokens).
Medians over repetitions.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from django.conf import settings

from inference.runtime import encode_prompt, generate, load_model
from inference.split.coordinator import Coordinator, broadcast_plan
from inference.split.dataplane import ActivePlan, Hop, live_nodes
from inference.split.node import redis_client

# Spinning nodes poll their socket this long after each message (``--spin-ms``).
SPIN_MS = 30.0

PROMPT = (
    "The orchestrator measures the latency of every request and moves the layers of the model "
    "to the nodes that can run them fastest, while the first and the last partition stay"
)


def _model_dir() -> tuple[Path, str]:
    model_dir = Path(settings.MODEL_DIR) / "default"
    if (model_dir / "config.json").is_file():
        return model_dir, "default"
    from inference.modelbuild import build_default_model

    model_dir = Path(settings.VAR_DIR) / "bench" / "split-model"
    if not (model_dir / "config.json").is_file():
        build_default_model(model_dir, max_steps=20, seed=0)
    return model_dir, "default architecture built for 20 steps (no MODEL_DIR/default)"


def _cuts(num_layers: int, parts: int) -> list[tuple[int, int]]:
    bounds = [round(i * num_layers / parts) for i in range(parts + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


@contextmanager
def bench_nodes(names: list[str], *extra_args: str) -> Iterator[None]:
    """Run one Redis-only node process per name (one torch thread each) until the block ends."""
    url = settings.DATAPLANE_REDIS_URL
    log_dir = Path(settings.VAR_DIR) / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    try:
        for name in names:
            with open(log_dir / f"{name}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "inference.split.node", "--node", name,
                         "--redis-url", url, "--threads", "1", *extra_args],
                        cwd=settings.BASE_DIR,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        client = redis_client(url)
        deadline = time.monotonic() + 180
        while not all(live_nodes(client, names).values()):
            if time.monotonic() > deadline:
                raise RuntimeError("bench split nodes did not start within 180 s")
            time.sleep(0.2)
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wake_cost(model_dir: Path, prompt_ids: list[int], layers: int, repeats: int) -> dict[str, float]:
    """CPU ms of one decode forward of the first half, back to back and right after a sleep.

    A pipeline node sleeps while the other partitions compute, then wakes for its next
    message; this separates what that costs the node's own forward (caches and the core
    it wakes on) from the Redis hops. Same process, same partition, thread CPU time.
    """
    from inference.partition import PartitionRunner

    runner = PartitionRunner(model_dir, 0, layers // 2, device="cpu")
    figures = {}
    for label, pause_s in (("warm", 0.0), ("after_sleep", 0.006)):
        runner.reset_session("wake")
        runner.forward("wake", torch.tensor(prompt_ids), 0)
        position, token = len(prompt_ids), torch.tensor([prompt_ids[-1]])
        cpu_ms = []
        for _ in range(repeats):
            if pause_s:
                time.sleep(pause_s)
            started = time.thread_time()
            runner.forward("wake", token, position)
            cpu_ms.append((time.thread_time() - started) * 1000.0)
            position += 1
        figures[f"split.half_forward_cpu_ms_{label}"] = round(statistics.median(cpu_ms), 3)
    return figures


def run(quick: bool = False) -> dict[str, float | int | bool | str]:
    new_tokens = 16 if quick else 48
    repeats = 2 if quick else 4
    model_dir, model_note = _model_dir()
    torch.set_num_threads(1)
    loaded = load_model(model_dir, device="cpu")
    layers = loaded.model.config.num_hidden_layers
    prompt_ids = encode_prompt(loaded, PROMPT)

    out: dict[str, float | int | bool | str] = {
        "split.model": model_note,
        "split.layers": layers,
        "split.prompt_tokens": len(prompt_ids),
        "split.new_tokens": new_tokens,
    }
    url = settings.DATAPLANE_REDIS_URL
    client = redis_client(url)
    run_id = uuid.uuid4().hex[:6]
    names = [f"bench-{run_id}-{i}" for i in range(4)]
    spinning = [f"bench-{run_id}-spin-{i}" for i in range(4)]
    identical = True
    splits = (1, 2, 4)
    # (label, partitions, node names): the default nodes, and nodes that poll their socket
    # for SPIN_MS after each message instead of sleeping (``--spin-ms``).
    configurations = [(str(parts), parts, names) for parts in splits] + [
        (f"{parts}_spin", parts, spinning) for parts in (2, 4)
    ]
    with bench_nodes(names), bench_nodes(spinning, "--spin-ms", str(SPIN_MS)):
        # One plan per configuration, all active at once (a node holds several models), so
        # the configurations can be timed in turns: load on the shared cores that drifts
        # during the run then weighs on every configuration alike.
        coordinators = {}
        for label, parts, nodes in configurations:
            model_key = f"bench-{run_id}-{label}"
            plan = ActivePlan(
                model_key,
                1,
                tuple(Hop(s, e, nodes[i]) for i, (s, e) in enumerate(_cuts(layers, parts))),
                str(model_dir.resolve()),
            )
            broadcast_plan(client, plan, timeout_s=120)
            coordinators[label] = Coordinator(client, model_key, record_latency=False)
        decode: dict[str, list[float]] = {key: [] for key in ("whole", *coordinators)}
        prefill: dict[str, list[float]] = {key: [] for key in ("whole", *coordinators)}
        whole_tokens, boundary = None, []
        for _ in range(repeats + 1):
            result = generate(loaded, prompt_ids, max_new_tokens=new_tokens, stop_on_eos=False)
            decode["whole"].append(result.timings.decode_ms_per_token)
            prefill["whole"].append(result.timings.prefill_ms)
            whole_tokens = result.token_ids
            for label, coordinator in coordinators.items():
                generation = coordinator.generate(prompt_ids, max_new_tokens=new_tokens, stop_on_eos=False)
                identical &= generation.token_ids == whole_tokens
                decode[label].append(statistics.fmean(generation.decode_ms))
                prefill[label].append(generation.prefill_ms)
                if label == "2":
                    boundary = generation.boundary_bytes
        # The first round warms caches and allocators; it is not counted.
        for key in decode:
            out[f"split.decode_ms_{key}"] = round(statistics.median(decode[key][1:]), 3)
            out[f"split.prefill_ms_{key}"] = round(statistics.median(prefill[key][1:]), 3)
        for key in coordinators:
            if key != "1":
                out[f"split.decode_ratio_{key}"] = round(
                    out[f"split.decode_ms_{key}"] / out["split.decode_ms_whole"], 4
                )
        out["split.spin_ms"] = SPIN_MS
        out["split.bytes_per_token_boundary"] = boundary[0] if boundary else 0
        out["split.prefill_ratio_2"] = round(out["split.prefill_ms_2"] / out["split.prefill_ms_whole"], 4)
        client.delete(*(f"split:active:bench-{run_id}-{label}" for label in coordinators))
    out["split.tokens_identical"] = identical
    out.update(_wake_cost(model_dir, prompt_ids, layers, repeats=60 if quick else 200))
    return out


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    django.setup()
    print(run(quick="--quick" in sys.argv))
