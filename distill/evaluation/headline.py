"""A few comparable numbers from the dev suite's metrics (means over languages and evaluators):
what training logs after each stage and the student's model card shows."""

from __future__ import annotations

from distill.evaluation import keys as K


def headline(metrics: dict[str, float]) -> dict[str, float]:
    """Condense the dev metrics to a few comparable numbers (means over languages / evaluators)."""
    groups: dict[str, list[float]] = {}
    question = {
        K.key(K.QUESTIONS, K.XLING_R1): K.QUESTION_XLING_R1,
        K.key(K.QUESTIONS, K.NDCG10): K.QUESTION_NDCG10,
        K.key(K.QUESTIONS, K.COS_QD_MEAN): K.QUESTION_COS_RANDOM,
    }
    for key, value in metrics.items():
        if key in question:
            groups.setdefault(question[key], []).append(value)
        elif key.startswith("flores-short") and key.endswith("_accuracy"):
            groups.setdefault(K.FLORES_SHORT_ACC, []).append(value)
        elif key.startswith("flores") and key.endswith("_accuracy"):
            groups.setdefault(K.FLORES_ACC, []).append(value)
        elif key.startswith("multi30k") and key.endswith("_accuracy"):
            groups.setdefault(K.MULTI30K_ACC, []).append(value)
        elif key.startswith("stsb-en-") and key.endswith("_spearman"):
            groups.setdefault(K.STS_XLING_SPEARMAN, []).append(value)
            groups.setdefault(K.STS_SPEARMAN, []).append(value)
        elif key.startswith("sts") and key.endswith("_spearman"):
            groups.setdefault(K.STS_SPEARMAN, []).append(value)
        elif key == K.XQUAD_NDCG10:
            groups.setdefault(K.XQUAD_NDCG10, []).append(value)
        elif key.endswith("_sentences_per_s"):
            groups.setdefault(K.SENT_PER_S, []).append(value)
        elif key.endswith("_" + K.PARAMS_STORED):
            groups.setdefault(K.PARAMS_STORED, []).append(value)
    return {name: sum(v) / len(v) for name, v in groups.items()}
