"""Demo timing: a fresh `make demo` to the first successful search over HTTP, phase by phase.

Runs `make demo` (scripts/demo.sh) with XLSEARCH_DATA pointing at a fresh directory that holds only
what `make install` leaves there (the converted teacher, copied from --models-from), on a free port,
and records:

- each phase `demo.sh` announces (`[demo Ns] ...` lines: student, corpus, backends, collection,
  indexing, calibration, ready) with its start time;
- `searchable_s`: when a headless Chromium (Playwright; Debian's `chromium`) first gets both columns
  of results for a query typed in the URL (`/?q=...`): the app's own page, over HTTP and its websocket;
- `quality_s`: when the background quality report (`data/reports/xquad/collection.json`) is written;
- then the app is stopped and `make demo` run again: `second_searchable_s`, the same first search.

The machine's load is sampled every 5 s (1-minute load average) and reported with the CPU time other
processes took (benchmarks.common.LoadMonitor), since a shared machine slows every phase.

    python -m benchmarks.demo_timing                       # ~5-10 min; writes benchmarks/results/demo_timing.json
    python -m benchmarks.demo_timing --keep /tmp/demo-data # keep the data directory
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from benchmarks.common import LoadMonitor, base_parser, log, markdown_table, run_main, write_results

REPO = Path(__file__).resolve().parents[1]
QUERY = "Wann nahm die Warschauer Börse nach dem Krieg den Handel wieder auf?"
STEP = re.compile(r"^\[demo (\d+)s\] (.*)$")
CHROMIUM = os.environ.get("XLSEARCH_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoRun:
    """`make demo` in its own process group, its `[demo Ns]` lines timestamped as they come."""

    def __init__(self, data: Path, port: int, log_file: Path, command: list[str]) -> None:
        env = {**os.environ, "XLSEARCH_DATA": str(data), "PORT": str(port), "PYTHONPATH": str(REPO)}
        self.t0 = time.monotonic()
        self.steps: list[tuple[float, str]] = []
        self.log = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.log.write(line)
            m = STEP.match(line.strip())
            if m:
                self.steps.append((round(time.monotonic() - self.t0, 1), m.group(2)))

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.flush()


def first_search(run: DemoRun, url: str, timeout: float) -> float:
    """Seconds from the run's start to a page with both result columns for QUERY."""
    from playwright.sync_api import Error, sync_playwright

    page_url = f"{url}/?q={urllib.parse.quote(QUERY)}"
    _wait_port(run, urllib.parse.urlsplit(url).port, timeout)  # a browser polling meanwhile costs a core
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            while run.elapsed() < timeout:
                if run.proc.poll() is not None:
                    raise RuntimeError(f"make demo exited with {run.proc.returncode}; see the log")
                page = browser.new_page()
                try:
                    page.goto(page_url, timeout=10_000)
                    page.wait_for_selector('.xl-col[data-role="student"] .xl-hit', timeout=120_000)
                    return round(run.elapsed(), 1)
                except Error:
                    time.sleep(2)
                finally:
                    page.close()
        finally:
            browser.close()
    raise RuntimeError(f"no search answered within {timeout:.0f} s")


def _wait_port(run: DemoRun, port: int, timeout: float) -> None:
    """Until the app accepts connections: as a user would, open the browser when it is up."""
    import socket

    while run.elapsed() < timeout:
        if run.proc.poll() is not None:
            raise RuntimeError(f"make demo exited with {run.proc.returncode}; see the log")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(1)
    raise RuntimeError(f"nothing listened on port {port} within {timeout:.0f} s")


def wait_file(run: DemoRun, path: Path, timeout: float) -> float | None:
    while run.elapsed() < timeout:
        if path.is_file():
            return round(run.elapsed(), 1)
        time.sleep(2)
    return None


class LoadSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            self.samples.append(os.getloadavg()[0])
            time.sleep(5)


