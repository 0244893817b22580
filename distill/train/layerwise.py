"""Stage 3, variant `layerwise`: more signal per example, at a fraction of a full step's cost.

S's first `frozen_layers` layers are A's own (S = A's layers 0 1 2 3 10 11 keeps 0-3), so they stay
frozen: their output for every training text is computed once, and a step runs (and back-propagates
through) only the layers above. Each of those is regressed token by token onto A's hidden states at
the layer it stands for (student layer 10 -> A's layer 10 output: the TinyBERT / MiniLM recipe), and
the pooled vectors learn the teacher's ranking of in-batch passages for cross-lingual pseudo-queries
(`windows.py`: a sentence in language X, the 3-sentence windows of its document in language Y, the
right window's neighbours in the same batch as hard negatives).

Loss = w_tokens * MSE(last layer, A's last) + w_layers * mean MSE(other trained layers, A's)
     + w_scores * KL(teacher's query -> passage distribution || S's) + w_pooled * MSE(pooled, A's pooled)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from distill.losses import ScoreKLLoss, TokenMSELoss
from distill.models import Encoder, mean_pool
from distill.student import XLSearchRecurrentModel
from distill.train.windows import WindowSet


@dataclass
class TokenStates:
    """Per text: the frozen prefix's output, A's states at each trained layer's place, A's pooled vector."""

    inputs: list[torch.Tensor]  # (tokens, hidden) fp16
    targets: list[list[torch.Tensor]]  # [trained layer][text] -> (tokens, hidden) fp16
    pooled: torch.Tensor  # (texts, dim) fp32, L2-normalised


def attention_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive key mask (b, 1, 1, n), as XLSearchRecurrentModel builds it."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class TopLayers(nn.Module):
    """The trained layers above the frozen prefix; returns every layer's output."""

    def __init__(self, layers: nn.ModuleList) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        bias = attention_bias(mask, x.dtype)
        out = []
        for layer in self.layers:
            x = layer(x, bias)
            out.append(x)
        return out


@torch.no_grad()
def token_states(
    student: XLSearchRecurrentModel,
    s_enc: Encoder,
    assistant: Encoder,
    texts: list[str],
    role: str,
    *,
    frozen: int,
    a_layers: list[int],
    batch_size: int,
    label: str,
) -> TokenStates:
    """The frozen prefix's outputs and A's targets for `texts` (one forward of each, longest first)."""
    inputs: list = [None] * len(texts)
    targets: list[list] = [[None] * len(texts) for _ in a_layers]
    pooled = torch.empty(len(texts), assistant.dim)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in tqdm(range(0, len(texts), batch_size), desc=label, unit="batch"):
        idx = order[start : start + batch_size]
        batch = {k: v.to(s_enc.device) for k, v in s_enc.tokenize([texts[i] for i in idx], role).items()}
        mask = batch["attention_mask"]
        x = student.embeddings(batch["input_ids"], batch.get("token_type_ids"))
        bias = attention_bias(mask, x.dtype)
        for layer in student.layers[:frozen]:
            x = layer(x, bias)
        a_batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        hidden = assistant.model(**a_batch, output_hidden_states=True).hidden_states
        vec = F.normalize(mean_pool(hidden[-1], mask), dim=-1)
        for j, i in enumerate(idx):
            n = int(mask[j].sum())
            inputs[i] = x[j, :n].half().cpu()
            for k, a in enumerate(a_layers):
                targets[k][i] = hidden[a + 1][j, :n].half().cpu()
            pooled[i] = vec[j].float().cpu()
    return TokenStates(inputs, targets, pooled)


