"""Give a trimmed-vocabulary student the assistant's full tokenizer (see distill/student/untrim.py).

Pieces the student dropped share the row of their nearest kept piece (cosine of the assistant's
embeddings); rows and layers stay as trained. The student then segments text exactly as the
assistant does. Nothing is trained; it takes about a minute on 2 cores.

examples:
  distill untrim models/student-offline --out data/students/offline-untrimmed
  distill untrim data/students/offline --out /tmp/s --assistant pkg:multilingual-e5-small
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from distill.datasets import ASSISTANT_SPEC


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("student", metavar="STUDENT", help="a saved xlsearch student directory")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="directory to write: new, empty, or a model directory (replaced); anything else is refused",
    )
    parser.add_argument(
        "--assistant",
        default=ASSISTANT_SPEC,
        help="the assistant the student was distilled from (default: %(default)s)",
    )
    parser.add_argument(
        "--extra-rows",
        type=int,
        default=0,
        metavar="N",
        help="also give the N most probable dropped pieces their own (the assistant's) row: "
        "+N x hidden parameters (default: %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    from distill.models import ModelNotFoundError
    from distill.student.untrim import UntrimError, untrim_student

    src = Path(args.student)
    if not (src / "config.json").is_file():
        print(f"distill untrim: error: {src} is not a saved student (no config.json)", file=sys.stderr)
        return 1
    if args.extra_rows < 0:
        print("distill untrim: error: --extra-rows must be >= 0", file=sys.stderr)
        return 2
    if os.path.realpath(args.out) == os.path.realpath(src):
        print("distill untrim: error: --out must differ from the student's directory", file=sys.stderr)
        return 2
    from distill.fileio import OutputPathError, check_output_dir

    try:
        check_output_dir(args.out, [src], what="--out")  # a model directory of ours, or new (issue 24)
    except OutputPathError as exc:
        print(f"distill untrim: error: {exc}", file=sys.stderr)
        return 2
    try:
        report = untrim_student(src, args.out, assistant=args.assistant, extra_rows=args.extra_rows)
    except (UntrimError, ModelNotFoundError, OSError, ValueError) as exc:
        print(f"distill untrim: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.out}: {report['ids']:,} tokenizer ids onto {report['rows']:,} rows "
        f"({report['shared']:,} share a nearest kept row)"
    )
    return 0
