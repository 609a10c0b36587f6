"""A decoder-only transformer (causal LM) with a slot-based KV cache.

Weights come from a seeded generator, so every process that builds the same size with the
same seed serves bit-identical weights without downloading anything. The architecture is a
plain pre-LayerNorm GPT: learned positions, multi-head attention, GELU MLP. The cost profile
(weight-bandwidth-bound decode at small batch, compute-bound prefill) is what makes batch
size, streams and precision real trade-offs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.tokenizer import VOCAB_SIZE


@dataclass(frozen=True)
class ModelSpec:
    name: str
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    max_context: int
    vocab_size: int = VOCAB_SIZE

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


MODEL_SPECS: dict[str, ModelSpec] = {
    "tiny": ModelSpec("tiny", d_model=64, n_layers=2, n_heads=4, d_ff=256, max_context=256),
    "small": ModelSpec("small", d_model=384, n_layers=6, n_heads=6, d_ff=1536, max_context=512),
    "medium": ModelSpec("medium", d_model=512, n_layers=8, n_heads=8, d_ff=2048, max_context=1024),
}


class KVCache:
    """Per-executor key/value store with one slot per running sequence.

    Running sequences always occupy slots ``0..n-1`` (a leaving sequence is replaced by the
    last one), so a decode step attends over a view of the cache instead of gathering it.
    """

    def __init__(
        self,
        spec: ModelSpec,
        max_batch: int,
        dtype: torch.dtype,
        device: torch.device,
        max_len: int | None = None,
    ) -> None:
        length = max_len or spec.max_context
        shape = (spec.n_layers, max_batch, spec.n_heads, length, spec.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_batch = max_batch
        self.max_len = length

    def move(self, src: int, dst: int, length: int) -> None:
        if src != dst:
            self.k[:, dst, :, :length] = self.k[:, src, :, :length]
            self.v[:, dst, :, :length] = self.v[:, src, :, :length]


class Attention(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.n_heads = spec.n_heads
        self.head_dim = spec.head_dim
        self.qkv = nn.Linear(spec.d_model, 3 * spec.d_model)
        self.out = nn.Linear(spec.d_model, spec.d_model)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).split(self.n_heads * self.head_dim, dim=-1)
        shape = (b, t, self.n_heads, self.head_dim)
        return (
            q.reshape(shape).transpose(1, 2),
            k.reshape(shape).transpose(1, 2),
            v.reshape(shape).transpose(1, 2),
        )

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))

    def full(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(x)
        return self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=True))

    def prefill(
        self, x: torch.Tensor, cache: KVCache, layer: int, first_slot: int
    ) -> torch.Tensor:
        q, k, v = self._split(x)
        n, t = x.shape[0], x.shape[1]
        cache.k[layer, first_slot : first_slot + n, :, :t] = k
        cache.v[layer, first_slot : first_slot + n, :, :t] = v
        return self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=True))

    def decode(
        self,
        x: torch.Tensor,
        cache: KVCache,
        layer: int,
        positions: torch.Tensor,
        rows: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        q, k, v = self._split(x)
        n = x.shape[0]
        span = mask.shape[-1]
        cache.k[layer][rows, :, positions] = k[:, :, 0]
        cache.v[layer][rows, :, positions] = v[:, :, 0]
        keys = cache.k[layer, :n, :, :span]
        values = cache.v[layer, :n, :, :span]
        return self._merge(F.scaled_dot_product_attention(q, keys, values, attn_mask=mask))


class Block(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(spec.d_model)
        self.attn = Attention(spec)
        self.ln2 = nn.LayerNorm(spec.d_model)
        self.fc1 = nn.Linear(spec.d_model, spec.d_ff)
        self.fc2 = nn.Linear(spec.d_ff, spec.d_model)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.ln2(x))))


class CausalLM(nn.Module):
    """The model. ``forward`` recomputes everything; ``prefill``/``decode`` use the cache."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.tok_emb = nn.Embedding(spec.vocab_size, spec.d_model)
        self.pos_emb = nn.Embedding(spec.max_context, spec.d_model)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.n_layers))
        self.ln_f = nn.LayerNorm(spec.d_model)
        self.lm_head = nn.Linear(spec.d_model, spec.vocab_size)

    @property
    def layers(self) -> list[Block]:
        return cast(list[Block], list(self.blocks))

    @property
    def dtype(self) -> torch.dtype:
        return self.ln_f.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.ln_f.weight.device

    def _embed(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.tok_emb(ids) + self.pos_emb(positions)
        return x.to(self.dtype)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, seq, vocab]`` from a full causal pass (the reference path)."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self._embed(ids, positions)
        for block in self.layers:
            x = x + block.attn.full(block.ln1(x))
            x = x + block.mlp(x)
        return self.lm_head(self.ln_f(x)).float()

    def prefill(
        self, ids: torch.Tensor, lengths: torch.Tensor, cache: KVCache, first_slot: int
    ) -> torch.Tensor:
        """Prompts ``ids [n, T]`` (right-padded; row ``i`` is ``lengths[i]`` long) fill slots
        ``first_slot..first_slot+n-1``. Returns each prompt's last-position logits ``[n, V]``.

        Right padding needs no extra mask: a causal query at a real position only sees real
        keys, and the padded keys left in the cache sit at positions that decode overwrites
        before any query can attend to them.
        """
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self._embed(ids, positions)
        for layer, block in enumerate(self.layers):
            x = x + block.attn.prefill(block.ln1(x), cache, layer, first_slot)
            x = x + block.mlp(x)
        rows = torch.arange(ids.shape[0], device=ids.device)
        last = x[rows, lengths - 1]
        return self.lm_head(self.ln_f(last)).float()

    def prefill_one(self, prompt: list[int], cache: KVCache, slot: int) -> torch.Tensor:
        ids = torch.tensor([prompt], device=self.device)
        lengths = torch.tensor([len(prompt)], device=self.device)
        return self.prefill(ids, lengths, cache, slot)[0]

    def decode(
        self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache
    ) -> torch.Tensor:
        """One step for the sequences in slots ``0..n-1``: ``tokens[i]`` sits at
        ``positions[i]``. Returns logits ``[n, vocab]``."""
        n = tokens.shape[0]
        span = int(positions.max().item()) + 1
        rows = torch.arange(n, device=tokens.device)
        keys_pos = torch.arange(span, device=tokens.device)
        mask = (keys_pos[None, :] <= positions[:, None])[:, None, None, :]
        x = self._embed(tokens[:, None], positions[:, None])
        for layer, block in enumerate(self.layers):
            x = x + block.attn.decode(block.ln1(x), cache, layer, positions, rows, mask)
            x = x + block.mlp(x)
        return self.lm_head(self.ln_f(x[:, 0])).float()


