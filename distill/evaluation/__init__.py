"""Evaluation: small evaluator classes (call one with an Encoder, get prefixed metrics), the dev
suite built from the shared data, a runner for several models, and self-contained reports.

```python
from distill.evaluation import dev_suite, run_evaluators
metrics = run_evaluators(encoder, dev_suite(quick=True))     # {"flores-deu_Latn_accuracy": 0.97, ...}
```
"""

from distill.evaluation.base import (
    DEFAULT_CACHE,
    EmbeddingCache,
    Entry,
    Evaluator,
    Task,
    evaluator_entries,
    evaluator_info,
    run_evaluators,
)
from distill.evaluation.bitext import BitextEvaluator, bitext_from_pair_tsv, bitext_from_parallel_jsonl
from distill.evaluation.cost import CostEvaluator
from distill.evaluation.report import write_report
from distill.evaluation.results import EvaluationRun, ModelResult, load_results
from distill.evaluation.retrieval import RetrievalEvaluator, parallel_corpus_retrieval, retrieval_from_files
from distill.evaluation.runner import evaluate_models, parse_model_args
from distill.evaluation.sts import StsEvaluator, sts_from_tsv
from distill.evaluation.suite import DEFAULT_LANGS, QUICK_LANGS, dev_suite

__all__ = [
    "DEFAULT_CACHE",
    "DEFAULT_LANGS",
    "QUICK_LANGS",
    "BitextEvaluator",
    "CostEvaluator",
    "EmbeddingCache",
    "Entry",
    "EvaluationRun",
    "ModelResult",
    "Evaluator",
    "RetrievalEvaluator",
    "StsEvaluator",
    "Task",
    "bitext_from_pair_tsv",
    "bitext_from_parallel_jsonl",
    "dev_suite",
    "evaluate_models",
    "evaluator_entries",
    "evaluator_info",
    "load_results",
    "parallel_corpus_retrieval",
    "parse_model_args",
    "retrieval_from_files",
    "run_evaluators",
    "sts_from_tsv",
    "write_report",
]
