"""Helpers shared by the indexer tests: real documents, tiny encoders, a throwaway PostgreSQL server."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from distill.documents import Document

REPO = Path(__file__).resolve().parents[2]


def xquad_docs(
    shared: Path, paragraphs: range = range(8), langs: tuple[str, ...] = ("en", "de", "es", "zh")
) -> list[Document]:
    """Real multilingual paragraphs (the demo corpus): `paragraphs` x `langs` documents."""
    wanted = {f"xquad.{p:03d}.{lang}" for p in paragraphs for lang in langs}
    docs = []
    with (shared / "corpus" / "xquad_paragraphs.jsonl").open(encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            if o["id"] in wanted:
                docs.append(
                    Document(
                        id=o["id"],
                        lang=o["lang"],
                        text=o["text"],
                        title=o["title"],
                        metadata={"parallel_id": o["parallel_id"]},
                    )
                )
    return docs


def ntrex_docs(shared: Path, n: int) -> list[Document]:
    """`n` short real documents (NTREX sentences in many languages), one chunk each."""
    from distill.langs import is_known_lang

    docs = []
    with (shared / "parallel" / "ntrex128.jsonl").open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            o = json.loads(line)
            if is_known_lang(o["lang"]) and o["text"].strip():
                docs.append(Document(id=f"ntrex.{i}", lang=o["lang"], text=o["text"], title=""))
            if len(docs) >= n:
                break
    return docs


def write_jsonl(path: Path, docs: list[Document]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(
                json.dumps(
                    {"id": d.id, "lang": d.lang, "title": d.title, "text": d.text, **d.metadata},
                    ensure_ascii=False,
                )
                + "\n"
            )
    return path


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["HF_HUB_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


# ---------------------------------------------------------------------------------------------
# PostgreSQL: a real server in a temporary directory, started with the Debian binaries.


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """initdb + pg_ctl in a temp dir, listening on a Unix socket only; as root, runs as `postgres`."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="xl-pg-"))
        self.data = self.root / "data"
        self.user_prefix: list[str] = []
        if os.geteuid() == 0:
            user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if user is None or shutil.which("runuser") is None:
                raise RuntimeError(
                    "running as root and no 'postgres' user or runuser to start PostgreSQL with"
                )
            pw = pwd.getpwnam(user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.user_prefix = ["runuser", "-u", user, "--"]
        with socket.socket() as s:  # a port number only names the socket file; nothing listens on TCP
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.user_prefix, *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        )
        opts = f"-c listen_addresses='' -k {self.root} -p {self.port} -c fsync=on"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}&port={self.port}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            host=str(self.root), port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="session")
def postgres_server():
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin; Debian package 'postgresql')"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    server = PostgresServer(bindir)
    try:
        server.start()
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        shutil.rmtree(server.root, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL from {bindir}: {detail.strip()[:300]}")
    yield server
    server.stop()


_db_counter = iter(range(1_000_000))


def fresh_postgres_url(server: PostgresServer) -> str:
    return server.create_database(f"xl_{os.getpid()}_{next(_db_counter)}_{int(time.time())}")


def damage_store(path: Path, model_info: dict, store_kind: str) -> str:
    """Break one model's committed store behind the collection's back (the collection must be closed):
    truncate its FAISS index file, or drop its Milvus collection. Returns a word verify reports."""
    if store_kind == "faiss":
        index_file = path / "indexes" / model_info["index_file"]
        index_file.write_bytes(index_file.read_bytes()[:100])
        return "truncated"
    if store_kind == "milvus-server":
        from support.milvus import server_client

        client = server_client()
        client.drop_collection(model_info["index_file"])
        client.close()
        return "missing"
    from milvus_lite.server_manager import server_manager_instance
    from pymilvus import MilvusClient

    lite = str(path / "milvus.db")
    client = MilvusClient(lite)
    client.drop_collection(model_info["index_file"])
    client.close()
    server_manager_instance.release_server(lite)
    return "missing"
