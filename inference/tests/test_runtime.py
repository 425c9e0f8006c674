import dataclasses
import threading

import pytest
import torch

from inference.runtime import (
    MAX_NEW_TOKENS_CAP,
    InvalidRequest,
    ModelLoadError,
    SamplingParams,
    encode_prompt,
    forget_models,
    generate,
    generate_stream,
    get_model,
    load_model,
    pick_device,
    select_next_token,
)

PROMPT = "The function returns"


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    return load_model(tiny_llama_dir, device="cpu")


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2_dir):
    return load_model(tiny_gpt2_dir, device="cpu")


def test_cpu_float32_is_chosen_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")

    choice = pick_device()

    assert (choice.device.type, choice.dtype) == ("cpu", torch.float32)


def test_greedy_generation_is_repeatable_and_runs_to_max_new_tokens(llama):
    first = generate(llama, PROMPT, max_new_tokens=12, stop_on_eos=False)
    second = generate(llama, PROMPT, max_new_tokens=12, stop_on_eos=False)

    assert first.token_ids == second.token_ids
    assert len(first.token_ids) == 12
    assert first.finish_reason == "length"
    assert first.prompt_tokens == len(encode_prompt(llama, PROMPT))
    assert first.text == llama.tokenizer.decode(first.token_ids, skip_special_tokens=True)


def test_greedy_tokens_equal_the_argmax_of_a_full_forward_over_the_sequence(gpt2):
    # Without a cache: each token must be the argmax after re-reading the whole sequence.
    result = generate(gpt2, PROMPT, max_new_tokens=8, stop_on_eos=False)
    sequence = encode_prompt(gpt2, PROMPT)
    expected = []
    with torch.no_grad():
        for _ in range(8):
            logits = gpt2.model(input_ids=torch.tensor([sequence])).logits[0, -1]
            expected.append(int(logits.argmax()))
            sequence.append(expected[-1])

    assert result.token_ids == expected
    assert len(set(expected)) > 1


def test_a_token_id_prompt_gives_the_same_reply_as_its_text(llama):
    ids = encode_prompt(llama, PROMPT)

    assert (
        generate(llama, ids, max_new_tokens=6).token_ids
        == generate(llama, PROMPT, max_new_tokens=6).token_ids
    )


def test_sampling_repeats_for_a_seed_and_changes_with_the_seed(llama):
    def sample(seed):
        return generate(
            llama, PROMPT, max_new_tokens=16, temperature=1.0, top_p=0.95, seed=seed, stop_on_eos=False
        ).token_ids

    assert sample(3) == sample(3)
    assert sample(3) != sample(4)
    assert len(set(sample(3))) > 1


def test_top_p_near_zero_keeps_only_the_most_likely_token():
    logits = torch.tensor([0.1, 2.0, 1.9, -3.0])

    chosen = {
        select_next_token(logits, SamplingParams(temperature=1.0, top_p=1e-6, seed=seed), step=0)
        for seed in range(20)
    }

    assert chosen == {1}


def test_generation_stops_at_the_end_of_sequence_token(llama):
    first_token = generate(llama, PROMPT, max_new_tokens=1).token_ids[0]
    # Given a model whose end-of-sequence token is exactly what it will say first,
    ends_at_once = dataclasses.replace(llama, eos_token_id=first_token)

    result = generate(ends_at_once, PROMPT, max_new_tokens=10)

    assert result.token_ids == []
    assert result.finish_reason == "stop"
    assert generate(ends_at_once, PROMPT, max_new_tokens=3, stop_on_eos=False).token_ids[0] == first_token


def test_stream_pieces_join_to_the_final_text(gpt2):
    stream = generate_stream(gpt2, PROMPT, max_new_tokens=20, stop_on_eos=False)

    pieces = list(stream)

    assert "".join(pieces) == stream.result.text
    assert stream.result.token_ids == generate(gpt2, PROMPT, max_new_tokens=20, stop_on_eos=False).token_ids
    assert len(pieces) > 1


def test_a_paused_stream_leaves_gradient_mode_alone_in_the_consumer(gpt2):
    stream = generate_stream(gpt2, PROMPT, max_new_tokens=5, stop_on_eos=False)

    next(iter(stream))

    assert not torch.is_inference_mode_enabled()
    assert torch.is_grad_enabled()


def test_timings_are_reported_for_prefill_and_decode(llama):
    result = generate(llama, PROMPT, max_new_tokens=4)

    assert set(dataclasses.asdict(result.timings)) == {"prefill_ms", "decode_ms_per_token", "total_ms"}


def test_gpt2_and_llama_both_load(llama, gpt2):
    assert (llama.architecture, gpt2.architecture) == ("llama", "gpt2")
    assert gpt2.max_positions == 256


def test_missing_model_directory_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nowhere")


def test_directory_without_config_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)


def test_directory_with_config_but_no_weights_is_a_load_error(tmp_path, tiny_llama_dir):
    (tmp_path / "config.json").write_bytes((tiny_llama_dir / "config.json").read_bytes())

    with pytest.raises(ModelLoadError, match="cannot load"):
        load_model(tmp_path)


@pytest.mark.parametrize("prompt", ["", "   \n", []])
def test_empty_prompt_is_an_invalid_request(llama, prompt):
    with pytest.raises(InvalidRequest, match="prompt is empty"):
        generate(llama, prompt, max_new_tokens=4)


@pytest.mark.parametrize("max_new_tokens", [0, -1, MAX_NEW_TOKENS_CAP * 10])
def test_max_new_tokens_outside_the_allowed_range_is_an_invalid_request(llama, max_new_tokens):
    with pytest.raises(InvalidRequest, match="max_new_tokens must be between 1 and 255"):
        generate(llama, PROMPT, max_new_tokens=max_new_tokens)


def test_reply_that_would_overflow_the_context_is_an_invalid_request(llama):
    long_prompt = list(range(10, 250))

    with pytest.raises(InvalidRequest, match="exceeds the model's context of 256 tokens"):
        generate(llama, long_prompt, max_new_tokens=20)


def test_token_ids_outside_the_vocabulary_are_an_invalid_request(llama):
    with pytest.raises(InvalidRequest, match=r"must lie in \[0, 768\)"):
        generate(llama, [5, 768], max_new_tokens=2)


@pytest.mark.parametrize(("temperature", "top_p"), [(-0.5, 1.0), (1.0, 0.0), (1.0, 1.5)])
def test_bad_sampling_parameters_are_an_invalid_request(llama, temperature, top_p):
    with pytest.raises(InvalidRequest):
        generate(llama, PROMPT, max_new_tokens=2, temperature=temperature, top_p=top_p)


def test_get_model_loads_once_per_directory_even_when_threads_race(tiny_gpt2_dir):
    forget_models()
    seen = []
    threads = [
        threading.Thread(target=lambda: seen.append(get_model(tiny_gpt2_dir, device="cpu"))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seen) == 4
    assert all(loaded is seen[0] for loaded in seen)
    forget_models()
    assert get_model(tiny_gpt2_dir, device="cpu") is not seen[0]
    forget_models()
