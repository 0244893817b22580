"""One run's state: its directories and stage markers, its training data, encoders and target
embeddings, and the calls into the training loop and the dev evaluation that every stage makes."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from distill.config import RunConfig
from distill.data import TrainingPair
from distill.evaluation.headline import headline
from distill.models import Encoder, Role, load_encoder
from distill.targets import cached_embeddings
from distill.train import distributed
from distill.train.evaluate import DevEvaluation
from distill.train.loop import LoopResult, MetricsLog, StepCallback, train_loop
from distill.train.pairs import load_pairs, passage_pairs, sample_pairs

STAGES = (1, 2, 3, 4)
STAGE_TITLES = {
    1: "multilingual KD T -> A",
    2: "bottleneck embedding",
    3: "parameter recurrence",
    4: "multilingual contrastive learning",
}


class RunError(RuntimeError):
    """A run that cannot proceed as asked (e.g. exists already, missing earlier stage)."""


@dataclass
class Run:
    cfg: RunConfig
    out_dir: Path
    run_dir: Path
    device: str
    log: MetricsLog
    on_step: StepCallback | None = None
    resume: bool = False
    evaluation: DevEvaluation | None = None
    _pairs: list[TrainingPair] | None = field(default=None, repr=False)
    _passages: list[TrainingPair] | None = field(default=None, repr=False)
    _frozen: dict[str, Encoder] = field(default_factory=dict, repr=False)

    # --- paths ---------------------------------------------------------------------------------
    def stage_dir(self, n: int) -> Path:
        return self.run_dir / f"stage{n}"

    def checkpoint(self, n: int) -> Path:
        return self.run_dir / f"stage{n}.ckpt.pt"

    def done(self, n: int) -> bool:
        return (self.stage_dir(n) / "stage.json").exists()

    def stage_info(self, n: int) -> dict:
        return json.loads((self.stage_dir(n) / "stage.json").read_text())

    # --- data ----------------------------------------------------------------------------------
    def all_pairs(self) -> list[TrainingPair]:
        if self._pairs is None:
            d = self.cfg.data
            self._pairs = load_pairs(d.files, d.langs, stsb_dir=d.stsb_dir or None)
            if not self._pairs:
                raise RunError(f"no training pairs for languages {d.langs} in {d.files}")
        return self._pairs

    def pairs(self, n: int) -> list[TrainingPair]:
        d = self.cfg.data
        limit = self.cfg.stage(n).max_pairs or d.max_pairs
        sample = sample_pairs(self.all_pairs(), limit, self.cfg.seed)
        if d.passages:
            if self._passages is None:
                self._passages = passage_pairs(
                    d.passage_file, d.passage_doc_ids, d.langs, sentences=d.passage_sentences
                )
            sample += sample_pairs(self._passages, d.passages, self.cfg.seed)
            random.Random(self.cfg.seed).shuffle(sample)
        return sample

    @property
    def prefix(self) -> str | None:
        return self.cfg.models.prefix or None

    def encoder(self, spec: str | Path) -> Encoder:
        return load_encoder(
            spec,
            device=self.device,
            max_seq_length=self.cfg.data.max_seq_length,
            trust_remote_code=self.cfg.models.trust_remote_code,
        )

    def frozen(self, spec: str | Path) -> Encoder:
        """`spec` for targets only (never trained): loaded once per run, however many stages ask
        (e5 used to load two or three times per stage, ~10 s and 470 MB each)."""
        key = str(spec)
        if key not in self._frozen:
            self._frozen[key] = self.encoder(spec)
        return self._frozen[key]

    def role(self, pair: TrainingPair) -> str | None:
        """The prompt role of a pair's texts: its own ("query" / "passage") when the run uses prompts."""
        return pair.role if self.prefix else None

    def targets(self, spec: str | Path, items: list[tuple[str | None, str]], label: str) -> np.ndarray:
        """Embeddings of (role, text) items by `spec`, each role with its prompt; cached per role on disk."""
        enc = self.frozen(spec)
        out = np.empty((len(items), enc.dim), dtype=np.float32)
        for role in dict.fromkeys(r for r, _ in items):
            rows = [i for i, (r, _) in enumerate(items) if r == role]
            prefix = self.prefix if role == Role.QUERY else role
            out[rows] = cached_embeddings(
                enc,
                spec,
                [items[i][1] for i in rows],
                prefix=prefix,
                cache_dir=self.cfg.cache_dir or None,
                batch_size=self.cfg.data.encode_batch_size,
                label=f"{label} ({role})",
            )
        return out

    def assistant_spec(self) -> str:
        """A after stage 1 (its output directory), or the raw assistant when stage 1 is off."""
        if self.cfg.stage1.enabled:
            if not self.done(1):
                raise RunError("stage 1 has not completed; run it first (or --stage1.enabled=false)")
            return str(self.stage_dir(1))
        return self.cfg.models.assistant

    def train(
        self,
        n: int,
        model: torch.nn.Module,
        compute_loss,
        n_items: int,
        pairs: list[TrainingPair] | None = None,
        curve: Encoder | None = None,
    ) -> LoopResult:
        """Run stage n's loop; with `pairs`, each batch holds one role (sentences are not padded to passages);
        with `curve` (an encoder around the unwrapped model), the dev suite every `eval.every` steps."""
        buckets = np.array([p.role for p in pairs]) if pairs is not None else None
        batch_size = self.cfg.stage(n).batch_size

        def score(step: int, seconds: float) -> None:
            if distributed.is_main():
                self.evaluate(
                    f"stage{n} step {step}",
                    curve,
                    stage=n,
                    step=step,
                    pairs_seen=step * batch_size,
                    train_seconds=round(seconds, 1),
                )
            distributed.barrier()

        return train_loop(
            name=f"stage{n}",
            model=model,
            compute_loss=compute_loss,
            n_items=n_items,
            cfg=self.cfg.stage(n),
            seed=self.cfg.seed + n,
            checkpoint=self.checkpoint(n),
            log=self.log,
            resume=self.resume,
            on_step=self.on_step,
            buckets=buckets,
            evaluate=score if curve is not None else None,
            eval_every=self.cfg.eval.every,
        )

    def evaluate(self, name: str, spec_or_encoder, **extra) -> dict[str, float]:
        if self.evaluation is None or not self.evaluation.enabled:
            return {}
        if isinstance(spec_or_encoder, str | Path):
            enc = load_encoder(
                spec_or_encoder, device=self.device, trust_remote_code=self.cfg.models.trust_remote_code
            )
        else:
            enc = spec_or_encoder
        t0 = time.time()
        metrics = self.evaluation(enc)
        if metrics:
            self.log.write(
                event="eval",
                model=name,
                seconds=round(time.time() - t0, 1),
                **extra,
                **headline(metrics),
                metrics=metrics,
            )
        return metrics
