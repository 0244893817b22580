"""No traceback reaches a user (issue 24): every `indexer` and `distill` subcommand against a corpus of
hostile arguments and files (odd paths, URLs, encodings, deep nesting, huge lines, numbers out of
range), run in-process as the other CLI tests do.

Each run must exit 0, 1 or 2; print neither a traceback nor the last-resort "internal error" line
(that would be an error nobody anticipated); with --json print exactly one JSON value on standard
output; and leave every pre-existing file byte-for-byte as it was, unless writing it was the
command's job (then the collection must still verify clean).
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from distill.cli import main as distill_main
from indexer.cli import main as indexer_main

Q = ["--threads", "1", "-q"]
WRITERS = {"add", "update", "delete", "rebuild", "create"}


def hostile_files(root: Path) -> dict[str, Path]:
    """Files a careless user or an attacker hands over."""
    root.mkdir()
    deep = "[" * 100_000 + "]" * 100_000
    files = {
        "empty.jsonl": b"",
        "blank.jsonl": b"\n\n   \n",
        "binary.jsonl": os.urandom(2048),
        "latin1.jsonl": '{"id": "é", "lang": "fr", "text": "café"}\n'.encode("latin-1"),
        "utf16.jsonl": '{"id": "a", "lang": "en", "text": "x"}\n'.encode("utf-16"),
        "bom.jsonl": b'\xef\xbb\xbf{"id": "a", "lang": "en", "text": "x"}\n',
        "crlf.csv": b'id,lang,text\r\na,en,x\r\nb,en,"unterminated\r\n',
        "deep.jsonl": ('{"id": "a", "lang": "en", "text": "x", "m": ' + deep + "}\n").encode(),
        "deep-array.jsonl": (deep + "\n").encode(),
        "nan.jsonl": b'{"id": "a", "lang": "en", "text": "x", "v": NaN}\n',
        "dup.jsonl": b'{"id": "a", "id": "b", "lang": "en", "text": "x"}\n',
        "huge-line.jsonl": b'{"id": "h", "lang": "en", "text": "' + b"word " * 300_000 + b'"}\n',
        "ids.txt": "a\n\u202eb\n\x00c\n".encode(),
        "odd.tsv": b"foo\tbar\nA\tB\n",
        "sts.tsv": b"sentence1\tsentence2\tscore\nA\tB\tnot-a-number\n",
        "config.toml": b"[stage1\nsteps = = 3\n",
        "deep.toml": ("x = " + "[" * 5000 + "]" * 5000 + "\n").encode(),
        "ok.jsonl": b'{"id": "n1", "lang": "en", "text": "A new document."}\n',
    }
    out = {}
    for name, data in files.items():
        (root / name).write_bytes(data)
        out[name] = root / name
    (root / "dir.jsonl").mkdir()
    out["dir.jsonl"] = root / "dir.jsonl"
    (root / "loop.jsonl").symlink_to(root / "loop.jsonl")
    out["loop.jsonl"] = root / "loop.jsonl"
    odd = root / "new\nline -- ü.jsonl"
    odd.write_bytes(b'{"id": "o", "lang": "en", "text": "odd name"}\n')
    out["odd-name"] = odd
    return out


def snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and not p.name.endswith(("-wal", "-shm")):
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def run(main, argv: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    """`main(argv)` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    sys.stdout, sys.stderr = out, err
    try:
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return rc, out.getvalue(), err.getvalue()


def check(main, argv: list[str], stdin: bytes = b"") -> int:
    rc, out, err = run(main, argv, stdin)
    shown = f"{argv!r}\nrc={rc}\nstderr:\n{err[-3000:]}"
    assert rc in (0, 1, 2), shown
    assert "Traceback" not in err and "internal error" not in err, shown
    if "--json" in argv:
        json.loads(out)  # exactly one JSON value (raises on none, or on JSONL)
    return rc


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("hostile")
    files = hostile_files(root / "files")
    col = root / "col"
    assert indexer_main(["create", str(col), "--model", str(tiny_model_dir), *Q]) == 0
    docs = root / "docs.jsonl"
    docs.write_text(
        "".join(json.dumps({"id": f"d{i}", "lang": "en", "text": f"Doc {i}."}) + "\n" for i in range(3))
    )
    assert indexer_main(["add", str(col), str(docs), *Q]) == 0
    return {"root": root, "files": files, "col": col, "model": tiny_model_dir}


