"""Run the four-stage distillation (T -> A -> S) from a TOML preset.

Stages: 1 multilingual KD T -> A; 2 bottleneck embedding; 3 parameter recurrence;
4 multilingual contrastive learning. Any config field can be overridden with --key=value
(dotted keys reach into sections). Ctrl-C saves a checkpoint; --resume continues from it.

examples:
  distill run --config offline                   # a preset by name (configs/offline.toml)
  distill run --config configs/offline.toml
  distill run --config configs/offline.toml --resume
  distill run --config configs/offline.toml --stage 3 --student.passes=1
  distill run --config configs/offline.toml --stage4.variant=infonce --out_dir=data/students/try
  distill run --config configs/offline.toml --print-config
  torchrun --nproc-per-node 2 -m distill run --config configs/paper-minilm.toml
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help="a TOML file, or a preset by name (offline, offline-full, paper-minilm, ...); "
        "defaults if omitted",
    )
    parser.add_argument(
        "--stage", type=int, choices=(1, 2, 3, 4), help="run only this stage (earlier ones must be done)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its last checkpoint"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="delete an existing run directory and start over"
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.epilog = "config overrides: any --section.key=value, e.g. --stage1.steps=10 --data.langs=de,fr"
    parser.set_defaults(accepts_overrides=True, overrides=[])


def main(args: argparse.Namespace) -> int:
    from distill.config import ConfigError, dump_toml, load_config
    from distill.data import DataError
    from distill.models import ModelNotFoundError, RemoteCodeError, UnsupportedModelError
    from distill.train.run import RunError, run

    overrides = list(getattr(args, "overrides", []) or [])
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(dump_toml(cfg), end="")
        return 0
    try:
        summary = run(cfg, stage=args.stage, resume=args.resume, overwrite=args.overwrite)
    except (
        ConfigError,
        DataError,
        RunError,
        ModelNotFoundError,
        RemoteCodeError,
        UnsupportedModelError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(
            f"\ninterrupted: {exc or 'Ctrl-C'}. Continue with the same command plus --resume.",
            file=sys.stderr,
        )
        return 130
    print(json.dumps({k: v for k, v in summary.items() if k != "baselines"}, indent=1, default=str))
    print(f"final student: {summary['out_dir']}")
    return 0
