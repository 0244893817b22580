"""`distill`: train, evaluate and manage xlsearch models.

Each subcommand lives in its own module, which provides `add_arguments(parser)` and `main(args)`;
this file only wires them together so `distill --help` lists them all.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from distill import __version__
from distill.clierrors import CommandError, Parser, UsageError, report, unexpected, wants_json

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("distill.models.cli", "list packaged models, or convert/cache one (pkg:NAME) ahead of time"),
    "export": (
        "distill.models.export_cli",
        "export a model for ONNX Runtime (onnx/model.onnx, --int8), checked",
    ),
    "backends": (
        "distill.models.backends_cli",
        "compare a model's backends (cosine to fp32, speed); --best picks one",
    ),
    "untrim": (
        "distill.student.untrim_cli",
        "give a trimmed-vocabulary student the assistant's full tokenizer (nearest kept rows)",
    ),
    "evaluate": (
        "distill.evaluation.cli",
        "evaluate models (bitext, STS, retrieval, cost) and write reports",
    ),
    "run": (
        "distill.train.cli",
        "run the four-stage distillation T -> A -> S from a TOML preset (resumable)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="distill",
        description="Multi-stage distillation of compact cross-lingual sentence encoders (Ding et al., 2022).",
        epilog="exit status: 0 ok, 1 runtime failure, 2 usage error, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(handler=module.main)
    return parser


def user_errors() -> tuple[type[Exception], ...]:
    """Errors whose message is meant for the user: printed as one line (exit 1), never a traceback."""
    from distill.config import ConfigError
    from distill.data import DataError
    from distill.fileio import OutputPathError
    from distill.models import ModelNotFoundError, RemoteCodeError, UnsupportedModelError
    from distill.models.backends import BackendError
    from distill.student.untrim import UntrimError
    from distill.train.state import RunError

    return (
        CommandError,
        ConfigError,
        DataError,
        OutputPathError,
        ModelNotFoundError,
        RemoteCodeError,
        OSError,
    ) + (
        UnsupportedModelError,
        BackendError,
        UntrimError,
        RunError,
    )


def main(argv: list[str] | None = None) -> int:
    """Exit status and error output follow `distill.clierrors` (the convention both CLIs share)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    json_mode = wants_json(argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # only commands that take free-form `--key=value` overrides accept unknown options
            if not getattr(args, "accepts_overrides", False):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.overrides = extra
    except UsageError as exc:
        raise SystemExit(report("distill", exc, json_mode=json_mode)) from None
    prog = f"distill {args.command}"
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt as exc:
        return report(prog, exc, json_mode=json_mode, message="interrupted")
    except UsageError as exc:
        return report(prog, exc, json_mode=json_mode)
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if isinstance(exc, user_errors()):
            return report(prog, exc, json_mode=json_mode)
        return unexpected(prog, exc, json_mode=json_mode)


if __name__ == "__main__":
    sys.exit(main())
