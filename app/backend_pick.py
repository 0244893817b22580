"""Which backend `make demo` indexes a model with, without timing it on every fresh machine.

In order, the first that exists:

1. `backends.json` inside the model's directory (a shipped student carries its own);
2. the shipped measurements of a model without a directory of ours: `models/<name>.backends.json`
   for a packaged model (`pkg:NAME`), the shipped student's for its untrimmed copy
   (distill.paths.default_student); `--defaults FILE` adds another;
3. this machine's cache, `<data>/cache/backends/<name>-<hash of the model files>.json`;
4. a measurement now (`distill backends`: cosine to fp32 and texts/s on dev texts, ~1 minute per
   model, exporting ONNX on first use), written to the cache.

Each file is `distill backends --json`'s entry for the model: {"best": NAME, "trials": [...]}. The
pick is the fastest backend at mean cosine >= 0.995 to fp32 (`distill.models.backends.fastest_faithful`).

    python -m app.backend_pick SPEC [--defaults FILE]     # prints the backend name
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from distill.datasets import XQUAD_PARAGRAPHS, XQUAD_QUESTIONS_DEV

FILE = "backends.json"


def _read(path: Path | None) -> dict | None:
    try:
        entry = json.loads(path.read_text()) if path is not None and path.is_file() else None
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("best"), str) else None


def cache_file(spec: str) -> Path:
    from app.demo_check import fingerprint
    from distill.modelspec import display_name
    from distill.paths import data_dir

    digest = hashlib.sha256(json.dumps(fingerprint([spec]), sort_keys=True).encode()).hexdigest()[:12]
    return data_dir() / "cache" / "backends" / f"{display_name(spec)}-{digest}.json"


def measure(spec: str) -> dict:
    """`distill backends`' trials for `spec` on its default dev texts."""
    from distill.models.backends import fastest_faithful
    from distill.models.backends_cli import compare_backends, read_texts
    from distill.paths import shared_data_dir

    shared = shared_data_dir()
    queries = read_texts(shared / XQUAD_QUESTIONS_DEV, 128)
    passages = read_texts(shared / XQUAD_PARAGRAPHS, 32)
    trials = compare_backends(spec, queries, passages)
    return {"best": fastest_faithful(trials), "trials": [t.to_dict() for t in trials]}


def sources(spec: str, name: str = FILE, suffix: str = ".backends.json") -> list[Path]:
    """Where shipped files about `spec` may be, in order (see the module docstring): `name` in its
    directory, `models/<model name><suffix>` in the checkout, the shipped student's `name` for its
    untrimmed copy."""
    from distill import paths
    from distill.modelspec import display_name, parse_spec

    directory = parse_spec(spec).path
    out = [directory / name] if directory is not None else []
    out.append(paths.REPO_ROOT / "models" / f"{display_name(spec)}{suffix}")
    shipped = paths.shipped_student()
    if directory is not None and shipped is not None and directory.name == paths.UNTRIMMED_STUDENT:
        out.append(shipped / name)
    return out


def stored(spec: str, defaults: Path | None = None) -> tuple[dict, str] | None:
    """(the measurements, the file they come from) without measuring; None when there are none."""
    for source in [*sources(spec), *([defaults] if defaults else []), cache_file(spec)]:
        entry = _read(source)
        if entry is not None:
            return entry, str(source)
    return None


def pick(spec: str, defaults: Path | None = None) -> tuple[dict, str]:
    """(the measurements, where they come from) for `spec`, measuring only when nothing is stored."""
    from distill.fileio import atomic_write_text

    found = stored(spec, defaults)
    if found is not None:
        return found
    cached = cache_file(spec)
    entry = measure(spec)
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cached, json.dumps(entry, indent=1) + "\n")
    return entry, f"measured now, cached in {cached}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.backend_pick",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", help="pkg:NAME or a model directory")
    parser.add_argument("--defaults", type=Path, help="shipped measurements to use when the model has none")
    args = parser.parse_args(argv)
    try:
        entry, source = pick(args.spec, args.defaults)
    except (OSError, ValueError) as exc:
        print(f"error: {args.spec}: {exc}", file=sys.stderr)
        return 2
    print(f"backend of {args.spec}: {entry['best']} (from {source})", file=sys.stderr)
    print(entry["best"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
