"""How both command lines (`indexer`, `distill`) end on an error: the one home of the convention.

One line `PROG: error: MESSAGE` on standard error, never a traceback; with --json also one JSON
object `{"error": {"kind": ..., "message": ...}}` on standard output, so a script that asked for JSON
always gets JSON. Exit status: 1 runtime failure, 2 usage error, 130 interrupted.
`XLSEARCH_TRACEBACK=1` shows the traceback of an unexpected error (a bug: please report it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """What the command line asks for makes no sense (exit status 2)."""

    def __init__(self, message: str, parser: argparse.ArgumentParser | None = None) -> None:
        super().__init__(message)
        self.parser = parser


class CommandError(Exception):
    """A runtime failure whose message is for the user (exit status 1)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors reach `main` as UsageError (so --json can report them);
    its subcommand parsers are of the same class."""

    def error(self, message: str):
        raise UsageError(message, self)


def error_kind(exc: BaseException) -> str:
    """`CollectionNotFoundError` -> `collection_not_found`: a stable name for scripts."""
    if isinstance(exc, UsageError):
        return "usage"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    name = type(exc).__name__.removesuffix("Error") or "error"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def wants_json(argv: list[str]) -> bool:
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def report(prog: str, exc: BaseException, *, json_mode: bool, message: str | None = None) -> int:
    """Print `exc` the convention's way; return its exit status."""
    from distill.fileio import OutputPathError  # an output the rule refuses: choose another one

    code = (
        EXIT_USAGE
        if isinstance(exc, UsageError | OutputPathError)
        else EXIT_INTERRUPTED
        if isinstance(exc, KeyboardInterrupt)
        else EXIT_RUNTIME
    )
    text = message or _describe(exc)
    if isinstance(exc, UsageError) and exc.parser is not None:
        exc.parser.print_usage(sys.stderr)
        prog = exc.parser.prog
    sys.stderr.write((text if code == EXIT_INTERRUPTED else f"{prog}: error: {text}") + "\n")
    if json_mode:
        sys.stdout.write(
            json.dumps({"error": {"kind": error_kind(exc), "message": text}}, ensure_ascii=False) + "\n"
        )
        sys.stdout.flush()
    return code


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:  # not "[Errno 36] ...": what, and which file
        where = f"{exc.filename}: " if exc.filename else ""
        if len(where) > 120:
            where = where[:80] + "…" + where[-30:]
        return f"{where}{exc.strerror}"
    return str(exc) or type(exc).__name__


def unexpected(prog: str, exc: Exception, *, json_mode: bool) -> int:
    """The last resort for an error nobody anticipated: still one line (and the JSON object)."""
    if os.environ.get("XLSEARCH_TRACEBACK"):
        raise exc
    message = (
        f"internal error ({type(exc).__name__}: {exc}); this is a bug, please report it "
        "(XLSEARCH_TRACEBACK=1 shows the traceback)"
    )
    return report(prog, exc, json_mode=json_mode, message=message)
