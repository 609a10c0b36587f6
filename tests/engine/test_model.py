from __future__ import annotations

import pytest
import torch

from engine.model import MODEL_SPECS
from engine.model import KVCache
from engine.model import build_model
from engine.model import greedy_generate
from engine.tokenizer import encode

SPEC = MODEL_SPECS["tiny"]
CPU = torch.device("cpu")


def test_same_seed_gives_identical_weights_and_output() -> None:
    a = build_model(SPEC, seed=7)
    b = build_model(SPEC, seed=7)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    prompt = encode("determinism")
    assert greedy_generate(a, prompt, 12) == greedy_generate(b, prompt, 12)


def test_different_seed_gives_different_weights() -> None:
    a = build_model(SPEC, seed=1)
    b = build_model(SPEC, seed=2)
    assert not torch.equal(a.tok_emb.weight, b.tok_emb.weight)


def test_kv_cache_decode_matches_full_recompute() -> None:
    model = build_model(SPEC, seed=0)
    ids = encode("the cache must not change the maths")
    cache = KVCache(SPEC, max_batch=1, dtype=torch.float32, device=CPU)
    with torch.inference_mode():
        logits = model.prefill_one(ids, cache, slot=0)
        seq = list(ids)
        for _ in range(10):
            full = model(torch.tensor([seq]))[0, -1]
            torch.testing.assert_close(logits, full, rtol=1e-4, atol=1e-4)
            token = int(torch.argmax(logits).item())
            logits = model.decode(torch.tensor([token]), torch.tensor([len(seq)]), cache)[0]
            seq.append(token)


def test_batched_decode_with_ragged_positions_matches_single_sequences() -> None:
    model = build_model(SPEC, seed=0)
    prompts = [encode("a"), encode("a much longer prompt than the first"), encode("mid size")]
    cache = KVCache(SPEC, max_batch=3, dtype=torch.float32, device=CPU)
    with torch.inference_mode():
        firsts = [
            int(torch.argmax(model.prefill_one(p, cache, slot)).item())
            for slot, p in enumerate(prompts)
        ]
        batched = model.decode(
            torch.tensor(firsts), torch.tensor([len(p) for p in prompts]), cache
        )
        for row, (prompt, first) in enumerate(zip(prompts, firsts, strict=True)):
            full = model(torch.tensor([[*prompt, first]]))[0, -1]
            torch.testing.assert_close(batched[row], full, rtol=1e-4, atol=1e-4)


def test_greedy_generate_honours_max_tokens() -> None:
    model = build_model(SPEC, seed=0)
    assert len(greedy_generate(model, encode("x"), 5)) == 5


def test_positions_beyond_the_context_are_rejected_by_the_model() -> None:
    model = build_model(SPEC, seed=0)
    too_long = torch.zeros((1, SPEC.max_context + 1), dtype=torch.long)
    with pytest.raises(IndexError):
        model(too_long)


def test_right_padded_batched_prefill_matches_full_recompute() -> None:
    model = build_model(SPEC, seed=0)
    prompts = [encode("short"), encode("a considerably longer prompt"), encode("mid")]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([p + [0] * (width - len(p)) for p in prompts])
    lengths = torch.tensor([len(p) for p in prompts])
    cache = KVCache(SPEC, max_batch=3, dtype=torch.float32, device=CPU)
    with torch.inference_mode():
        logits = model.prefill(ids, lengths, cache, first_slot=0)
        firsts = torch.argmax(logits, dim=-1)
        for row, prompt in enumerate(prompts):
            torch.testing.assert_close(
                logits[row], model(torch.tensor([prompt]))[0, -1], rtol=1e-4, atol=1e-4
            )
        # Decoding after a padded prefill must not see the padding.
        step = model.decode(firsts, lengths, cache)
        for row, prompt in enumerate(prompts):
            full = model(torch.tensor([[*prompt, int(firsts[row])]]))[0, -1]
            torch.testing.assert_close(step[row], full, rtol=1e-4, atol=1e-4)
