"""The training loop shared by all four stages, readable top to bottom.

A stage hands in its model, the parameters to train and a `compute_loss(indices)` closure; the
loop owns the optimiser (AdamW), the schedule (linear warm-up, then linear decay), gradient
clipping, logging, checkpoints and resumption. The data order is a seeded permutation per epoch,
so the step number alone fixes the data position: a resumed run sees exactly the batches an
uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from distill.config import StageConfig
from distill.fileio import atomic_open
from distill.train import distributed

LossFn = Callable[[np.ndarray], tuple[torch.Tensor, dict[str, float]]]
StepCallback = Callable[[str, int, float], None]  # (stage name, steps done, loss)
EvalCallback = Callable[[int, float], None]  # (steps done, training seconds so far)


@dataclass
class LoopResult:
    steps: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) at every step
    resumed_from: int = 0


class MetricsLog:
    """Appends one JSON object per line; only the main process writes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, **record) -> None:
        if distributed.is_main():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")


def batch_indices(
    step: int, batch_size: int, n: int, seed: int, buckets: np.ndarray | None = None
) -> np.ndarray:
    """Item indices of global batch `step`: positions step*B .. step*B+B-1 of the epoch permutations.

    With `buckets` (a label per item, e.g. sentence vs passage) an epoch is a shuffled sequence of
    batches each drawn from one bucket, so short texts are not padded to a passage's length.
    """
    positions = np.arange(step * batch_size, (step + 1) * batch_size)
    epochs, offsets = positions // n, positions % n
    out = np.empty(batch_size, dtype=np.int64)
    for epoch in np.unique(epochs):
        rng = np.random.default_rng([seed, int(epoch)])
        perm = rng.permutation(n) if buckets is None else _bucketed_permutation(rng, buckets, batch_size)
        sel = epochs == epoch
        out[sel] = perm[offsets[sel]]
    return out


def _bucketed_permutation(rng: np.random.Generator, buckets: np.ndarray, batch_size: int) -> np.ndarray:
    chunks = []
    for label in np.unique(buckets):
        idx = rng.permutation(np.flatnonzero(buckets == label))
        chunks += [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    order = rng.permutation(len(chunks))
    return np.concatenate([chunks[i] for i in order])


def linear_warmup_decay(total: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, *, step: int, model, optimizer, scheduler, losses, elapsed: float) -> None:
    """Trainable weights, optimiser, scheduler, RNG states and data position (= step), atomically.

    Only parameters that train are stored: frozen ones come back from the stage's deterministic
    starting point, which keeps stage 1's checkpoint (e5's 96M frozen embedding rows) small.
    """
    if not distributed.is_main():
        return
    trainable = {
        n: p.detach().cpu() for n, p in distributed.unwrap(model).named_parameters() if p.requires_grad
    }
    state = {
        "step": step,
        "model": trainable,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _rng_state(),
        "losses": losses,
        "elapsed": elapsed,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        torch.save(state, f)


class _GracefulInterrupt:
    """Turn the first Ctrl-C into a flag checked between steps (never mid optimiser update)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second Ctrl-C: stop right now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train_loop(
    *,
    name: str,
    model: torch.nn.Module,
    compute_loss: LossFn,
    n_items: int,
    cfg: StageConfig,
    seed: int,
    checkpoint: Path,
    log: MetricsLog,
    resume: bool = False,
    on_step: StepCallback | None = None,
    buckets: np.ndarray | None = None,
    evaluate: EvalCallback | None = None,
    eval_every: int = 0,
) -> LoopResult:
    """`cfg.steps` steps of `compute_loss(indices)`: checkpoints periodically and on Ctrl-C, scores every `eval_every`."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = _optimizer(params, cfg)
    start, losses, elapsed = _start(
        name, checkpoint, model, optimizer, scheduler, log, resume=resume, seed=seed
    )
    model.train()
    rank, world = distributed.rank(), distributed.world_size()
    autocast = _autocast(model)
    t0 = time.time() - elapsed
    trained = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "losses": losses}
    bar = tqdm(total=cfg.steps, initial=start, desc=name, unit="step", disable=not distributed.is_main())
    with _GracefulInterrupt() as interrupt, bar:
        for step in range(start, cfg.steps):
            # 1. this rank's share of the global batch (the data position is the step number)
            idx = batch_indices(step, cfg.batch_size, n_items, seed, buckets)[rank::world]
            # 2. forward + loss
            with autocast:
                loss, parts = compute_loss(idx)
            # 3. backward, clip, update
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            # 4. bookkeeping: log, checkpoint (periodically and on Ctrl-C), report
            value = loss.item()
            losses.append((step + 1, value))
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}")
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                _log_step(log, name, step + 1, value, parts, scheduler.get_last_lr()[0], grad_norm, t0)
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
                save_checkpoint(checkpoint, step=step + 1, elapsed=time.time() - t0, **trained)
            if evaluate is not None and eval_every and (step + 1) % eval_every == 0 and step + 1 < cfg.steps:
                t0 += _score(model, evaluate, step + 1, time.time() - t0)  # scoring is not training time
            if on_step is not None:
                on_step(name, step + 1, value)
            if interrupt.requested:  # after on_step: a Ctrl-C during it still saves this step
                save_checkpoint(checkpoint, step=step + 1, elapsed=time.time() - t0, **trained)
                log.write(stage=name, event="interrupted", step=step + 1)
                raise KeyboardInterrupt(f"{name} interrupted at step {step + 1}; checkpoint saved")
    model.eval()
    return LoopResult(steps=cfg.steps, seconds=time.time() - t0, losses=losses, resumed_from=start)


def _start(
    name: str, checkpoint: Path, model, optimizer, scheduler, log: MetricsLog, *, resume: bool, seed: int
):
    """(first step, losses so far, training seconds so far): from the checkpoint when resuming."""
    if resume and checkpoint.exists():
        start, losses, elapsed = _resume(checkpoint, model, optimizer, scheduler)
        log.write(stage=name, event="resumed", step=start)
        return start, losses, elapsed
    torch.manual_seed(seed)  # dropout masks: same run, same result
    return 0, [], 0.0


def _score(model: torch.nn.Module, evaluate: EvalCallback, step: int, seconds: float) -> float:
    """Score the model in eval mode, then return to training; the seconds it took."""
    paused = time.time()
    model.eval()
    evaluate(step, seconds)
    model.train()
    return time.time() - paused


def _log_step(
    log: MetricsLog, name: str, step: int, loss: float, parts: dict, lr: float, grad_norm, t0: float
):
    seconds = round(time.time() - t0, 2)
    log.write(stage=name, step=step, loss=loss, **parts, lr=lr, grad_norm=float(grad_norm), seconds=seconds)


def _optimizer(params: list, cfg: StageConfig):
    """AdamW with linear warm-up then linear decay to 0."""
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(cfg.steps, cfg.warmup_ratio))
    return optimizer, scheduler


def _autocast(model: torch.nn.Module):
    """bf16 autocast on CUDA (no loss scaling needed, unlike fp16); CPU stays fp32, where bf16 is slower."""
    on_cuda = next(model.parameters()).device.type == "cuda"
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda)


def _resume(checkpoint: Path, model, optimizer, scheduler) -> tuple[int, list, float]:
    """Load a checkpoint into the model, optimiser, scheduler and RNGs; return (step, losses, elapsed)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    missing = distributed.unwrap(model).load_state_dict(state["model"], strict=False).unexpected_keys
    if missing:
        raise RuntimeError(f"{checkpoint}: checkpoint does not fit the model ({missing[:3]} ...)")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return state["step"], state["losses"], state["elapsed"]