def odd_dirs(w) -> list[str]:
    f = w["files"]
    return [
        "",
        str(w["root"] / "missing"),
        str(f["ok.jsonl"]),  # a file, not a directory
        str(f["loop.jsonl"]),
        str(w["root"] / ("x" * 300)),
        "/proc/self",
        "/dev/null",
        str(w["root"] / "files"),  # a directory that is not a collection
        "-",
    ]


def indexer_cases(w) -> list[list[str]]:
    col, f = str(w["col"]), w["files"]
    cases: list[list[str]] = []
    for cmd in ("info", "verify", "export", "search"):
        for d in odd_dirs(w):
            cases.append([cmd, d, *(["q"] if cmd == "search" else []), "--json"])
    inputs = [str(p) for p in f.values()] + ["/dev/null", "/proc/self/status", "/etc/shadow", "-"]
    for name in inputs:
        cases.append(["add", col, name, "--json", *Q])
        cases.append(
            [
                "update",
                col,
                name,
                "--on-error",
                "skip",
                "--rejects",
                str(w["root"] / "rej.jsonl"),
                "--json",
                *Q,
            ]
        )
    cases += [
        ["add", col, str(f["ok.jsonl"]), "--rejects", str(f["ok.jsonl"]), "--on-error", "skip", "--json"],
        [
            "add",
            col,
            str(f["dup.jsonl"]),
            "--rejects",
            col + "/collection.db",
            "--on-error",
            "skip",
            "--json",
        ],
        ["add", col, str(f["ok.jsonl"]), "--lang", "\u202e", "--batch-size", "0", "--json"],
        ["add", col, str(f["ok.jsonl"]), "--commit-every", "-5", "--lock-timeout", "nan", "--json"],
        ["add", col, str(f["ok.jsonl"]), "--lock-timeout", "inf", "--threads", "-1", "--json"],
        ["delete", col, "--ids-file", str(f["ids.txt"]), "--json"],
        ["delete", col, "--ids-file", str(f["binary.jsonl"]), "--json"],
        ["delete", col, "--ids-file", str(f["dir.jsonl"]), "--json"],
        ["delete", col, "--id", "\x00", "\u202e", "--json"],
        ["search", col, "", "--json"],
        ["search", col, "q" * 200_000, "--k", "3", "--json"],
        ["search", col, "\x1b[31mred\x00", "--lang", "en,,zz,\u202e", "--json"],
        ["search", col, "q", "--k", "0", "--json"],
        ["search", col, "q", "--k", "-1", "--json"],
        ["search", col, "q", "--k", str(10**12), "--json"],
        ["search", col, "q", "--model", "nope", "--json"],
        ["rebuild", col, "--index-type", "IVF99999,PQ7", "--json"],
        ["rebuild", col, "--index-type", "hnsw", "--hnsw-m", "0", "--json"],
        ["rebuild", col, "--model", "nope", "--json"],
        ["rebuild", col, "--backend", "quantum", "--json"],
        ["rebuild", col, "--nprobe", "-3", "--index-type", "ivfpq", "--json"],
        ["export", col, "--out", col + "/collection.db", "--json"],
        ["export", col, "--out", col + "/collection.json", "--json"],
        ["export", col, "--out", str(f["dir.jsonl"]), "--json"],
        ["export", col, "--out", "/proc/self/status", "--json"],
        ["export", col, "--out", str(w["root"] / "no" / "such" / "\x00x"), "--json"],
        ["export", col, "--json"],
        ["verify", col, "--repair", "--json"],
        ["info", col, "--threads", "0", "--json"],
    ]
    new = str(w["root"] / "new-col")
    for url in (
        "sqlite:///:memory:",
        "garbage",
        "sqlite:////proc/self/status",
        "mysql://u:p@127.0.0.1:1/x",
        "sqlite:///" + str(f["ok.jsonl"]),
    ):
        cases.append(["create", new, "--model", str(w["model"]), "--db-url", url, "--json", *Q])
    for model in (
        "/etc",
        str(f["ok.jsonl"]),
        "pkg:",
        "pkg:../../etc",
        "../../../etc/passwd",
        "a/b/c/d",
        "\x00",
    ):
        cases.append(["create", new, "--model", model, "--json", *Q])
    for extra in (
        ["--index-type", "Flat;rm -rf /"],
        ["--chunk-tokens", "0"],
        ["--chunk-overlap", "-1"],
        ["--max-chars", "-1"],
        ["--vector-store", "pinecone"],
        ["--vector-store", "milvus", "--milvus-uri", "/proc/self/status.db"],
        ["--vector-store", "milvus", "--milvus-uri", "http://u:p@host:1"],
        ["--backend", "a=b=c"],
    ):
        cases.append(["create", new, "--model", str(w["model"]), *extra, "--json", *Q])
    cases.append(["create", col, "--model", str(w["model"]), "--json", *Q])
    cases.append(["create", str(w["root"] / "files"), "--model", str(w["model"]), "--json", *Q])
    return cases


