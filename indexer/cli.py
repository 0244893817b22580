"""`indexer`: build, update, search and check multilingual document collections.

A collection is a directory holding a database (SQLite inside the directory by default, or any
SQLAlchemy URL given at `create`) and one vector store per model over the same chunks (FAISS
index files in the directory by default, or Milvus: Lite or a server). The
collection directory is always the first argument.

Examples:
  indexer create data/collections/xquad --model pkg:multilingual-e5-small --model pkg:all-MiniLM-L6-v2
  indexer add data/collections/xquad ../shared/data/corpus/xquad_paragraphs.jsonl
  indexer search data/collections/xquad "¿Quién ganó el Super Bowl 50?" --lang en,de,zh
  indexer info data/collections/xquad
  indexer verify data/collections/xquad
  cat docs.jsonl | indexer add data/collections/xquad - --json

Every command takes --json (machine-readable output on standard output). Exit status: 0 ok,
1 runtime failure (bad input, a broken collection, `verify` found problems), 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import textwrap
import unicodedata
from pathlib import Path

from distill import __version__
from distill.clierrors import Parser, UsageError, report, unexpected, wants_json
from distill.data import DataError
from distill.fileio import OutputPathError
from indexer.cli_help import COMMANDS  # also imported from here by the tests
from indexer.errors import IndexerError


def path_arg(text: str) -> Path:
    """A path argument: one the OS can take (no NUL byte), refused as a usage error otherwise."""
    if "\x00" in text:
        raise argparse.ArgumentTypeError(f"{text!r} holds a NUL byte, which no file name can")
    return Path(text)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", type=path_arg, help="the collection directory")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch and FAISS (default: all cores)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _index_params(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("index parameters")
    g.add_argument("--index-type", default=None, help="flat | hnsw | ivfpq | auto | a FAISS factory string")
    g.add_argument("--hnsw-m", type=int, help="HNSW: neighbours per node (default 32)")
    g.add_argument("--ef-construction", type=int, help="HNSW: build-time search depth (default 40)")
    g.add_argument("--ef-search", type=int, help="HNSW: query-time search depth (default 64)")
    g.add_argument("--nlist", type=int, help="IVF: number of lists (default ~4 sqrt(n))")
    g.add_argument("--pq-m", type=int, help="PQ: sub-quantizers, must divide the dimension (default dim/8)")
    g.add_argument("--pq-nbits", type=int, help="PQ: bits per sub-quantizer code (default 8)")
    g.add_argument("--nprobe", type=int, help="IVF: lists visited per query (default 16)")


BACKEND_HELP = (
    "torch | int8 | onnx | onnx-int8 for every model, or SPEC=NAME for one model (repeatable); default torch"
)


def _backends_of(values: list[str] | None) -> str | dict[str, str] | None:
    """`--backend NAME` (all models) or `--backend SPEC=NAME ...` (one each)."""
    if not values:
        return None
    pairs = [v.rsplit("=", 1) for v in values]
    if len(values) == 1 and len(pairs[0]) == 1:
        return values[0]
    if any(len(p) == 1 for p in pairs):
        raise IndexerError("--backend: give one NAME for every model, or SPEC=NAME for each model, not both")
    return {spec: name for spec, name in pairs}


def _params_of(args: argparse.Namespace) -> dict:
    names = ("hnsw_m", "ef_construction", "ef_search", "nlist", "pq_m", "pq_nbits", "nprobe")
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        metavar="FILE",
        nargs="+",
        type=path_arg,
        help="input files (.jsonl, .csv, .tsv, .txt); - reads JSONL from standard input",
    )
    p.add_argument(
        "--on-error",
        choices=["fail", "skip"],
        default="fail",
        help="fail: reject a file with any bad record (default); skip: index the good records",
    )
    p.add_argument(
        "--rejects", type=path_arg, help="where --on-error skip writes bad records (default DIR/rejects/)"
    )
    p.add_argument("--lang", help="language of .txt files not named NAME.xx.txt")
    p.add_argument("--batch-size", type=int, default=32, help="texts per encoder batch")
    p.add_argument(
        "--commit-every",
        type=int,
        default=None,
        help="commit the indexes at least every N embedded chunks (default 2048; more grows with the index)",
    )
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=0.0,
        help="seconds to wait for another writer (default: fail at once)",
    )


def _create_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        metavar="SPEC",
        help="pkg:NAME, a model directory or a hub id; repeat for several models",
    )
    _index_params(p)
    p.add_argument("--db-url", help="SQLAlchemy URL of an empty database (default: SQLite in DIR)")
    p.add_argument(
        "--vector-store",
        default="faiss",
        metavar="NAME",
        help="faiss (index files in DIR, the default) | milvus (one Milvus collection per model)",
    )
    p.add_argument(
        "--milvus-uri",
        help="milvus: a Milvus Lite file (default DIR/milvus.db) or a server such as http://host:19530; "
        "credentials from MILVUS_TOKEN or MILVUS_USER + MILVUS_PASSWORD",
    )
    p.add_argument("--chunk-tokens", type=int, default=256, help="token budget per chunk (default 256)")
    p.add_argument(
        "--chunk-overlap", type=int, default=32, help="tokens of whole sentences repeated between chunks"
    )
    p.add_argument("--max-chars", type=int, default=1_000_000, help="reject documents longer than this")
    p.add_argument(
        "--embed-title", action="store_true", help="embed 'title + chunk' instead of the chunk alone"
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let models that ship their own Python code (auto_map in config.json) run it; "
        "recorded in the collection for later commands. Only for models whose author you trust",
    )
    p.add_argument("--backend", action="append", metavar="NAME", help=BACKEND_HELP)


def _delete_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", dest="ids", nargs="+", default=[], metavar="ID", help="document ids")
    p.add_argument("--ids-file", type=path_arg, help="a file with one document id per line")


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="the query text (any language)")
    p.add_argument("--model", help="which model's index to search (spec or name; default: the first)")
    p.add_argument("--k", type=int, default=10, help="number of documents (default 10)")
    p.add_argument("--lang", help="only documents in these languages, comma-separated (e.g. en,de,zh)")


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repair", action="store_true", help="reconcile (open for writing) before checking")


def _rebuild_args(p: argparse.ArgumentParser) -> None:
    _index_params(p)
    p.add_argument(
        "--model", dest="models", action="append", metavar="SPEC", help="only this model (repeatable)"
    )
    p.add_argument(
        "--reembed", action="store_true", help="encode every chunk again instead of using stored vectors"
    )
    p.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        help="switch the backend (needs --reembed): " + BACKEND_HELP.replace("; default torch", ""),
    )
    p.add_argument("--lock-timeout", type=float, default=0.0, help="seconds to wait for another writer")


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=path_arg, help="output file (default: standard output)")


_ARGS = {
    "create": _create_args,
    "add": _ingest_args,
    "update": _ingest_args,
    "delete": _delete_args,
    "search": _search_args,
    "verify": _verify_args,
    "rebuild": _rebuild_args,
    "export": _export_args,
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="indexer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, description) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=summary,
            description=textwrap.dedent(description),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common(p)
        if name in _ARGS:
            _ARGS[name](p)
        p.set_defaults(handler=globals()[f"cmd_{name}"])
    return parser


# ---------------------------------------------------------------------------------------------


def _emit(args: argparse.Namespace, data, text: str | None = None) -> None:
    """The one place commands print their result: `data` as JSON with --json, else `text`."""
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    elif text is not None:
        print(text)


def _open(args: argparse.Namespace, read_only: bool, **kw):
    from indexer import Collection

    return Collection.open(
        args.dir, read_only=read_only, threads=args.threads, show_progress=not args.quiet, **kw
    )


def cmd_create(args: argparse.Namespace) -> int:
    from indexer import Collection, CollectionSettings

    settings = CollectionSettings(
        chunk_tokens=args.chunk_tokens,
        chunk_overlap=args.chunk_overlap,
        max_chars=args.max_chars,
        embed_title=args.embed_title,
    )
    with Collection.create(
        args.dir,
        args.models,
        index_type=args.index_type or "flat",
        db_url=args.db_url,
        index_params=_params_of(args),
        settings=settings,
        threads=args.threads,
        show_progress=not args.quiet,
        trust_remote_code=args.trust_remote_code,
        backends=_backends_of(args.backend),
        vector_store=args.vector_store,
        milvus_uri=args.milvus_uri,
    ) as col:
        info = col.info()
    _emit(
        args,
        info,
        f"created {info['path']} ({_store_line(info['vector_store'])}) with {len(info['models'])} model(s): "
        + ", ".join(
            f"{m['spec']} ({m['dim']}-dim, {m['index_type']}, {m['backend']})" for m in info["models"]
        ),
    )
    return 0


STDIN_NAME = "<stdin>"  # what messages call standard input (not the spool file it is read from)


def _stdin_files(files: list[Path], tmp: Path) -> tuple[list[Path], dict[str, str]]:
    """`-` -> standard input spooled to a JSONL file (the input is read twice: validated, then added),
    and the names messages use for the spooled files."""
    if sum(str(f) == "-" for f in files) > 1:
        raise DataError("-", None, "standard input (-) can be given only once")
    if not any(str(f) == "-" for f in files):
        return files, {}
    spool = tmp / "stdin.jsonl"
    with spool.open("wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out)
    return [spool if str(f) == "-" else f for f in files], {str(spool): STDIN_NAME}


def _ingest(args: argparse.Namespace, upsert: bool) -> int:
    import tempfile

    from distill.fileio import check_output_file

    if args.rejects is not None:  # never an input, never inside a collection (issue 24)
        check_output_file(args.rejects, [f for f in args.files if str(f) != "-"], what="--rejects")
    with tempfile.TemporaryDirectory(prefix="indexer-stdin-") as tmp:
        files, names = _stdin_files(list(args.files), Path(tmp))
        summary = _ingest_files(args, files, names, upsert)
    for line in summary.problems[:5]:
        print(f"rejected {line}", file=sys.stderr)
    _emit(args, summary.to_dict(), str(summary))
    return 0


def _ingest_files(args: argparse.Namespace, files: list[Path], names: dict[str, str], upsert: bool):
    with _open(
        args,
        read_only=False,
        batch_size=args.batch_size,
        commit_every=args.commit_every,
        lock_timeout=args.lock_timeout,
    ) as col:
        with col.lock():
            return col.add_files(
                files,
                on_error=args.on_error,
                lang=args.lang,
                rejects=args.rejects,
                upsert=upsert,
                names=names,
            )


def cmd_add(args: argparse.Namespace) -> int:
    return _ingest(args, upsert=True)


def cmd_update(args: argparse.Namespace) -> int:
    return _ingest(args, upsert=False)


def cmd_delete(args: argparse.Namespace) -> int:
    ids = list(args.ids)
    if args.ids_file:
        try:
            ids += [
                line.strip()
                for line in args.ids_file.read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(args.ids_file, None, f"cannot read ids ({exc})") from None
    if not ids:
        raise UsageError("give --id ID... or --ids-file FILE")
    with _open(args, read_only=False) as col:
        summary = col.delete(ids)
    _emit(args, summary.to_dict(), str(summary))
    return 0


def _one_line(text: str) -> str:
    """One terminal line: whitespace runs and unprintable characters (C1 controls are allowed in
    texts, and some terminals act on them) become single spaces."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _fit(text: str, width: int) -> str:
    """Cut `text` to `width` terminal columns (CJK characters take two), padding with spaces."""
    cols = [2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text]
    if sum(cols) > width:  # keep what fits beside a trailing ellipsis
        used, n = 0, 0
        while used + cols[n] <= width - 1:
            used += cols[n]
            n += 1
        text, cols = text[:n] + "…", [*cols[:n], 1]
    return text + " " * (width - sum(cols))


