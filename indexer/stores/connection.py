"""One Milvus client per open collection: Milvus Lite (a local file) or a server/cluster URI.

Milvus Lite quirks handled here: it is an in-process server over a directory that one process at a
time may hold (an advisory lock on `DIR/milvus.db/LOCK`), and it keeps serving until the process
releases it. So a collection holds it only for one operation (a write, a search, a verify) and
releases it afterwards: another process (the app beside a CLI `add`) waits up to LITE_WAIT seconds
for its turn instead of failing at once. Credentials for a server come from the environment only.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from indexer.errors import IndexCorruptError, IndexerError
from indexer.layout import MILVUS_LITE as LITE_FILE  # the default Lite "file" (a directory) in DIR

log = logging.getLogger("indexer")

LITE_WAIT = 30.0  # seconds to wait for another process that holds the Lite file
SERVER_TIMEOUT = 10.0  # seconds to connect to a server
INSTALL_HINT = "the milvus vector store needs pymilvus and milvus-lite: pip install 'xlsearch[milvus]'"

_lite_users: dict[str, int] = {}  # Lite path -> sessions open in this process (all collections)
_lite_mutex = threading.Lock()


def require_pymilvus():
    try:
        import pymilvus
    except ImportError:
        raise IndexerError(INSTALL_HINT) from None
    return pymilvus


def is_lite(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


def check_uri(uri: str) -> str:
    """A Lite path (ending in .db) or a server URL without credentials; the form that is recorded."""
    uri = uri.strip()
    if not uri:
        raise IndexerError("--milvus-uri is empty")
    if is_lite(uri):
        if not uri.endswith(".db"):
            raise IndexerError(
                f"--milvus-uri {uri!r} is neither a server URL (http://host:19530) nor a Milvus Lite file (NAME.db)"
            )
        return str(Path(uri).expanduser().resolve())
    parts = urlsplit(uri)
    if parts.username or parts.password or "token=" in parts.query:
        raise IndexerError(
            "--milvus-uri must not carry credentials (they would be recorded in collection.json): "
            "set MILVUS_TOKEN, or MILVUS_USER and MILVUS_PASSWORD, in the environment instead"
        )
    if not parts.hostname:
        raise IndexerError(f"--milvus-uri {uri!r} names no host")
    return uri


def credentials() -> dict[str, str]:
    """Client arguments from the environment: MILVUS_TOKEN, or MILVUS_USER + MILVUS_PASSWORD."""
    token = os.environ.get("MILVUS_TOKEN")
    if token:
        return {"token": token}
    user, password = os.environ.get("MILVUS_USER"), os.environ.get("MILVUS_PASSWORD")
    if user:
        return {"user": user, "password": password or ""}
    return {}


class MilvusConnection:
    """The client of one open collection; `session()` brackets each operation."""

    def __init__(self, uri: str | None, collection_dir: Path, read_only: bool = True) -> None:
        self.uri = uri or str(collection_dir / LITE_FILE)
        # Damaged Lite data of the collection's own (DIR/milvus.db) is moved aside by a writer and
        # rebuilt from the stored vectors; a reader reports it, as for a damaged FAISS file.
        self.repairs = not read_only and uri is None
        self.lite = is_lite(self.uri)
        self._client = None
        self._loaded: set[str] = set()  # collections loaded for search in this client's life
        self._depth = 0
        self._mutex = threading.RLock()

    @contextmanager
    def session(self) -> Iterator[None]:
        with self._mutex:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self.lite:
                    self._release()

    def client(self):
        """The client, connected on first use (inside a session, or for the caller's one call)."""
        with self._mutex:
            if self._client is None:
                self._client, self._loaded = self._connect(), set()
            return self._client

    def ensure_loaded(self, name: str) -> None:
        """Milvus searches only loaded collections; Milvus Lite releases them when it is reopened,
        a server after a restart (checked each time: a round trip without the wait of a Strong read)."""
        if name in self._loaded and self.lite:
            return

        def load(c) -> None:
            state = str(c.get_load_state(name).get("state", ""))
            if not state.endswith("Loaded") or state.endswith("NotLoad"):
                c.load_collection(name)

        self.call(f"load collection {name}", load)
        self._loaded.add(name)

    def _connect(self):
        require_pymilvus()
        # They log each failed call with a traceback (we raise one line); grpc._server is Milvus
        # Lite's in-process server, which logs the calls it does not implement (AllocTimestamp).
        for name in ("pymilvus", "milvus_lite", "grpc._server"):
            quiet = logging.getLogger(name)
            if quiet.level in (logging.NOTSET, logging.WARNING):  # their defaults, not the user's choice
                quiet.setLevel(logging.CRITICAL)
        from pymilvus import MilvusClient

        if not self.lite:
            try:
                return MilvusClient(uri=self.uri, timeout=SERVER_TIMEOUT, **credentials())
            except Exception as exc:  # pymilvus raises several kinds for an unreachable server
                raise IndexerError(f"cannot connect to Milvus at {self.uri}: {_reason(exc)}") from None
        try:
            import milvus_lite  # noqa: F401 - pymilvus needs it for a .db URI
        except ImportError:
            raise IndexerError(INSTALL_HINT) from None
        client = self._open_lite(MilvusClient)
        try:
            client.list_collections()  # damaged data fails here, not in the middle of an operation
        except Exception as exc:
            self._close_lite(client)
            if not self.repairs:
                raise IndexCorruptError(
                    f"the Milvus Lite data {self.uri} is damaged ({_reason(exc)}); `indexer verify {Path(self.uri).parent} --repair` "
                    "rebuilds it from the stored vectors"
                ) from None
            aside = f"{self.uri}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
            os.rename(self.uri, aside)
            log.warning("the Milvus Lite data %s was damaged (%s): moved to %s, rebuilt from the stored vectors",
                        self.uri, _reason(exc), aside)  # fmt: skip
            client = self._open_lite(MilvusClient)
        return client

    def _open_lite(self, client_class):
        path = Path(self.uri)
        if path.exists() and not path.is_dir():
            raise IndexerError(
                f"{self.uri} is a file, not Milvus Lite data (Milvus Lite keeps its data in a directory); "
                "give another --milvus-uri NAME.db"
            )
        deadline = time.monotonic() + LITE_WAIT
        while True:
            with _lite_mutex:
                try:
                    client = client_class(uri=self.uri)
                    _lite_users[self.uri] = _lite_users.get(self.uri, 0) + 1
                    return client
                except Exception as exc:
                    if not _lite_locked(path):  # not another process: waiting would not help
                        where = "" if path.parent.is_dir() else f" ({path.parent} does not exist)"
                        raise IndexerError(
                            f"cannot open the Milvus Lite data {self.uri}{where}: {_reason(exc)}"
                        ) from None
                    if time.monotonic() > deadline:
                        raise IndexerError(
                            f"the Milvus Lite data {self.uri} is in use by another process (waited {LITE_WAIT:.0f} s); "
                            "Milvus Lite serves one process at a time: wait for the other command, or use a "
                            "Milvus server (--milvus-uri http://host:19530) for concurrent readers and writers"
                        ) from None
            time.sleep(0.1)

    def _close_lite(self, client) -> None:
        self._client = client
        self._release()

    def _release(self) -> None:
        if self._client is None:
            return
        client, self._client, self._loaded = self._client, None, set()
        try:
            client.close()
        except Exception as exc:  # closing must not hide the operation's own result
            log.debug("closing the Milvus client: %s", exc)
        with _lite_mutex:
            _lite_users[self.uri] = _lite_users.get(self.uri, 1) - 1
            if _lite_users[self.uri] <= 0:  # the last user in this process: let other processes in
                del _lite_users[self.uri]
                from milvus_lite.server_manager import server_manager_instance

                release = getattr(server_manager_instance, "release_server", None)  # absent before 2.4.x
                if release is not None:
                    release(self.uri)

    def call(self, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """`fn(client, ...)`, with Milvus errors turned into one line naming the operation."""
        client = self.client()
        try:
            return fn(client, *args, **kwargs)
        except IndexerError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("pymilvus", "grpc", "milvus_lite")):
                raise IndexerError(f"Milvus ({self.masked()}) failed to {what}: {_reason(exc)}") from None
            raise

    def masked(self) -> str:
        return self.uri

    def close(self) -> None:
        with self._mutex:
            if self.lite:
                self._release()
            elif self._client is not None:
                client, self._client = self._client, None
                client.close()


def _lite_locked(path: Path) -> bool:
    """True while another process holds Milvus Lite's advisory lock on `path` (`path/LOCK`)."""
    import fcntl

    try:
        fd = os.open(path / "LOCK", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]
