import pytest
import torch

from inference.partition import (
    CacheMiss,
    PartitionRunner,
    UnsupportedArchitecture,
    check_chain,
    generate_split,
    replay_history,
    replay_schedule,
)
from inference.runtime import ModelLoadError, SamplingParams, encode_prompt, generate, load_model
from inference.wire import WireFormatError, decode_tensor, encode_tensor

PROMPT = "The function returns the value of"
NEW_TOKENS = 16
ARCHITECTURES = ["llama", "gpt2"]
# Cut points per architecture (llama has 8 layers, gpt2 has 6): 2, 3 and 4 partitions.
SPLITS = {
    "llama": [[0, 4, 8], [0, 2, 5, 8], [0, 1, 3, 6, 8]],
    "gpt2": [[0, 3, 6], [0, 2, 5, 6], [0, 1, 3, 4, 6]],
}


def make_chain(model_dir, cuts, **options):
    return [
        PartitionRunner(model_dir, start, end, device="cpu", **options)
        for start, end in zip(cuts, cuts[1:], strict=False)
    ]


@pytest.fixture(scope="module")
def whole(model_dirs):
    return {name: load_model(path, device="cpu") for name, path in model_dirs.items()}


def whole_reply(loaded, **options):
    logits = []
    result = generate(
        loaded, PROMPT, max_new_tokens=NEW_TOKENS, stop_on_eos=False, logits_out=logits, **options
    )
    return result.token_ids, logits


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("split_index", [0, 1, 2], ids=["2-parts", "3-parts", "4-parts"])
def test_split_greedy_output_equals_the_whole_model_token_for_token(
    model_dirs, whole, architecture, split_index
):
    cuts = SPLITS[architecture][split_index]
    expected_tokens, expected_logits = whole_reply(whole[architecture])
    chain = make_chain(model_dirs[architecture], cuts)

    result = generate_split(
        chain,
        encode_prompt(whole[architecture], PROMPT),
        max_new_tokens=NEW_TOKENS,
        stop_on_eos=False,
        keep_logits=True,
    )

    assert result.token_ids == expected_tokens
    assert all(torch.equal(a, b) for a, b in zip(result.step_logits, expected_logits, strict=True))
    assert result.replays == 0


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_split_sampled_output_equals_the_whole_model_for_the_same_seed(model_dirs, whole, architecture):
    sampling = SamplingParams(temperature=1.0, top_p=0.9, seed=11)
    expected_tokens, _ = whole_reply(whole[architecture], temperature=1.0, top_p=0.9, seed=11)
    chain = make_chain(model_dirs[architecture], SPLITS[architecture][1])

    result = generate_split(
        chain,
        encode_prompt(whole[architecture], PROMPT),
        max_new_tokens=NEW_TOKENS,
        sampling=sampling,
        stop_on_eos=False,
    )

    assert result.token_ids == expected_tokens
    assert len(set(expected_tokens)) > 1


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("lost_partition", [0, 1, 2])
def test_a_partition_that_loses_its_cache_mid_generation_is_replayed_to_the_same_tokens(
    model_dirs, whole, architecture, lost_partition
):
    expected_tokens, expected_logits = whole_reply(whole[architecture])
    chain = make_chain(model_dirs[architecture], SPLITS[architecture][1])

    def lose_cache(step, runners):
        if step == 6:
            assert runners[lost_partition].drop_session("s1")

    result = generate_split(
        chain,
        encode_prompt(whole[architecture], PROMPT),
        max_new_tokens=NEW_TOKENS,
        stop_on_eos=False,
        session_id="s1",
        before_step=lose_cache,
        keep_logits=True,
    )

    assert result.replays == 1
    assert result.token_ids == expected_tokens
    assert all(torch.equal(a, b) for a, b in zip(result.step_logits, expected_logits, strict=True))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_changing_the_split_mid_generation_keeps_the_same_tokens(model_dirs, whole, architecture):
    expected_tokens, _ = whole_reply(whole[architecture])
    plans = {step: cuts for step, cuts in zip((4, 9, 13), SPLITS[architecture], strict=True)}

    def resplit(step, runners):
        if step in plans:
            return make_chain(model_dirs[architecture], plans[step])
        return None

    result = generate_split(
        make_chain(model_dirs[architecture], SPLITS[architecture][2]),
        encode_prompt(whole[architecture], PROMPT),
        max_new_tokens=NEW_TOKENS,
        stop_on_eos=False,
        before_step=resplit,
    )

    assert result.replays == 3
    assert result.token_ids == expected_tokens


