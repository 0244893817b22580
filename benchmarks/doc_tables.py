"""The measured tables of the docs, rendered from the committed JSON the measurements wrote, so that a
table cannot drift from its source. Each table sits in a document between `<!-- table:NAME -->` and
`<!-- /table -->`; this script rewrites what is between the markers, and `tests/test_docs.py` fails
when a committed document differs from what it renders.

Examples:
  python -m benchmarks.doc_tables            # rewrite every table block in README.md and docs/*.md
  python -m benchmarks.doc_tables --check    # exit 1 naming each block that is not up to date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import BenchmarkError, run_main
from distill.evaluation.headline import headline
from distill.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "docs/results.md")
BLOCK = re.compile(r"(<!-- table:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)

TEACHER_QUALITY = "models/multilingual-e5-small.dev_quality.json"
STUDENT_QUALITY = "models/student-offline/dev_quality.json"
TRAINING_SUMMARY = "models/student-offline/training_summary.json"
BACKENDS = {  # label -> (the JSON, the commit that stored it)
    "multilingual-e5-small (A, the teacher)": ("models/multilingual-e5-small.backends.json", "04fe1df"),
    "student v2, untrimmed (the demo's)": ("models/student-offline/backends.json", "5e82963"),
}
# Where and when each source was measured: the JSON files hold the numbers, not always their date.
QUALITY_RUN = (
    "measured 2026-12-02 (commit 61c2b3c) with `python -m benchmarks.quality` on 2 CPU cores shared "
    "with other jobs; stored in `models/*/dev_quality.json` at commit 5e82963"
)
TRAINING_RUN = (
    "measured 2026-12-01 while training student v2 (commit 13b32e5, shipped at 8729dcf; `distill run --config offline "
    "--vocab.untrim=false`, 2 CPU cores, load not recorded; the quick suite after each stage)"
)


def _read(relative: str) -> dict:
    return json.loads((ROOT / relative).read_text(encoding="utf-8"))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _versus(value: float, reference: float) -> str:
    return f"{value:.3f} ({value / reference:.0%})"


def headline_table() -> str:
    """The README's headline: the demo's student against the teacher on the app's job."""
    teacher = _read(TEACHER_QUALITY)["model"]
    student = _read(STUDENT_QUALITY)
    summary = _read(TRAINING_SUMMARY)
    sizes = (
        summary["baselines"]["teacher"]["cost_params_stored"],
        summary["stages"]["stage4"]["stored_params"],
    )
    keys = ("r@1 other-language", "r@1 same-language", "ndcg@10")
    rows = [[f"teacher: multilingual-e5-small ({sizes[0] / 1e6:.1f}M parameters)"]]
    rows[0] += [f"{teacher[k]:.3f}" for k in keys]
    for label, entry in (
        (f"**student v2, untrimmed: what `make demo` serves** ({sizes[1] / 1e6:.1f}M)", "untrimmed"),
        ("student v2 as shipped (trimmed tokenizer)", "model"),
    ):
        rows.append([label] + [_versus(student[entry][k], teacher[k]) for k in keys])
    header = ["model (ONNX int8, as the demo runs it)", "R@1 cross-lingual"]
    header += ["R@1 same language", "nDCG@10 pooled"]
    intro = (
        f"1,100 XQuAD dev questions (100 question ids x 11 languages) against all 2,880 paragraphs "
        f"(240 x 12 languages); {QUALITY_RUN}. In brackets: the share of the teacher's score."
    )
    return "\n".join([intro, "", *_table(header, rows)]) + "\n"


STAGE_COLUMNS = (
    ("question R@1 cross-lingual", "question_xling_r@1"),
    ("question nDCG@10 pooled", "question_ndcg@10"),
    ("FLORES (1,012)", "flores_acc"),
    ("FLORES short half", "flores_short_acc"),
    ("STSb en-xx", "sts_xling_spearman"),
    ("STSb all", "sts_spearman"),
    ("random q-d cosine", "question_cos_random"),
)


def stages_table() -> str:
    """The shipped student after each trained stage, beside the teacher, on the quick suite."""
    summary = _read(TRAINING_SUMMARY)
    teacher = headline(summary["baselines"]["teacher"])
    rows = [["teacher e5-small (A = T)", "-"] + [f"{teacher[key]:.3f}" for _, key in STAGE_COLUMNS]]
    for stage in summary["stages"].values():
        if not stage.get("steps"):
            continue
        title = f"S after stage {stage['stage']}" + (f" `{stage['variant']}`" if stage.get("variant") else "")
        trained = f"{stage['steps']} steps, {stage['train_seconds']:,.0f} s"
        rows.append([title, trained] + [f"{stage['dev_headline'][key]:.3f}" for _, key in STAGE_COLUMNS])
    a, s = summary["baselines"]["teacher"]["cost_params_stored"], summary["stages"]["stage4"]["stored_params"]
    intro = f"Source: `{TRAINING_SUMMARY}`, {TRAINING_RUN}. Stored parameters: S {s / 1e6:.1f}M = "
    intro += f"{s / a:.1%} of A's {a / 1e6:.1f}M."
    header = ["model", "trained"] + [label for label, _ in STAGE_COLUMNS]
    return "\n".join([intro, "", *_table(header, rows)]) + "\n"


def backends_table() -> str:
    """The shipped backend measurements that `make demo` reads instead of timing the backends."""
    lines = []
    for label, (relative, commit) in BACKENDS.items():
        data = _read(relative)
        trials = {t["backend"]: t for t in data["trials"]}
        base = trials["torch"]["sentences_per_s"]
        rows = []
        for name, trial in trials.items():
            cos = trial.get("cosine_to_fp32")
            cosine = "1 (reference)" if cos is None else f"{cos['mean']:.4f} ({cos['min']:.4f})"
            rate = trial.get("sentences_per_s")
            speed = "refused" if rate is None else f"{rate:.2f}"
            ratio = "" if rate is None else f"{rate / base:.2f}"
            mark = "**" if name == data["best"] else ""
            rows.append([f"{mark}{name}{mark}", speed, ratio, cosine])
        lines += [f"{label}: `{relative}` (commit {commit}), {data['measured']}.", ""]
        lines += _table(["backend", "texts/s", "x torch", "cosine to fp32: mean (worst)"], rows) + [""]
    return "\n".join(lines)


TABLES: dict[str, Callable[[], str]] = {
    "headline": headline_table,
    "stages": stages_table,
    "backends": backends_table,
}


def render(text: str) -> str:
    """`text` with every known table block replaced by what its JSON renders."""

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise KeyError(f"unknown table block {name!r} (known: {', '.join(TABLES)})")
        return match.group(1) + TABLES[name]() + match.group(4)

    return BLOCK.sub(replace, text)


def stale(root: Path = ROOT) -> list[str]:
    """The documents whose table blocks differ from what the JSON renders."""
    return [doc for doc in DOCUMENTS if render(text := (root / doc).read_text(encoding="utf-8")) != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.doc_tables",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args(argv)
    try:
        return _check() if args.check else _write()
    except (OSError, KeyError, ValueError) as exc:  # a missing or malformed JSON, an unknown block
        raise BenchmarkError(f"cannot render the docs' tables: {exc}") from None


def _check() -> int:
    out_of_date = stale()
    for doc in out_of_date:
        print(f"{doc}: a table differs from its JSON; run python -m benchmarks.doc_tables", file=sys.stderr)
    return 1 if out_of_date else 0


def _write() -> int:
    for doc in DOCUMENTS:
        path = ROOT / doc
        atomic_write_text(path, render(path.read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
