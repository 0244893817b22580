"""Collect the latest results (benchmarks/results/*.json) into markdown: headline figures, every
table, and the machine and its load at the time of each run.

Examples:
  python -m benchmarks.report                    # print the markdown
  python -m benchmarks.report --write-readme     # replace the "Latest results" section of benchmarks/README.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import RESULTS_DIR, BenchmarkError, run_main

ORDER = ("encode", "search", "index", "app")
README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _headline(name: str, h: dict) -> list[str]:
    out = []
    if name == "encode":
        r = h.get("student_vs_assistant_ratio")
        setting = h.get("ratio_setting", {})
        out.append(
            f"- `student_vs_assistant_ratio` = **{r if r is not None else 'n/a'}** "
            f"(batch {setting.get('batch')}, {setting.get('threads')} threads); expectation >= 2: "
            f"{h.get('expectation_student_ge_2x_assistant')}"
        )
        for variant, by_threads in (h.get("ratios") or {}).items():
            out.append(
                f"- {variant} / assistant at batch 64: "
                + ", ".join(f"{t} thread(s) {v}" for t, v in by_threads.items())
            )
    elif name == "search":
        e = h.get("expectation_hnsw_p50_le_5ms_recall_ge_0.95") or {}
        s = e.get("setting") or {}
        out.append(
            f"- HNSW at {e.get('size', 0):,} vectors, fastest setting with recall@10 >= 0.95: "
            f"{s.get('setting', 'none')}, p50 {s.get('p50_ms')} ms, recall {s.get('recall@10')} "
            f"-> expectation (p50 <= 5 ms) met: **{e.get('met')}**"
        )
    elif name == "index":
        for key, value in h.items():
            out.append(f"- {key}: {value}")
    elif name == "app":
        for key, value in h.items():
            out.append(f"- {key}: {value}")
    return out


def render(results_dir: Path, quick: bool = False) -> str:
    parts = []
    for name in ORDER:
        path = results_dir / (f"{name}-quick.json" if quick else f"{name}.json")
        if not path.is_file():
            parts.append(f"### {name}\n\nNo full run yet (`python -m benchmarks.{name}`).\n")
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        m, load = data["machine"], data["load"]
        parts.append(f"### {name}\n")
        parts.append(
            f"`{data['command']}` — {data['created']}, {m['cpu_model']}, {m['logical_cores']} cores, "
            f"torch {m['versions'].get('torch')}, faiss {m['versions'].get('faiss-cpu')}; "
            f"load average {load['loadavg_start'][0]} -> {load['loadavg_end'][0]}, other processes "
            f"{load['other_cpu_pct']}% of the CPU, wall {load['wall_s']:.0f} s.\n"
        )
        parts += _headline(name, data.get("headline", {}))
        parts.append("")
        for title, table in data.get("tables", {}).items():
            parts.append(f"**{title}**\n\n{table}\n")
        for note in data.get("notes", []):
            parts.append(f"> {note}\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--results", default=str(RESULTS_DIR), help="results directory (default: %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="report the --quick results instead")
    parser.add_argument("--write-readme", action="store_true", help="update benchmarks/README.md in place")
    args = parser.parse_args(argv)
    results_dir = Path(args.results)
    text = render(results_dir, quick=args.quick)
    if args.write_readme:
        readme = README.read_text(encoding="utf-8")
        if BEGIN not in readme or END not in readme:
            raise BenchmarkError(f"{README} lacks the {BEGIN} ... {END} markers")
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")
        print(f"updated {README}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
