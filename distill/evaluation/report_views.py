"""What a report shows of an `EvaluationRun`: the quality tasks and their headline metrics, values
looked up per model, data set and language pair, and number formatting. Shared by the tables, the
figures and `distill evaluate`'s summary."""

from __future__ import annotations

import math

from distill.evaluation import keys as K
from distill.evaluation.results import EvaluationRun

# the metric a per-language table and figure shows, per task; the question task comes first everywhere
PRIMARY = {"question": K.R1, "bitext": "accuracy", "sts": "spearman", "retrieval": K.NDCG10}
TASK_TITLES = {
    "question": "Question -> paragraph R@1 (the answer first among the document language's paragraphs)",
    "bitext": "Bitext retrieval accuracy@1 (mean of both directions)",
    "sts": "STS Spearman correlation",
    "retrieval": "Paragraph -> translated paragraph nDCG@10 (easy sanity check)",
}
# What each task measures, in one line each (the summary's note and the app's Quality page).
TASK_NOTES = {
    "question": "question: a real question in one language against all paragraphs (the app's job); "
    "R@1 across languages is the headline",
    "bitext": "bitext: find a sentence's translation among all candidates of the other language",
    "sts": "STS: Spearman correlation with human similarity scores, monolingual and en-xx",
    "retrieval": "paragraph -> paragraph: find a paragraph's translations; any model that keeps the words' identity "
    "solves it, so it is only a sanity check",
}
# question task: the headline rows of the summary (metric, label)
QUESTION_ROWS = (
    (K.XLING_R1, "R@1 cross-lingual (X != Y)"),
    (K.MONO_R1, "R@1 same language"),
    (K.NDCG10, "nDCG@10 pooled"),
    (K.MAP20, "mAP@20 pooled"),
    (K.RECALL10, "Recall@10 pooled"),
    (K.OWN_LANG10, "top-10 in the query's language"),
)
QUESTION_LANG_METRICS = (K.XLING_R1, K.NDCG10, K.MAP20, K.RECALL10, K.OWN_LANG10)
COLLAPSE_ROWS = (
    ("cos_dd_mean", "random document pairs: mean cosine"),
    ("cos_dd_std", "random document pairs: std"),
    (K.COS_QD_MEAN, "random question-document pairs: mean"),
    ("cos_qd_std", "random question-document: std"),
    ("cos_rel_mean", "question and its answer (same language): mean"),
)
RETRIEVAL_METRICS = ("map", "mrr@10", "ndcg@10", "recall@1", "recall@5", "recall@10")
COST_METRICS = (
    (K.PARAMS_STORED, "stored params (M)"),
    ("params_effective", "effective params (M)"),
    ("params_embedding", "embedding params (M)"),
    ("disk_mb", "disk (MB)"),
    ("memory_mb", "weights in memory (MB)"),
    ("sentences_per_s", "sentences/s"),
    ("peak_mb", "RSS growth while encoding (MB)"),
)


def datasets(run: EvaluationRun) -> list[tuple[str, str]]:
    """(task, dataset) of the quality tasks, in PRIMARY's task order, then first-seen order."""
    seen: dict[tuple[str, str], None] = {}
    for m in run.models:
        for e in m.entries:
            if e.task in PRIMARY:
                seen.setdefault((e.task, e.dataset), None)
    order = list(PRIMARY)
    return sorted(seen, key=lambda td: order.index(td[0]))


def all_value(run: EvaluationRun, label: str, dataset: str, metric: str) -> float | None:
    """A metric's overall ('all' pair) value of one model on one data set."""
    for e in run.model(label).entries:
        if e.dataset == dataset and e.metric == metric and e.lang_pair == "all":
            return e.value
    return None


def per_language(
    run: EvaluationRun, task: str, dataset: str, metric: str | None = None
) -> dict[str, dict[str, float]]:
    """lang pair -> {model label: value} for one data set's metric (retrieval: per pair, without 'all')."""
    metric = metric or PRIMARY[task]
    out: dict[str, dict[str, float]] = {}
    for m in run.models:
        for e in m.entries:
            if e.task == task and e.dataset == dataset and e.metric == metric:
                if task == "retrieval" and e.lang_pair == "all":
                    continue
                out.setdefault(e.lang_pair, {})[m.label] = e.value
    return out


def overall(run: EvaluationRun, task: str, dataset: str) -> dict[str, float]:
    """Model label -> the data set's headline: retrieval's overall value, else the mean over language pairs."""
    metric = K.XLING_R1 if task == "question" else PRIMARY[task]
    out = {}
    for m in run.models:
        if task in ("retrieval", "question"):
            vals = [
                e.value
                for e in m.entries
                if e.dataset == dataset and e.metric == metric and e.lang_pair == "all"
            ]
        else:
            vals = [
                e.value for e in m.entries if e.task == task and e.dataset == dataset and e.metric == metric
            ]
        vals = [v for v in vals if not math.isnan(v)]
        if vals:
            out[m.label] = sum(vals) / len(vals)
    return out


def ratio(value: float | None, reference: float | None) -> float:
    if value is None or reference is None or math.isnan(value) or math.isnan(reference) or reference <= 0:
        return math.nan
    return value / reference


def fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_millions(n) -> str:
    """Parameter counts in millions with enough digits for tiny test models too."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "–"
    m = n / 1e6
    return f"{m:.1f}" if m >= 10 else f"{m:.2f}" if m >= 1 else f"{m:.3f}"


def cost_value(run: EvaluationRun, label: str, metric: str) -> float | None:
    for e in run.model(label).entries:
        if e.task == "cost" and e.metric == metric:
            return e.value
    return None
