"""Compare a model's backends on real texts: cosine to fp32 torch, and texts/s.

Backends: torch (fp32), int8 (PyTorch dynamic int8), onnx and onnx-int8 (ONNX Runtime; exported and
checked on first use). A backend below a mean cosine of 0.995 on its check texts is refused when loaded
and listed as such. --best prints only the fastest backend whose mean cosine to fp32 on these texts
is at least --min-cosine (what `make demo` indexes with). Speeds: the backends take turns over a
few rounds after a warm-up batch (a busy machine slows them alike), median over rounds; for careful
numbers use `python -m benchmarks.encode`.

Texts: queries from --queries (default: the shared XQuAD dev questions) with the query prompt and
passages from --passages (default: the XQuAD paragraphs of the demo corpus) with the passage
prompt, an evenly spaced sample of --queries-n / --passages-n of each.

examples:
  distill backends pkg:multilingual-e5-small
  distill backends data/students/offline --best --threads 2
  distill backends pkg:all-MiniLM-L6-v2 --queries my_queries.txt --passages-n 0 --json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from distill.datasets import XQUAD_PARAGRAPHS, XQUAD_QUESTIONS_DEV

if TYPE_CHECKING:  # torch: imported when the command runs, not when the CLI starts
    from distill.models.backends import Backend, BackendTrial


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", metavar="MODEL", nargs="+", help="pkg:NAME, a model directory or a hub id")
    parser.add_argument(
        "--queries", type=Path, help="a .jsonl (field text) or .txt (one per line) of queries"
    )
    parser.add_argument("--passages", type=Path, help="the same, of passages")
    parser.add_argument("--queries-n", type=int, default=128, help="queries used (default %(default)s)")
    parser.add_argument("--passages-n", type=int, default=32, help="passages used (default %(default)s)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's default, all cores)")
    parser.add_argument("--min-cosine", type=float, default=None, help="floor for --best (default 0.995)")
    parser.add_argument("--best", action="store_true", help="print only the chosen backend of each model")
    parser.add_argument("--json", action="store_true", help="print the trials as JSON")


def read_texts(path: Path, n: int) -> list[str]:
    """`n` evenly spaced texts of a .jsonl (field `text`) or .txt file."""
    from distill.documents import loads_strict

    if n <= 0:
        return []
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    texts = [loads_strict(x)["text"] for x in lines] if path.suffix == ".jsonl" else lines
    step = max(len(texts) / n, 1)
    return [texts[int(i * step)] for i in range(min(n, len(texts)))]


def compare_backends(
    spec: str | Path,
    queries: Sequence[str],
    passages: Sequence[str] = (),
    *,
    backends: Sequence[Backend] | None = None,
    batch_size: int = 32,
    rounds: int = 3,
) -> list[BackendTrial]:
    """Load `spec` on each backend (exporting where needed) and embed the texts in `rounds` rounds,
    the backends taking turns within each round after a warm-up batch, so that a busy machine slows
    them alike; speed is the median over rounds. torch fp32 is the reference for the cosine.
    `backends`: default all."""
    import numpy as np

    from distill.models import Role, load_encoder
    from distill.models.backends import Backend, BackendError, BackendTrial, agreement

    backends = list(Backend) if backends is None else backends
    texts = [(t, Role.QUERY) for t in queries] + [(t, Role.PASSAGE) for t in passages]
    encoders, trials = {}, {}
    for backend in [Backend.TORCH, *[b for b in backends if b != Backend.TORCH]]:
        try:
            encoders[backend] = load_encoder(spec, backend=backend, device="cpu")
        except BackendError as exc:
            trials[backend] = BackendTrial(backend.value, error=str(exc))
    vectors: dict[Backend, list[np.ndarray]] = {b: [] for b in encoders}
    speeds: dict[Backend, list[float]] = {b: [] for b in encoders}
    for enc in encoders.values():
        enc.encode(list(queries[:batch_size]), batch_size=batch_size, prefix=Role.QUERY)  # warm-up
    for r in range(max(rounds, 1)):
        part = texts[r::rounds]
        if not part:
            continue
        for backend, enc in encoders.items():
            t0 = time.perf_counter()
            for role in Role:
                chunk = [t for t, x in part if x == role]
                if chunk:
                    vectors[backend].append(enc.encode(chunk, batch_size=batch_size, prefix=role))
            speeds[backend].append(len(part) / (time.perf_counter() - t0))
    reference = np.concatenate(vectors[Backend.TORCH])
    for backend in encoders:
        agree = None if backend == Backend.TORCH else agreement(np.concatenate(vectors[backend]), reference)
        trials[backend] = BackendTrial(backend.value, round(float(np.median(speeds[backend])), 2), agree)
    return [trials[b] for b in dict.fromkeys([Backend.TORCH, *backends])]


def main(args: argparse.Namespace) -> int:
    import torch

    from distill.clierrors import CommandError, UsageError
    from distill.models import MIN_COSINE, ModelNotFoundError
    from distill.models.backends import fastest_faithful
    from distill.paths import shared_data_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    shared = shared_data_dir()
    try:
        queries = read_texts(args.queries or shared / XQUAD_QUESTIONS_DEV, args.queries_n)
        passages = read_texts(args.passages or shared / XQUAD_PARAGRAPHS, args.passages_n)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"cannot read the texts: {exc}") from None
    if not queries:
        raise UsageError("no queries to embed (--queries-n must be >= 1)")
    results = {}
    for spec in args.specs:
        try:
            trials = compare_backends(spec, queries, passages)
        except (ModelNotFoundError, OSError, ValueError) as exc:
            raise CommandError(f"{spec}: {exc}") from None
        best = fastest_faithful(trials, args.min_cosine)
        results[spec] = {"best": best, "trials": [t.to_dict() for t in trials]}
        if args.best:
            print(best)
        elif not args.json:
            floor = args.min_cosine or MIN_COSINE
            print(
                f"{spec}: {len(queries)} queries + {len(passages)} passages; best at mean cosine >= {floor}: {best}"
            )
            for t in trials:
                if t.error:
                    print(f"  {t.backend:<10} refused: {t.error}")
                    continue
                cos = (
                    f"cosine to fp32 mean {t.agreement.mean:.4f} min {t.agreement.min:.4f}"
                    if t.agreement
                    else "reference"
                )
                print(f"  {t.backend:<10} {t.sentences_per_s:8.1f} texts/s  {cos}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0
