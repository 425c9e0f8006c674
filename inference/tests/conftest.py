"""Small real models for the inference tests, built once per test session.

The Llama model comes from the project's own builder with a step budget (a few seconds,
deterministic for the seed). The GPT-2 model is randomly initialised with a wide
initialiser so that its greedy output varies from token to token; it shares the Llama
model's tokenizer.
"""

from pathlib import Path

import pytest
import torch

from inference.modelbuild import build_default_model

TINY_BUILD = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_heads": 4,
    "vocab_size": 768,
    "corpus_max_chars": 200_000,
    "max_position_embeddings": 256,
    "warmup_steps": 10,
    "learning_rate": 5e-3,
    "eval_batches": 2,
    # One thread: tiny matrices gain nothing from two, and it keeps the build quick on a busy machine.
    "num_threads": 1,
}
TINY_STEPS = 30


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("models") / "tiny-llama"
    build_default_model(out_dir, max_steps=TINY_STEPS, seed=0, **TINY_BUILD)
    return out_dir


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, tiny_llama_dir) -> Path:
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=64,
        n_layer=6,
        n_head=4,
        n_positions=256,
        initializer_range=0.5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(1)
    model = GPT2LMHeadModel(config)
    out_dir = tmp_path_factory.mktemp("models") / "tiny-gpt2"
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def model_dirs(tiny_llama_dir, tiny_gpt2_dir) -> dict[str, Path]:
    return {"llama": tiny_llama_dir, "gpt2": tiny_gpt2_dir}