def test_hidden_states_sent_through_the_wire_format_give_the_same_tokens(model_dirs, whole):
    expected_tokens, _ = whole_reply(whole["llama"])
    first, last = make_chain(model_dirs["llama"], [0, 4, 8])
    sampling = SamplingParams()
    pending = encode_prompt(whole["llama"], PROMPT)
    position = 0
    tokens = []
    crossing_shapes = []
    for step in range(NEW_TOKENS):
        payload = encode_tensor(first.forward("w", pending, position))
        hidden = decode_tensor(payload)
        crossing_shapes.append(tuple(hidden.shape))
        tokens.append(last.next_token("w", hidden, position, sampling=sampling, step=step))
        position += len(pending)
        pending = [tokens[-1]]

    assert tokens == expected_tokens
    # After the prompt only the new position's hidden state crosses the boundary.
    assert crossing_shapes[0] == (1, len(encode_prompt(whole["llama"], PROMPT)), 64)
    assert set(crossing_shapes[1:]) == {(1, 1, 64)}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_partition_holds_only_its_own_layers_weights(model_dirs, whole, architecture):
    model = whole[architecture].model
    if architecture == "llama":
        embeddings, layers, final_norm = [model.model.embed_tokens], model.model.layers, model.model.norm
    else:
        embeddings = [model.transformer.wte, model.transformer.wpe]
        layers, final_norm = model.transformer.h, model.transformer.ln_f

    def count(modules):
        return sum(parameter.numel() for module in modules for parameter in module.parameters())

    first, middle, last = make_chain(model_dirs[architecture], SPLITS[architecture][1])

    assert middle.parameter_count() == count(layers[middle.start_layer : middle.end_layer])
    assert first.parameter_count() == count([*embeddings, *layers[0 : first.end_layer]])
    # GPT-2 ties its head to the token embedding; the last partition then holds that matrix.
    assert last.parameter_count() == count(
        [*layers[last.start_layer : last.end_layer], final_norm, model.lm_head]
    )
    layer_prefix = "model.layers." if architecture == "llama" else "transformer.h."
    middle_layers = {
        int(name.removeprefix(layer_prefix).split(".")[0]) for name in middle.loaded_tensor_names
    }
    assert middle_layers == set(range(middle.start_layer, middle.end_layer))
    assert all(name.startswith(layer_prefix) for name in middle.loaded_tensor_names)


def test_a_single_partition_with_tied_embeddings_shares_one_matrix(model_dirs, whole):
    (runner,) = make_chain(model_dirs["gpt2"], [0, 6])

    assert runner.head.weight is runner.embeddings["wte"].weight
    assert runner.parameter_count() == sum(p.numel() for p in whole["gpt2"].model.parameters())


def test_a_runner_refuses_positions_it_has_no_cache_for(model_dirs):
    first, _ = make_chain(model_dirs["llama"], [0, 4, 8])
    first.forward("s", [5, 6, 7], 0)

    with pytest.raises(CacheMiss) as gap:
        first.forward("s", [8], 4)
    with pytest.raises(CacheMiss) as unknown:
        first.forward("other", [8], 3)

    assert (gap.value.cached_length, gap.value.position) == (3, 4)
    assert (unknown.value.cached_length, unknown.value.position) == (0, 3)
    assert first.session_length("s") == 3


def test_least_recently_used_sessions_are_evicted_beyond_the_limit(model_dirs):
    first, _ = make_chain(model_dirs["llama"], [0, 4, 8], max_sessions=2)
    for session_id in ("a", "b", "c"):
        first.forward(session_id, [5, 6], 0)

    assert first.session_ids() == ["b", "c"]
    with pytest.raises(CacheMiss):
        first.forward("a", [7], 2)