def fresh_data(root: Path, models_from: Path) -> None:
    """What `make install` leaves in data/: the converted teacher (no ONNX exports, no student)."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    src = models_from / "multilingual-e5-small"
    if not (src / "modules.json").is_file():
        raise SystemExit(f"{src} is not a converted teacher (run `make install` first)")
    shutil.copytree(src, root / "models" / src.name)


def _second_only(args) -> int:
    data, monitor, sampler = args.second_only, LoadMonitor(), LoadSampler()
    sampler.start()
    port = _free_port()
    run = DemoRun(data, port, data / "demo-timing.log", args.command.split())
    try:
        searchable = first_search(run, f"http://localhost:{port}", args.timeout)
    finally:
        run.stop()
    sampler.running = False
    result = {
        "second_searchable_s": searchable,
        "second_phases": [{"start_s": t, "phase": s} for t, s in run.steps],
        "load_avg_1min": {"min": min(sampler.samples), "max": max(sampler.samples)},
        "cores": os.cpu_count(),
    }
    print(f"second make demo: searchable after {searchable} s; load average {result['load_avg_1min']}")
    write_results(
        "demo_timing_second",
        args=args,
        config={"query": QUERY, "data": str(data)},
        results=result,
        headline={"second_searchable_s": searchable},
        load=monitor,
    )
    return 0


def _parser():
    parser = base_parser("demo_timing", __doc__)
    parser.add_argument(
        "--models-from", type=Path, default=REPO / "data" / "models", help="converted models to copy"
    )
    parser.add_argument("--keep", type=Path, help="data directory to use and keep (default: a temporary one)")
    parser.add_argument(
        "--command",
        default="make demo",
        help="what starts the demo (default: %(default)s; e.g. 'bash scripts/demo.sh')",
    )
    parser.add_argument(
        "--second-only",
        type=Path,
        metavar="DIR",
        help="time only a second `make demo` on the data directory DIR of an earlier run",
    )
    parser.add_argument("--timeout", type=float, default=1200, help="seconds before giving up on a phase")
    return parser


def _load_avg(samples: list[float]) -> dict:
    return {"min": min(samples), "mean": round(sum(samples) / len(samples), 2), "max": max(samples)}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.second_only:
        return _second_only(args)
    data = args.keep or Path(tempfile.mkdtemp(prefix="xl-demo-"))
    if data.exists() and any(data.iterdir()):
        raise SystemExit(f"{data} is not empty: the run must start fresh")
    fresh_data(data, args.models_from)
    monitor, sampler = LoadMonitor(), LoadSampler()
    sampler.start()
    port, log_file = _free_port(), data / "demo-timing.log"
    url = f"http://localhost:{port}"
    first = DemoRun(data, port, log_file, args.command.split())
    try:
        searchable = first_search(first, url, args.timeout)
        log(f"first search answered after {searchable} s")
        quality = wait_file(first, data / "reports" / "xquad" / "collection.json", args.timeout)
        log(f"quality report after {quality} s")
    finally:
        first.stop()
    second = DemoRun(data, port, log_file, args.command.split())
    try:
        second_searchable = first_search(second, url, args.timeout)
    finally:
        second.stop()
    sampler.running = False
    result = {
        "searchable_s": searchable,
        "quality_s": quality,
        "second_searchable_s": second_searchable,
        "phases": [{"start_s": t, "phase": s} for t, s in first.steps],
        "second_phases": [{"start_s": t, "phase": s} for t, s in second.steps],
        "load_avg_1min": _load_avg(sampler.samples),
        "cores": os.cpu_count(),
        "query": QUERY,
        "log": str(log_file),
    }
    rows = [{"start": t, "phase": s[:110]} for t, s in first.steps]
    print(markdown_table(rows, [("start", "start (s)", 1), ("phase", "phase")]))
    print(
        f"\nsearchable after {searchable} s, quality report after {quality} s, second make demo searchable "
        f"after {second_searchable} s; load average {result['load_avg_1min']} on {os.cpu_count()} cores"
    )
    write_results(
        "demo_timing",
        args=args,
        config={"query": QUERY, "data": str(data)},
        results=result,
        headline={k: result[k] for k in ("searchable_s", "quality_s", "second_searchable_s")},
        load=monitor,
    )
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
