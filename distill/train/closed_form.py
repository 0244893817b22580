"""Closed-form starts (issue 27): least-squares maps fitted on A's own states, no labels, no gradient.

A student that keeps A's layers 0-3 and 10-11 hands layer 10 the output of layer 3 where A hands it
the output of layer 9. The `bridge` (`student.bridge`, a Linear(h, h) after S's layer 3) is fitted,
token by token, to map A's states after layer 3 onto A's states after layer 9. The `output_map`
(`student.output_map`, a Linear(h, h) on S's last states; mean pooling is linear, so it acts on the
sentence vector) is fitted afterwards to map S's pooled vectors onto A's sentence vectors.

Both are ridge regressions solved from normal equations accumulated in float64, so memory does not
grow with the number of tokens: a few minutes of CPU for a few thousand texts, and deterministic.
The held-out measurement that motivated them (issue 27, the 6-layer cut, untrained): question R@1
0.304 plain, 0.379 with both maps.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from distill.models import mean_pool

RIDGE = 1e-4  # relative to the mean diagonal of X^T X: enough to keep the solve well posed


class NormalEquations:
    """Accumulates X^T X and X^T Y for `y ~ x W + b`; `solve` gives W, b and the fit's R^2."""

    def __init__(self, d_in: int, d_out: int) -> None:
        self.xtx = torch.zeros(d_in + 1, d_in + 1, dtype=torch.float64)
        self.xty = torch.zeros(d_in + 1, d_out, dtype=torch.float64)
        self.yty = 0.0
        self.ysum = torch.zeros(d_out, dtype=torch.float64)
        self.n = 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x = torch.cat([x.double().cpu(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
        y = y.double().cpu()
        self.xtx += x.T @ x
        self.xty += x.T @ y
        self.yty += float((y * y).sum())
        self.ysum += y.sum(0)
        self.n += len(x)

    def solve(self, ridge: float = RIDGE) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(weight (d_out, d_in), bias (d_out,), R^2 on the accumulated data)."""
        if self.n == 0:
            raise ValueError("no rows to fit a map on")
        d = self.xtx.shape[0]
        reg = torch.eye(d, dtype=torch.float64) * ridge * float(self.xtx.diagonal()[:-1].mean())
        reg[-1, -1] = 0.0  # the bias is not shrunk
        b = torch.linalg.solve(self.xtx + reg, self.xty)
        sse = self.yty - 2 * float((b * self.xty).sum()) + float((b * (self.xtx @ b)).sum())
        sst = self.yty - float((self.ysum**2).sum()) / self.n
        return b[:-1].T.float(), b[-1].float(), 1.0 - sse / max(sst, 1e-12)


def bridge_gap(layer_ids: list[int]) -> tuple[int, int, int]:
    """(S's layer index the bridge follows, A's hidden-state index before the gap, after it)."""
    gaps = [i for i in range(len(layer_ids) - 1) if layer_ids[i + 1] != layer_ids[i] + 1]
    if len(gaps) != 1:
        raise ValueError(f"a bridge needs layers with exactly one gap, not {layer_ids}")
    i = gaps[0]
    # hidden_states[k] is the output of A's layer k - 1 (hidden_states[0]: the embeddings)
    return i, layer_ids[i] + 1, layer_ids[i + 1]


def fit_rows(n_items: int, n: int, seed: int) -> np.ndarray:
    """`n` of `n_items` row indices, drawn with `seed` (sorted: the items keep their order)."""
    return np.sort(np.random.default_rng(seed).permutation(n_items)[:n])


def fit_items(items: list[tuple[str | None, str]], n: int, seed: int) -> list[tuple[str | None, str]]:
    """`n` of the (role, text) items, drawn with `seed` so both roles are represented as in training."""
    return [items[i] for i in fit_rows(len(items), n, seed)]


def _batches(
    items: list[tuple[str | None, str]], size: int
) -> Iterator[tuple[str | None, list[str], list[int]]]:
    """(role, texts, their indices in `items`): one role per batch, since a batch shares one prompt."""
    for role in dict.fromkeys(r for r, _ in items):
        idx = [i for i, (r, _) in enumerate(items) if r == role]
        for start in range(0, len(idx), size):
            chunk = idx[start : start + size]
            yield role, [items[i][1] for i in chunk], chunk


def _inputs(encoder, texts: list[str], role: str | None, device) -> dict[str, torch.Tensor]:
    batch = encoder.tokenize(texts, role)
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return {k: batch[k].to(device) for k in keys if k in batch}


@torch.no_grad()
def fit_bridge(student, assistant, items, layer_ids: list[int], *, batch_size: int = 32) -> dict:
    """Set `student.bridge` to the least-squares map from A's states before the gap to after it."""
    after, src, dst = bridge_gap(layer_ids)
    a_model = assistant.model.eval()
    device = next(a_model.parameters()).device
    h = student.config.hidden_size
    eq = NormalEquations(h, h)
    for role, texts, _ in _batches(items, batch_size):
        batch = _inputs(assistant, texts, role, device)
        states = a_model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].bool()
        eq.add(states[src][mask], states[dst][mask])
    weight, bias, r2 = eq.solve()
    student.bridge.weight.copy_(weight)
    student.bridge.bias.copy_(bias)
    return {"bridge_after_layer": layer_ids[after], "bridge_r2": round(r2, 4), "bridge_tokens": eq.n}


@torch.no_grad()
def fit_output_map(
    student, s_encoder, items, targets: np.ndarray, *, passes: int = 1, batch_size: int = 32
) -> dict:
    """Set `student.output_map` to the least-squares map from S's pooled vectors onto `targets`
    (A's sentence vectors of `items`, row for row), S run with its layers `passes` times (stage 2's
    student has 0 passes until stage 3 loads it)."""
    was_training = student.training
    student.eval()
    head = student.output_map
    torch.nn.init.eye_(head.weight)  # fit on what S computes without the map
    torch.nn.init.zeros_(head.bias)
    device = head.weight.device
    h = student.config.hidden_size
    eq = NormalEquations(h, h)
    for role, texts, rows in _batches(items, batch_size):
        batch = _inputs(s_encoder, texts, role, device)
        pooled = mean_pool(student(**batch, num_passes=passes).last_hidden_state, batch["attention_mask"])
        eq.add(pooled, torch.as_tensor(targets[rows]))
    weight, bias, r2 = eq.solve()
    head.weight.copy_(weight)
    head.bias.copy_(bias)
    student.train(was_training)
    return {"output_map_r2": round(r2, 4), "output_map_texts": eq.n}


def closed_form_start(
    run, student, s_encoder, assistant, items: list[tuple[str | None, str]], targets: np.ndarray | None
) -> dict:
    """Fit the maps `run.cfg.student` asks for (bridge first: the output map fits what it makes).
    `targets` holds A's sentence vector of each item (needed for the output map only)."""
    s = run.cfg.student
    rows = fit_rows(len(items), s.closed_form_texts, run.cfg.seed)
    picked = [items[i] for i in rows]
    report: dict = {}
    if s.bridge:
        report |= fit_bridge(student, assistant, picked, s.layer_ids())
    if s.output_map:
        report |= fit_output_map(student, s_encoder, picked, targets[rows], passes=s.passes)
    return report
