"""Dev evaluation after each stage, through `distill.evaluation` (the dev suite: questions, bitext, STS)."""

from __future__ import annotations

from collections.abc import Sequence

from distill.train import distributed


class DevEvaluation:
    """Builds the dev suite once per run and scores any encoder with it."""

    def __init__(self, *, enabled: bool, quick: bool, langs: Sequence[str]) -> None:
        self.enabled = enabled and distributed.is_main()
        self.quick, self.langs = quick, list(langs)
        self._suite = None

    def suite(self):
        if self._suite is None:
            from distill.evaluation import dev_suite

            self._suite = dev_suite(quick=self.quick, langs=self.langs or None)
        return self._suite

    def __call__(self, encoder) -> dict[str, float]:
        if not self.enabled:
            return {}
        from distill.evaluation import run_evaluators

        return {k: float(v) for k, v in run_evaluators(encoder, self.suite()).items()}