def pad(rows: list[torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length (tokens, hidden) rows as one zero-padded fp32 batch and its mask."""
    n = max(r.shape[0] for r in rows)
    out = torch.zeros(len(rows), n, rows[0].shape[-1], device=device)
    mask = torch.zeros(len(rows), n, dtype=torch.long, device=device)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r.to(device, torch.float32)
        mask[i, : r.shape[0]] = 1
    return out, mask


def batch_windows(windows: WindowSet, groups: np.ndarray, rng: random.Random) -> tuple[list, list]:
    """(query items, passage items) for the windows of `groups`; an item is (window, language index).

    Each window gives one query in language X and two passages: one in a language Y != X (the
    cross-lingual job) and one in any language, so the teacher's scores also rank translations."""
    n_lang = len(windows.langs)
    queries, passages = [], []
    for g in groups:
        for w in windows.groups[g]:
            x = rng.randrange(n_lang)
            y = rng.choice([k for k in range(n_lang) if k != x]) if n_lang > 1 else x
            queries.append((w, x))
            passages += [(w, y), (w, rng.randrange(n_lang))]
    return queries, passages


def window_states(
    student: XLSearchRecurrentModel,
    s_enc: Encoder,
    assistant: Encoder,
    windows: WindowSet,
    *,
    frozen: int,
    a_layers: list[int],
    batch_size: int,
) -> dict[str, TokenStates]:
    """States of every window's queries and passages, item (w, l) at row w * len(langs) + l."""
    common = dict(frozen=frozen, a_layers=a_layers, batch_size=batch_size)
    return {
        "query": token_states(
            student,
            s_enc,
            assistant,
            [t for row in windows.queries for t in row],
            "query",
            label="layerwise states (queries)",
            **common,
        ),
        "passage": token_states(
            student,
            s_enc,
            assistant,
            [t for row in windows.passages for t in row],
            "passage",
            label="layerwise states (passages)",
            **common,
        ),
    }


class LayerwiseLoss(nn.Module):
    """The layerwise stage's loss over one batch of (query, passage) items; see the module docstring."""

    def __init__(
        self, *, tokens: float, layers: float, scores: float, pooled: float, temperature: float
    ) -> None:
        super().__init__()
        self.w_tokens, self.w_layers, self.w_scores, self.w_pooled = tokens, layers, scores, pooled
        self.token_mse, self.score_kl = TokenMSELoss(), ScoreKLLoss(temperature)

    def forward(
        self,
        outs: list[torch.Tensor],
        targets: list[torch.Tensor],
        mask: torch.Tensor,
        t_pooled: torch.Tensor,
        n_queries: int,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        tokens = self.token_mse(outs[-1], targets[-1], mask)
        layers = (
            torch.stack(
                [self.token_mse(o, t, mask) for o, t in zip(outs[:-1], targets[:-1], strict=True)]
            ).mean()
            if len(outs) > 1
            else tokens.new_zeros(())
        )
        s = F.normalize(mean_pool(outs[-1], mask), dim=-1)
        scores = self.score_kl(s[:n_queries], s[n_queries:], t_pooled[:n_queries], t_pooled[n_queries:])
        pooled = F.mse_loss(s, t_pooled)
        parts = {"tokens": tokens, "layers": layers, "scores": scores, "pooled": pooled}
        weights = {
            "tokens": self.w_tokens,
            "layers": self.w_layers,
            "scores": self.w_scores,
            "pooled": self.w_pooled,
        }
        total = sum(weights[k] * v for k, v in parts.items())
        return total, {k: float(v.item()) for k, v in parts.items()}


def batch_tensors(
    states: dict[str, TokenStates], windows: WindowSet, groups: np.ndarray, device
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor, int]:
    """(inputs, mask, A's targets per trained layer, A's pooled vectors, number of queries) of one batch.

    The languages of a batch are drawn from a generator seeded by its groups, so a resumed run sees
    the batches an uninterrupted one would."""
    rng = random.Random(",".join(map(str, groups.tolist())))
    queries, passages = batch_windows(windows, groups, rng)
    n_lang = len(windows.langs)
    rows = [("query", w * n_lang + lang) for w, lang in queries] + [
        ("passage", w * n_lang + lang) for w, lang in passages
    ]
    x, mask = pad([states[r].inputs[i] for r, i in rows], device)
    n_layers = len(states["query"].targets)
    targets = [pad([states[r].targets[k][i] for r, i in rows], device)[0] for k in range(n_layers)]
    t_pooled = torch.stack([states[r].pooled[i] for r, i in rows]).to(device)
    return x, mask, targets, t_pooled, len(queries)
