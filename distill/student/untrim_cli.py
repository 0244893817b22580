"""Give a trimmed-vocabulary student the assistant's full tokenizer (see distill/student/untrim.py).

Pieces the student dropped share the row of their nearest kept piece (cosine of the assistant's
embeddings); rows and layers stay as trained. The student then segments text exactly as the
assistant does. Nothing is trained. Finding the nearest rows takes 3-4 minutes on 2 cores, unless
the student carries them (`token_rows.npz`, written by `--table`): then it takes seconds.

examples:
  distill untrim models/student-offline --out data/students/offline-untrimmed
  distill untrim data/students/offline --out /tmp/s --assistant pkg:multilingual-e5-small
  distill untrim models/student-offline --table    # ship the nearest rows with the student
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from distill.datasets import ASSISTANT_SPEC


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("student", metavar="STUDENT", help="a saved xlsearch student directory")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--out",
        type=Path,
        help="directory to write: new, empty, or a model directory (replaced); anything else is refused",
    )
    target.add_argument(
        "--table",
        action="store_true",
        help="write only the nearest-row table into STUDENT (token_rows.npz, 1 MB), so that untrimming "
        "it later takes seconds",
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
    if args.table and args.extra_rows:
        print(
            "distill untrim: error: --extra-rows needs --out (the table holds the student's own rows)",
            file=sys.stderr,
        )
        return 2
    if args.out is not None:
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
    where = report.get("table") or args.out
    print(
        f"{where}: {report['ids']:,} tokenizer ids onto {report['rows']:,} rows "
        f"({report['shared']:,} share a nearest kept row)"
    )
    return 0
