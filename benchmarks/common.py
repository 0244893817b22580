"""Plumbing shared by the benchmark scripts: threads, machine info, interleaved timing, statistics,
tables and JSON results.

Why interleave: the machine is shared, so its speed drifts during a run. Timing A fully and then B
puts the drift into the A/B comparison; alternating A B A B ... in rounds spreads it over both, and
the per-round ratio (A and B timed seconds apart) cancels most of it.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from distill.fileio import atomic_write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_VERSION = 1


def default_student() -> str | None:
    """The student the demo serves (`distill.paths.default_student()`), once it exists."""
    from distill.paths import default_student as demo_student

    path = demo_student()
    return str(path) if (path / "modules.json").is_file() and (path / "README.md").is_file() else None


# ---------------------------------------------------------------------------------------------
# Threads and machine


def set_threads(n: int) -> None:
    """Set torch's and FAISS's thread counts together: each brings its own OpenMP runtime."""
    import torch

    torch.set_num_threads(n)
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss is a core dependency
        return
    faiss.omp_set_num_threads(n)


def thread_counts() -> dict[str, int | None]:
    import torch

    out: dict[str, int | None] = {"torch": torch.get_num_threads(), "faiss": None}
    try:
        import faiss

        out["faiss"] = faiss.omp_get_max_threads()
    except ImportError:  # pragma: no cover
        pass
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    """An installed distribution's version, without importing it (sentence-transformers takes seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    import psutil

    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in (
                "torch",
                "faiss-cpu",
                "numpy",
                "transformers",
                "sentence-transformers",
                "onnxruntime",
            )
        },
        "threads_at_write": thread_counts(),
        "git_commit": git_commit(),
    }


