"""A tiny, fully float64 causal LM for gradient checks (transformers' RMSNorm computes in float32)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


class ToyLM(nn.Module):
    """Embedding, a causal running mean, two tanh layers and a head: smooth to any order."""

    def __init__(self, vocab: int = 11, dim: int = 5, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, dim, dtype=torch.float64)
        self.mix = nn.Linear(2 * dim, dim, dtype=torch.float64)
        self.hidden = nn.Linear(dim, dim, dtype=torch.float64)
        self.head = nn.Linear(dim, vocab, dtype=torch.float64)

    def forward(self, input_ids, attention_mask=None, **_):
        e = self.embed(input_ids)  # (B, T, d)
        steps = torch.arange(1, e.shape[1] + 1, dtype=e.dtype).view(1, -1, 1)
        context = e.cumsum(1) / steps  # causal: position t sees tokens <= t
        h = torch.tanh(self.mix(torch.cat([e, context], -1)))
        return SimpleNamespace(logits=self.head(torch.tanh(self.hidden(h))))


def toy_batch(rows: list[list[int]], answer_from: int) -> dict[str, torch.Tensor]:
    """Equal-length sequences; tokens from `answer_from` on are the labelled answer."""
    ids = torch.tensor(rows)
    labels = ids.clone()
    labels[:, :answer_from] = -100
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
