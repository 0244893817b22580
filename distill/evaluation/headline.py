"""A few comparable numbers from the dev suite's metrics (means over languages and evaluators):
what training logs after each stage and the student's model card shows."""

from __future__ import annotations


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
