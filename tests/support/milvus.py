"""A real Milvus server for the tests: the `milvus` package's embedded standalone (2.3.x) in a temp dir.

One server per test session (`milvus_server` fixture, started on first use: ~8 s), on free ports,
with authentication on and a random root password, so every server test also exercises the
credentials path (MILVUS_TOKEN). Tests that need it are marked `milvus_server`; they skip with the
reason when the package is not installed (`pip install 'xlsearch[milvus-server]'`) or the server
does not start.
"""

from __future__ import annotations

import os
import time

import pytest

from benchmarks.milvus_server import EmbeddedMilvus

SKIP_INSTALL = "the embedded Milvus server is not installed: pip install 'xlsearch[milvus-server]'"
# Strong reads (every count, id listing and search of the store) wait for the next time tick: 50 ms
# instead of the default 200 makes the server tests ~4x faster at the cost of a little idle CPU.
TICK_MS = 50
URI_ENV = "XLSEARCH_TEST_MILVUS_URI"  # how the store_kind fixture hands the server to tests (and children)


STARTED: dict = {}  # what the session's server reported (for the terminal summary)


@pytest.fixture(scope="session")
def milvus_server():
    try:
        import milvus  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError:
        pytest.skip(SKIP_INSTALL)
    start, server = time.monotonic(), None
    try:
        server = EmbeddedMilvus(tick_ms=TICK_MS)
        server.start()
    except Exception as exc:
        detail = " ".join(f"{exc} {server.log_tail(300) if server else ''}".split())[:400]
        if server is not None:
            server.cleanup()
        pytest.skip(f"the embedded Milvus server did not start: {detail}")
    STARTED.update(version=server.version, uri=server.uri, start_s=time.monotonic() - start)
    yield server
    server.cleanup()


def summary_line() -> str | None:
    if not STARTED:
        return None
    return "Milvus server {version} ({uri}) started in {start_s:.1f} s for this session".format(**STARTED)


def use_server(monkeypatch, server: EmbeddedMilvus) -> None:
    """This test (and the processes it starts) reaches `server`: its URI and MILVUS_TOKEN in the env."""
    monkeypatch.setenv(URI_ENV, server.uri)
    monkeypatch.setenv("MILVUS_TOKEN", server.token)
    monkeypatch.delenv("MILVUS_USER", raising=False)
    monkeypatch.delenv("MILVUS_PASSWORD", raising=False)


def store_args(store_kind: str) -> dict:
    """Collection.create's arguments for a store of the `store_kind` fixture."""
    if store_kind == "milvus-server":
        return {"vector_store": "milvus", "milvus_uri": os.environ[URI_ENV]}
    return {"vector_store": store_kind}


def server_client():
    """A client of the server this test uses (credentials from the environment, as the store's)."""
    from pymilvus import MilvusClient

    return MilvusClient(uri=os.environ[URI_ENV], token=os.environ["MILVUS_TOKEN"], timeout=10)