def build_model(spec: ModelSpec, seed: int) -> CausalLM:
    """Deterministic weights: the same ``(spec, seed)`` gives the same tensors everywhere."""
    generator = torch.Generator().manual_seed(seed)
    with torch.device("cpu"):
        model = CausalLM(spec)
    std = 0.02
    residual_std = std / math.sqrt(2 * spec.n_layers)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.zero_()
            elif "ln" in name:
                param.fill_(1.0)
            elif name.endswith("out.weight") or name.endswith("fc2.weight"):
                param.normal_(0.0, residual_std, generator=generator)
            else:
                param.normal_(0.0, std, generator=generator)
    model.eval()
    model.requires_grad_(False)
    return model


def perturbed(base: CausalLM, relative: float, seed: int) -> CausalLM:
    """A copy of ``base`` whose weight matrices and embeddings carry Gaussian noise of
    ``relative`` times each tensor's own RMS (LayerNorms and biases are left alone)."""
    generator = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(base)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() < 2 or "ln" in name:
                continue
            rms = param.float().pow(2).mean().sqrt()
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            param.add_((noise * rms * relative).to(param.dtype))
    return model


def greedy_generate(model: CausalLM, prompt: list[int], max_tokens: int) -> list[int]:
    """Reference decode by full recompute each step; the tests compare the cache path to it."""
    ids = list(prompt)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(max_tokens):
            logits = model(torch.tensor([ids], device=model.device))[0, -1]
            token = int(torch.argmax(logits).item())
            out.append(token)
            ids.append(token)
    return out
