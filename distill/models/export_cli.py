"""Export a model for ONNX Runtime ahead of time (the `onnx` / `onnx-int8` backends).

The files use the sentence-transformers ONNX layout, `onnx/model.onnx` and `onnx/model_qint8.onnx`
beside the model's weights; for a `pkg:` model, a hub snapshot or a read-only directory they go to
the data dir (`data/models/onnx-cache/`). Each export is checked against the torch model on a few
multilingual texts and refused below a mean cosine of 0.995. `load_encoder(..., backend="onnx")` and
`indexer create --backend onnx` export on first use anyway; this command does it up front, or
again with --force.

examples:
  distill export data/students/offline --onnx              # onnx/model.onnx
  distill export pkg:multilingual-e5-small --onnx --int8   # and onnx/model_qint8.onnx
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="MODEL", help="pkg:NAME, a model directory or a hub id")
    parser.add_argument("--onnx", action="store_true", help="export the transformer to ONNX (fp32)")
    parser.add_argument("--int8", action="store_true", help="also write its dynamic int8 quantisation")
    parser.add_argument(
        "--force", action="store_true", help="export again even if the cached files are current"
    )


def main(args: argparse.Namespace) -> int:
    from distill.models import (
        Backend,
        BackendError,
        ModelNotFoundError,
        load_encoder,
        read_layout,
        resolve_model,
    )
    from distill.models.backends import export_onnx

    if not args.onnx:
        print(
            "distill export: nothing to export; give --onnx (and --int8 for the quantised file)",
            file=sys.stderr,
        )
        return 2
    try:
        reference = load_encoder(args.spec, device="cpu")
        transformer_dir = read_layout(resolve_model(args.spec)).transformer_dir
        for backend in [Backend.ONNX] + ([Backend.ONNX_INT8] if args.int8 else []):
            path, agree = export_onnx(reference, args.spec, transformer_dir, backend, force=args.force)
            how = (
                f"exported, cosine to torch min {agree.min:.4f} mean {agree.mean:.4f} on {agree.n} texts"
                if agree
                else "up to date, reused"
            )
            print(f"{backend.value}: {path} ({how})")
    except (BackendError, ModelNotFoundError, OSError) as exc:
        print(f"distill export: error: {exc}", file=sys.stderr)
        return 1
    return 0
