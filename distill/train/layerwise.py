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
from distill.models import Encoder, Role, mean_pool
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
    texts = {Role.QUERY: windows.queries, Role.PASSAGE: windows.passages}
    return {
        role: token_states(
            student,
            s_enc,
            assistant,
            [t for row in rows for t in row],
            role,
            frozen=frozen,
            a_layers=a_layers,
            batch_size=batch_size,
            label=f"layerwise states ({role})",
        )
        for role, rows in texts.items()
    }


@dataclass
class Part:
    """One padded sub-batch (the queries, or the passages): each is padded to its own longest text."""

    inputs: torch.Tensor
    mask: torch.Tensor
    targets: list[torch.Tensor]  # A's states per trained layer
    pooled: torch.Tensor  # A's pooled vectors


class LayerwiseLoss(nn.Module):
    """The layerwise stage's loss over a batch of queries and passages; see the module docstring."""

    def __init__(
        self, *, tokens: float, layers: float, scores: float, pooled: float, temperature: float
    ) -> None:
        super().__init__()
        self.weights = {"tokens": tokens, "layers": layers, "scores": scores, "pooled": pooled}
        self.token_mse, self.score_kl = TokenMSELoss(), ScoreKLLoss(temperature)

    def _token_terms(self, outs: list[torch.Tensor], part: Part) -> tuple[torch.Tensor, torch.Tensor]:
        last = self.token_mse(outs[-1], part.targets[-1], part.mask)
        if len(outs) == 1:
            return last, last.new_zeros(())
        others = [self.token_mse(o, t, part.mask) for o, t in zip(outs[:-1], part.targets[:-1], strict=True)]
        return last, torch.stack(others).mean()

    def forward(self, q_outs: list[torch.Tensor], q: Part, p_outs: list[torch.Tensor], p: Part):
        n_q, n_p = q.mask.sum(), p.mask.sum()
        (q_last, q_mid), (p_last, p_mid) = self._token_terms(q_outs, q), self._token_terms(p_outs, p)
        s_q = F.normalize(mean_pool(q_outs[-1], q.mask), dim=-1)
        s_p = F.normalize(mean_pool(p_outs[-1], p.mask), dim=-1)
        parts = {
            "tokens": (q_last * n_q + p_last * n_p) / (n_q + n_p),  # per token over both sub-batches
            "layers": (q_mid * n_q + p_mid * n_p) / (n_q + n_p),
            "scores": self.score_kl(s_q, s_p, q.pooled, p.pooled),
            "pooled": F.mse_loss(torch.cat([s_q, s_p]), torch.cat([q.pooled, p.pooled])),
        }
        total = sum(self.weights[k] * v for k, v in parts.items())
        return total, {k: float(v.item()) for k, v in parts.items()}


def batch_parts(
    states: dict[str, TokenStates], windows: WindowSet, groups: np.ndarray, device
) -> tuple[Part, Part]:
    """The query and the passage sub-batch for the windows of `groups`.

    The languages of a batch are drawn from a generator seeded by its groups, so a resumed run sees
    the batches an uninterrupted one would."""
    rng = random.Random(",".join(map(str, groups.tolist())))
    queries, passages = batch_windows(windows, groups, rng)
    n_lang = len(windows.langs)

    def part(role: str, items: list[tuple[int, int]]) -> Part:
        st, rows = states[role], [w * n_lang + lang for w, lang in items]
        x, mask = pad([st.inputs[i] for i in rows], device)
        targets = [pad([layer[i] for i in rows], device)[0] for layer in st.targets]
        return Part(x, mask, targets, st.pooled[rows].to(device))

    return part(Role.QUERY, queries), part(Role.PASSAGE, passages)