def test_every_indexer_command_against_hostile_input(world):
    from indexer.cli import COMMANDS

    cases = indexer_cases(world)
    assert {c[0] for c in cases} == set(COMMANDS)
    files_before = snapshot(world["root"] / "files")
    for argv in cases:
        col_before = snapshot(world["col"])
        stdin = world["files"]["binary.jsonl"].read_bytes() if "-" in argv else b""
        rc = check(indexer_main, argv, stdin)
        assert snapshot(world["root"] / "files") == files_before, argv
        if argv[0] in WRITERS or "--repair" in argv:
            assert indexer_main(["verify", str(world["col"]), "-q"]) == 0, argv
        else:
            assert snapshot(world["col"]) == col_before, argv
        assert rc != 0 or argv[0] != "create" or argv[1] != str(world["col"]), argv
    assert not (world["root"] / "new-col").exists()  # no create above could succeed


def distill_cases(w) -> list[list[str]]:
    f, model, root = w["files"], str(w["model"]), w["root"]
    out = str(root / "distill-out")
    cases: list[list[str]] = [
        ["models", "/etc", "pkg:nope", str(f["ok.jsonl"])],
        ["models", "\x00"],
        ["export", model],  # nothing asked for: a usage error
        ["export", "/etc", "--onnx"],
        ["export", str(f["dir.jsonl"]), "--onnx"],
        ["export", str(w["col"]), "--onnx"],
        ["backends", "/etc", "--json"],
        ["backends", model, "--queries", str(f["binary.jsonl"]), "--json"],
        ["backends", model, "--queries", str(f["deep.jsonl"]), "--json"],
        ["backends", model, "--queries-n", "0", "--json"],
        ["untrim", model, "--out", str(root / "files")],  # a folder of the user's: refused
        ["untrim", model, "--out", str(w["col"])],
        ["untrim", str(f["ok.jsonl"]), "--out", out],
        ["untrim", model, "--out", out],  # not a student
        ["untrim", model, "--out", out, "--extra-rows", "-1"],
        ["evaluate", "--model", model, "--no-cost", "--out", out],  # nothing to evaluate
        ["evaluate", "--model", model, "--bitext", str(f["odd.tsv"]), "--no-cost", "--out", out],
        ["evaluate", "--model", model, "--bitext", str(f["deep.jsonl"]), "--no-cost", "--out", out],
        ["evaluate", "--model", model, "--bitext", str(f["binary.jsonl"]), "--no-cost", "--out", out],
        ["evaluate", "--model", model, "--sts", str(f["sts.tsv"]), "--no-cost", "--out", out],
        ["evaluate", "--model", model, "--sts", str(f["dir.jsonl"]), "--no-cost", "--out", out],
        ["evaluate", "--model", model, "--retrieval", "queries=x", "--no-cost", "--out", out],
        ["evaluate", "--model", "/etc", "--sts", str(f["sts.tsv"]), "--no-cost", "--out", out],
        ["evaluate", "--model", "a=b=c", "--suite", "quick", "--no-cost", "--out", str(w["col"])],
        ["run", "--config", str(f["config.toml"])],
        ["run", "--config", str(f["deep.toml"])],
        ["run", "--config", str(f["binary.jsonl"])],
        ["run", "--config", str(f["dir.jsonl"])],
        ["run", "--config", "no-such-preset"],
        ["run", "--config", "offline", "--stage1.steps=many", "--print-config"],
        ["run", "--config", "offline", "--nosuchkey=1", "--print-config"],
        ["run", "--config", "offline", "--print-config"],
        ["run", f"--out_dir={root / 'files'}"],
        ["run", f"--out_dir={w['col']}"],
        ["frobnicate"],
        ["evaluate"],
    ]
    return cases


def test_every_distill_command_against_hostile_input(world):
    from distill.cli import COMMANDS

    cases = distill_cases(world)
    assert {c[0] for c in cases} >= set(COMMANDS)
    before = snapshot(world["root"])
    for argv in cases:
        check(distill_main, argv)
        assert snapshot(world["root"]) == before, argv
    assert not (world["root"] / "distill-out").exists()
