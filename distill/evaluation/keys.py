"""Metric names, defined once: what the evaluators write, and what the headline, the reports, the
model card, the app and the benchmarks read. A full key is `{evaluator name}_{metric}`
(e.g. `xquad-questions_xling_r@1`), with a language or a language pair between them for the
per-language values (`xquad-questions_de_xling_r@1`, `xquad-questions_de-en_r@1`)."""

from __future__ import annotations

# The question task (distill.evaluation.questions): the app's job.
QUESTIONS = "xquad-questions"  # the question evaluator's name and data set in the dev suite
XLING_R1 = "xling_r@1"  # primary: the answer first among another language's paragraphs
MONO_R1 = "mono_r@1"
R1 = "r@1"  # per language pair
OWN_LANG10 = "own_lang@10"
COS_QD_MEAN = "cos_qd_mean"  # the collapse check: random question-paragraph pairs

# Ranking metrics (distill.evaluation.metrics).
NDCG10 = "ndcg@10"
MAP20 = "map@20"
RECALL10 = "recall@10"
MRR10 = "mrr@10"

# The cost evaluator.
PARAMS_STORED = "params_stored"

# The headline (distill.evaluation.headline): means over languages and evaluators.
QUESTION_XLING_R1 = "question_xling_r@1"
QUESTION_NDCG10 = "question_ndcg@10"
QUESTION_COS_RANDOM = "question_cos_random"
FLORES_ACC = "flores_acc"
FLORES_SHORT_ACC = "flores_short_acc"
MULTI30K_ACC = "multi30k_acc"
STS_SPEARMAN = "sts_spearman"
STS_XLING_SPEARMAN = "sts_xling_spearman"
XQUAD_NDCG10 = "xquad_ndcg@10"
SENT_PER_S = "sent_per_s"


def key(evaluator: str, metric: str) -> str:
    """The full key of `metric` written by the evaluator named `evaluator`."""
    return f"{evaluator}_{metric}"