def cmd_search(args: argparse.Namespace) -> int:
    langs = [x.strip() for x in args.lang.split(",") if x.strip()] if args.lang else None
    with _open(args, read_only=True) as col:
        hits = col.search(args.query, model=args.model, k=args.k, langs=langs)
        model = col.model_spec(args.model)
    if args.json:
        _emit(args, [h.to_dict() for h in hits])
        return 0
    if not hits:
        print(f"no documents found (model {model}{', languages ' + ','.join(langs) if langs else ''})")
        return 0
    width = shutil.get_terminal_size((120, 20)).columns
    id_w = min(max(len(h.doc_id) for h in hits), 28)
    title_w = max(min(max(len(h.title) for h in hits), 24), 5)
    print(f"model {model}")
    print(f"{'#':>3}  {'score':<6}  {'lang':<4}  {'id':<{id_w}}  {'title':<{title_w}}  snippet")
    for h in hits:
        head = f"{h.rank:>3}  {h.score:<6.4f}  {h.lang:<4}  {_fit(h.doc_id, id_w)}  {_fit(_one_line(h.title), title_w)}  "
        print(head + _fit(_one_line(h.snippet), max(width - len(head), 30)).rstrip())
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _store_line(store: dict) -> str:
    if store["kind"] != "milvus":
        return f"{store['kind']} (index files in DIR/indexes)"
    return f"milvus ({'Milvus Lite' if store.get('lite') else 'server'} {store['uri']})"


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args, read_only=True) as col:
        info = col.info()
    if args.json:
        _emit(args, info)
        return 0
    langs = ", ".join(f"{k} {v}" for k, v in info["languages"].items())
    print(f"collection   {info['path']}")
    print(f"database     {info['database']}")
    print(f"vector store {_store_line(info['vector_store'])}")
    print(f"documents    {info['documents']} in {len(info['languages'])} language(s): {langs}")
    print(f"chunks       {info['chunks']} ({info['pending_chunks']} pending)")
    s = info["settings"]
    print(
        f"chunking     {s['chunk_tokens']} tokens, overlap {s['chunk_overlap']}, title embedded: {s['embed_title']}"
    )
    print(f"created      {info['created_at']}")
    print(f"last update  {info['last_update']}")
    print("models")
    for m in info["models"]:
        print(f"  {m['name']}  ({m['spec']}, {m['dim']}-dim, backend {m['backend']})")
        kind = m["index_type"] if m["index_type"] == m["factory"] else f"{m['index_type']} ({m['factory']})"
        print(
            f"    index {kind}: {m['vectors']} vectors, {m['tombstones']} tombstones, {_size(m['index_bytes'])}; "
            f"stored vectors {_size(m['stored_vector_bytes'])} in {m['segments']} segment(s); "
            f"generation {m['generation']}, updated {m['updated_at']}"
        )
        if m["broken"]:
            print(f"    PROBLEM: {m['broken']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    repairs: list[str] = []
    if args.repair:
        from indexer import Collection

        restored = Collection.restore_marker(args.dir)  # a lost collection.json, from the database
        with _open(args, read_only=False) as col:
            repairs = [restored] * bool(restored) + [str(action) for action in col.repairs]
        for action in [] if args.json else repairs:
            print(f"repaired: {action}")
    with _open(args, read_only=True) as col:
        report = col.verify()
    if args.json:
        _emit(args, {**report.to_dict(), "repairs": repairs})
    else:
        for line in report.problems:
            print(f"PROBLEM  {line}")
        for line in report.notes:
            print(f"note     {line}")
        st = report.stats
        verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        print(
            f"{verdict}: {st.get('documents', 0)} documents, {st.get('chunks', 0)} chunks, "
            f"{sum(1 for k in st if isinstance(st[k], dict))} model index(es) checked"
        )
    return 0 if report.ok else 1


def cmd_rebuild(args: argparse.Namespace) -> int:
    with _open(args, read_only=False, lock_timeout=args.lock_timeout) as col:
        col.rebuild(
            args.index_type,
            models=args.models,
            reembed=args.reembed,
            index_params=_params_of(args) or None,
            backend=_backends_of(args.backend),
        )
        info = col.info()
    _emit(
        args,
        info["models"],
        "\n".join(
            f"{m['name']}: {m['index_type']} ({m['factory']}), {m['vectors']} vectors, {_size(m['index_bytes'])}, "
            f"backend {m['backend']}"
            for m in info["models"]
        ),
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from distill.fileio import atomic_open, check_output_file

    if args.json and not args.out:
        raise UsageError("export --json needs --out FILE: the documents are JSONL, one JSON value per line")
    with _open(args, read_only=True) as col:
        if args.out:
            from indexer.schema import sqlite_file

            db_file = sqlite_file(col.db_url)
            inputs = [col.path, *([db_file] if db_file else [])]
            check_output_file(args.out, inputs, what="--out")  # never the collection's own files
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(args.out, "w") as f:  # a failed export leaves an earlier file as it was
                n = col.export(f)
            if args.json:
                _emit(args, {"documents": n, "out": str(args.out)})
            else:
                print(f"exported {n} documents to {args.out}", file=sys.stderr)
        else:  # JSONL on standard output is JSON already
            col.export(sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Exit status and error output follow `distill.clierrors` (the convention both CLIs share)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    json_mode = wants_json(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        raise SystemExit(report("indexer", exc, json_mode=json_mode)) from None
    logging.basicConfig(level=logging.WARNING, format="indexer: %(message)s")
    prog = f"indexer {args.command}"
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt as exc:
        message = "interrupted (committed work is kept; the next writer finishes the rest)"
        return report(prog, exc, json_mode=json_mode, message=message)
    except BrokenPipeError:
        return 0
    except (IndexerError, DataError, OutputPathError, UsageError, OSError) as exc:
        return report(prog, exc, json_mode=json_mode)
    except Exception as exc:  # a bug: still no traceback for the user (XLSEARCH_TRACEBACK=1 shows it)
        return unexpected(prog, exc, json_mode=json_mode)


if __name__ == "__main__":
    sys.exit(main())
