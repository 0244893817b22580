"""Dev evaluation after each stage, through `distill.evaluation` (bitext + STS dev suite)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from distill.train import distributed

log = logging.getLogger(__name__)


class DevEvaluation:
    """Builds the dev suite once per run and scores any encoder with it."""

    def __init__(self, *, enabled: bool, quick: bool, langs: Sequence[str]) -> None:
        self.enabled = enabled and distributed.is_main()
        self.quick, self.langs = quick, list(langs)
        self._suite = None
        self.unavailable = ""

    def suite(self):
        if self._suite is None:
            try:
                from distill.evaluation import dev_suite
            except ImportError as exc:  # the evaluation package is optional for training
                self.unavailable = f"distill.evaluation not importable ({exc})"
                self.enabled = False
                return None
            self._suite = dev_suite(quick=self.quick, langs=self.langs or None)
        return self._suite

    def __call__(self, encoder) -> dict[str, float]:
        if not self.enabled:
            return {}
        suite = self.suite()
        if suite is None:
            log.warning("dev evaluation skipped: %s", self.unavailable)
            return {}
        from distill.evaluation import run_evaluators

        return {k: float(v) for k, v in run_evaluators(encoder, suite).items()}


def headline(metrics: dict[str, float]) -> dict[str, float]:
    """Condense the dev metrics to a few comparable numbers (means over languages / evaluators)."""
    groups: dict[str, list[float]] = {}
    question = {
        "xquad-questions_xling_r@1": "question_xling_r@1",
        "xquad-questions_ndcg@10": "question_ndcg@10",
        "xquad-questions_cos_qd_mean": "question_cos_random",
    }
    for key, value in metrics.items():
        if key in question:
            groups.setdefault(question[key], []).append(value)
        elif key.startswith("flores-short") and key.endswith("_accuracy"):
            groups.setdefault("flores_short_acc", []).append(value)
        elif key.startswith("flores") and key.endswith("_accuracy"):
            groups.setdefault("flores_acc", []).append(value)
        elif key.startswith("multi30k") and key.endswith("_accuracy"):
            groups.setdefault("multi30k_acc", []).append(value)
        elif key.startswith("stsb-en-") and key.endswith("_spearman"):
            groups.setdefault("sts_xling_spearman", []).append(value)
            groups.setdefault("sts_spearman", []).append(value)
        elif key.startswith("sts") and key.endswith("_spearman"):
            groups.setdefault("sts_spearman", []).append(value)
        elif key == "xquad_ndcg@10":
            groups.setdefault("xquad_ndcg@10", []).append(value)
        elif key.endswith("_sentences_per_s"):
            groups.setdefault("sent_per_s", []).append(value)
        elif key.endswith("_params_stored"):
            groups.setdefault("params_stored", []).append(value)
    return {name: sum(v) / len(v) for name, v in groups.items()}
