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