def test_one_prefill_replay_gives_nearly_the_same_logits_as_the_original_schedule(model_dirs, whole):
    history = encode_prompt(whole["llama"], PROMPT) + [11, 12, 13, 14]
    prompt_length = len(history) - 4
    chain = make_chain(model_dirs["llama"], [0, 3, 8])

    exact = replay_history(chain, "r", history, prompt_length, exact=True)
    fast = replay_history(chain, "r", history, prompt_length, exact=False)

    assert replay_schedule(prompt_length, len(history), exact=False) == [(0, len(history))]
    assert len(replay_schedule(prompt_length, len(history))) == 5
    assert torch.allclose(exact, fast, atol=1e-4)
    assert chain[1].session_length("r") == len(history)


def test_partition_ranges_and_flags_are_checked(model_dirs):
    with pytest.raises(ValueError, match="not a non-empty range"):
        PartitionRunner(model_dirs["llama"], 4, 4, device="cpu")
    with pytest.raises(ValueError, match="not a non-empty range"):
        PartitionRunner(model_dirs["llama"], 2, 9, device="cpu")
    with pytest.raises(ValueError, match="cannot have is_first=False"):
        PartitionRunner(model_dirs["llama"], 0, 4, is_first=False, device="cpu")


def test_a_chain_with_a_gap_is_refused(model_dirs):
    chain = [
        PartitionRunner(model_dirs["llama"], 0, 3, device="cpu"),
        PartitionRunner(model_dirs["llama"], 4, 8, device="cpu"),
    ]

    with pytest.raises(ValueError, match="not contiguous"):
        check_chain(chain)


def test_a_missing_model_directory_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        PartitionRunner(tmp_path / "nowhere", 0, 1)


def test_an_unsupported_family_is_refused_by_name(tmp_path):
    from transformers import GPTNeoXConfig

    GPTNeoXConfig(num_hidden_layers=2).save_pretrained(tmp_path)

    with pytest.raises(UnsupportedArchitecture, match="'gpt_neox' cannot be partitioned"):
        PartitionRunner(tmp_path, 0, 1)


def test_wire_format_round_trips_bit_for_bit():
    tensors = [
        torch.randn(1, 5, 64),
        torch.randn(1, 1, 8).to(torch.bfloat16),
        torch.randn(3, 4).to(torch.float16)[:, ::2],
        torch.arange(6),
        torch.tensor(2.5),
    ]

    for tensor in tensors:
        decoded = decode_tensor(encode_tensor(tensor))
        assert decoded.dtype == tensor.dtype
        assert torch.equal(decoded, tensor)


def test_wire_format_rejects_foreign_or_truncated_payloads():
    payload = encode_tensor(torch.randn(2, 3))

    with pytest.raises(WireFormatError, match="magic"):
        decode_tensor(b"\x80\x04pickle")
    with pytest.raises(WireFormatError, match="needs 24"):
        decode_tensor(payload[:-1])
    assert len(payload) == 4 + 2 + 2 * 8 + 24


def test_split_equals_whole_in_bfloat16_as_well(model_dirs):
    # The same kernels on the same shapes in bf16 give the same bits, as on a GPU worker.
    loaded = load_model(model_dirs["llama"], device="cpu", dtype=torch.bfloat16)
    expected_logits = []
    expected = generate(
        loaded,
        PROMPT,
        max_new_tokens=NEW_TOKENS,
        temperature=1.0,
        seed=5,
        stop_on_eos=False,
        logits_out=expected_logits,
    )
    chain = make_chain(model_dirs["llama"], [0, 3, 8], dtype=torch.bfloat16)

    result = generate_split(
        chain,
        encode_prompt(loaded, PROMPT),
        max_new_tokens=NEW_TOKENS,
        sampling=SamplingParams(temperature=1.0, seed=5),
        stop_on_eos=False,
        keep_logits=True,
    )

    assert expected_logits[0].dtype == torch.bfloat16
    assert result.token_ids == expected.token_ids
    assert all(torch.equal(a, b) for a, b in zip(result.step_logits, expected_logits, strict=True))
