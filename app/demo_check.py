"""Is a demo collection complete and current? Used by scripts/demo.sh to decide what to (re)build.

    python -m app.demo_check data/collections/xquad --corpus CORPUS.jsonl --stamp STAMP.json SPEC [SPEC ...]
    python -m app.demo_check data/collections/xquad --stamp STAMP.json --write-stamp SPEC [SPEC ...]

Exit 0: the collection indexes every SPEC, holds every document of CORPUS, none pending, and the
model files and CORPUS are those it was built with (STAMP, written when it was created).
Exit 1: a SPEC is missing, a model was retrained since (its files differ from STAMP), the corpus
changed (e.g. XLSEARCH_DEMO_CORPUS), or the
collection cannot be opened: rebuild it.
Exit 3: documents are missing or pending (an interrupted `indexer add`): run `indexer add` again,
which skips the documents already indexed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from distill.modelspec import normalize_spec, parse_spec, weights_fingerprint

COMPLETE, REBUILD, RESUME = 0, 1, 3


def fingerprint(specs: list[str]) -> dict[str, object]:
    """Per spec: for a model directory, (size, mtime) of its weight and config files; else the spec.

    A student retrained into the same directory keeps its spec, but not its files: the vectors
    indexed with the old weights would silently no longer match the queries.
    """
    out: dict[str, object] = {}
    for spec in specs:
        path = parse_spec(spec).path
        if path is None or not path.is_dir():
            out[spec] = spec
            continue
        out[str(path)] = weights_fingerprint(path)
    return out


def stamp(specs: list[str], corpus: str | None) -> dict[str, object]:
    """The models' fingerprints, and the corpus's digest: the one-language demo corpus and the
    parallel set hold the same ids, so a collection of the other one must not pass for this one."""
    out = fingerprint(specs)
    if corpus:
        out["corpus"] = hashlib.sha256(Path(corpus).read_bytes()).hexdigest()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.demo_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("collection")
    parser.add_argument("specs", nargs="+", metavar="SPEC")
    parser.add_argument("--corpus", help="JSONL file whose every line must be a document of the collection")
    parser.add_argument(
        "--stamp", type=Path, help="JSON file of the models' file fingerprints at the last build"
    )
    parser.add_argument(
        "--write-stamp", action="store_true", help="record the SPECs' fingerprints in --stamp and exit"
    )
    args = parser.parse_args(argv)
    if args.write_stamp:
        if not args.stamp:
            parser.error("--write-stamp needs --stamp FILE")
        args.stamp.parent.mkdir(parents=True, exist_ok=True)
        args.stamp.write_text(json.dumps(stamp(args.specs, args.corpus), indent=1) + "\n")
        return COMPLETE

    from indexer import Collection, IndexerError

    try:
        with Collection.open(args.collection, read_only=True) as col:
            have = set(col.models)
            info = col.info()
    except IndexerError as exc:
        print(f"{args.collection}: {exc}", file=sys.stderr)
        return REBUILD
    missing = [s for s in args.specs if normalize_spec(s) not in have]
    if missing:
        print(
            f"{args.collection} does not index {', '.join(missing)} (it has {', '.join(sorted(have))})",
            file=sys.stderr,
        )
        return REBUILD
    if args.stamp:
        recorded = json.loads(args.stamp.read_text()) if args.stamp.is_file() else None
        if recorded != stamp(args.specs, args.corpus):
            print(
                f"{args.collection}: a model changed since the collection was built (or {args.stamp} is missing)",
                file=sys.stderr,
            )
            return REBUILD
    if args.corpus:
        with open(args.corpus, encoding="utf-8") as f:
            expected = sum(1 for line in f if line.strip())
        if info["documents"] < expected or info["pending_chunks"]:
            print(
                f"{args.collection} holds {info['documents']} of {expected} documents "
                f"({info['pending_chunks']} chunks pending)",
                file=sys.stderr,
            )
            return RESUME
    return COMPLETE


if __name__ == "__main__":
    sys.exit(main())
