"""The demo collection's documents: each XQuAD paragraph once, in one language.

The shared corpus holds every one of XQuAD's 240 paragraphs in all 12 languages (2,880 records). A
collection of all of them always has the answer in the query's own language, so "all languages"
would never show a cross-lingual hit. The demo collection instead keeps paragraph `i` (the `NNN` of
`xquad.NNN`) only in

    LANGS[(i + OFFSET) % 12]      LANGS = ar de el en es hi ro ru th tr vi zh (alphabetical)

so each language holds exactly 20 paragraphs, and each article (5 consecutive paragraphs) spans 5
languages: a question finds its answer in another language 11 times in 12. OFFSET = 11 puts
paragraph 9 (the Warsaw stock exchange) in Thai, the worked example of the browser test.
`XLSEARCH_DEMO_CORPUS=parallel` (scripts/demo.sh) indexes the 2,880-paragraph parallel set instead.

    python -m app.demo_corpus SHARED_CORPUS.jsonl OUT.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
OFFSET = 11


def paragraph_number(record: dict) -> int:
    """`xquad.009` (the record's parallel_id, else its id without the language) -> 9."""
    group = record.get("parallel_id") or str(record["id"]).rsplit(".", 1)[0]
    return int(str(group).rsplit(".", 1)[-1])


def demo_language(number: int) -> str:
    """The one language paragraph `number` is kept in."""
    return LANGS[(number + OFFSET) % len(LANGS)]


def select(records: Iterable[dict]) -> list[dict]:
    """The records whose language is their paragraph's demo language, in input order."""
    return [r for r in records if r.get("lang") == demo_language(paragraph_number(r))]


def write_demo_corpus(src: Path, dst: Path) -> int:
    """Write the one-language-per-paragraph subset of `src` to `dst` (atomically); return its size."""
    from distill.fileio import atomic_write_text

    with open(src, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    chosen = select(records)
    numbers = {paragraph_number(r) for r in records}
    if len(chosen) != len(numbers):
        raise ValueError(f"{src}: {len(numbers)} paragraphs but {len(chosen)} in their demo language")
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(dst, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen))
    return len(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.demo_corpus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", type=Path, help="the parallel corpus (every paragraph in every language)")
    parser.add_argument("dst", type=Path, help="where to write the one-language-per-paragraph corpus")
    args = parser.parse_args(argv)
    try:
        n = write_demo_corpus(args.src, args.dst)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} paragraphs to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