class LoadMonitor:
    """How busy the machine was with *other* work while a benchmark ran.

    `other_cpu_pct` is the CPU time spent by everything except this process (and its children),
    as a share of all cores over the wall time: 0 means the machine was ours, 50 on 2 cores means
    one core was taken by someone else on average.
    """

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process()
        self.start_wall = time.perf_counter()
        self.start_load = os.getloadavg()
        self._sys0 = self._busy()
        self._own0 = self._own()

    def _busy(self) -> float:
        t = self._psutil.cpu_times()
        return (
            t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        )

    def _own(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def report(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.start_wall
        cores = os.cpu_count() or 1
        other = max(0.0, (self._busy() - self._sys0) - (self._own() - self._own0))
        return {
            "wall_s": round(wall, 2),
            "loadavg_start": [round(x, 2) for x in self.start_load],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "other_cpu_pct": round(100.0 * other / max(wall * cores, 1e-9), 1),
        }


def rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """High-water mark of this process's resident memory.

    Linux's VmHWM belongs to the current address space. ru_maxrss is not used where VmHWM exists:
    it survives exec, so a child forked from a big parent reports the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# ---------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class Summary:
    """Median and spread of repeated measurements (same unit as the samples)."""

    n: int
    median: float
    mean: float
    p5: float
    p95: float
    min: float
    max: float

    @property
    def spread_pct(self) -> float:
        """(p95 - p5) / median in percent: the width of the middle 90% relative to the median."""
        return 100.0 * (self.p95 - self.p5) / self.median if self.median else math.nan

    def to_dict(self, scale: float = 1.0, digits: int = 4) -> dict[str, float]:
        d = {k: (round(v * scale, digits) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        d["spread_pct"] = round(self.spread_pct, 1)
        return d


def summarize(samples: Sequence[float]) -> Summary:
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no samples to summarize")
    p5, p50, p95 = np.percentile(arr, [5, 50, 95])
    return Summary(
        n=int(arr.size),
        median=float(p50),
        mean=float(arr.mean()),
        p5=float(p5),
        p95=float(p95),
        min=float(arr.min()),
        max=float(arr.max()),
    )


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> Summary:
    """Summary of per-round ratios numerator[r] / denominator[r] (both measured in round r)."""
    if len(numerator) != len(denominator):
        raise ValueError("paired samples must have the same length")
    return summarize([a / b for a, b in zip(numerator, denominator, strict=True)])


# ---------------------------------------------------------------------------------------------
# Timing


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


class gc_paused:
    """Collect once, then hold the cyclic garbage collector off, so it cannot land inside a timing.

    (A full collection with torch loaded takes ~0.2 s: once per benchmark, not once per call.)
    """

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()

    def __exit__(self, *exc) -> None:
        if self._was_enabled:
            gc.enable()


def interleave(
    variants: Mapping[str, Callable[[int], Any]],
    rounds: int,
    *,
    warmup: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[float]]:
    """Time each variant `rounds` times, alternating variants within every round.

    `variants[name](r)` does round r's work (callers usually give each round its own slice of the
    workload, the same slice to every variant). Every variant first runs `warmup` untimed calls on
    round 0's work. The order rotates each round (A B C, B C A, C A B, ...) so no variant always
    runs right after the same neighbour. Returns the wall seconds per round for each variant.
    """
    names = list(variants)
    for name in names:
        for _ in range(warmup):
            variants[name](0)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    with gc_paused():
        for r in range(rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                elapsed, _ = timed(lambda name=name, r=r: variants[name](r))
                seconds[name].append(elapsed)
            if progress:
                progress(f"round {r + 1}/{rounds}")
    return seconds


# ---------------------------------------------------------------------------------------------
# Output


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str] | tuple[str, str, int]]
) -> str:
    """A GitHub markdown table; `columns` are (key, header[, digits])."""
    headers = [c[1] for c in columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        cells = [fmt(row.get(c[0]), c[2] if len(c) > 2 else 2) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Summary):
        return obj.to_dict()
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN/inf
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_results(
    name: str,
    *,
    args: argparse.Namespace,
    config: Mapping[str, Any],
    results: Mapping[str, Any],
    headline: Mapping[str, Any],
    load: LoadMonitor,
    tables: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write `<out>/<name>.json` (`<name>-quick.json` for --quick runs) atomically; return its path."""
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (f"{name}-quick.json" if args.quick else f"{name}.json")
    payload = {
        "benchmark": name,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "command": " ".join([Path(sys.executable).name, "-m", f"benchmarks.{name}", *sys.argv[1:]]),
        "machine": machine_info(),
        "load": load.report(),
        "config": config,
        "headline": headline,
        "results": results,
        "tables": dict(tables or {}),
        "notes": list(notes),
    }
    text = json.dumps(_jsonable(payload), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path


def base_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{name}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a small, fast version (used by the smoke test)")
    parser.add_argument(
        "--out", default=str(RESULTS_DIR), help="directory for the JSON result (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling data (default: %(default)s)")
    return parser


def finish(name: str, **kwargs: Any) -> int:
    """`write_results(name, **kwargs)`, logged; the exit code of a benchmark that ran."""
    log(f"wrote {write_results(name, **kwargs)}")
    return 0


# ---------------------------------------------------------------------------------------------
# Arguments every benchmark reads the same way

STUDENT_HELP = "the student S (default: the student the demo serves, distill.paths.default_student())"


def parse_ints(text: str) -> list[int]:
    try:
        return [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BenchmarkError(f"expected comma-separated integers, got {text!r}") from None


def rounds_of(args: argparse.Namespace) -> int:
    """--rounds, else 2 for --quick and 5 for a full run."""
    return args.rounds or (2 if args.quick else 5)


def thread_list(text: str | None, quick: bool) -> list[int]:
    """Comma-separated thread counts, else 1 for --quick and 1,2 for a full run."""
    return parse_ints(text or ("1" if quick else "1,2"))


def student_or_note(student: str | None, notes: list[str], missing: str) -> str | None:
    """`student`, else the demo's student; when there is none, `missing` joins the notes."""
    student = student or default_student()
    if not student:
        notes.append(missing)
    return student


def log(msg: str) -> None:
    """Progress lines go to stderr so stdout carries only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchmarkError(Exception):
    """A user error (missing model, bad option): printed as one line, exit code 2."""


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return main(argv)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
