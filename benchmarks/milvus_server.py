"""A throwaway local Milvus server: the `milvus` package's embedded standalone (2.3.x) in a temp dir.

For the benchmarks' server row and the tests' `milvus_server` fixture (pip install
'xlsearch[milvus-server]'). Every port is its own free one, authentication is on with a random
root password (so the credentials path is exercised too), and a restart keeps the URI.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedMilvus:
    """The embedded Milvus standalone on 127.0.0.1 with fixed free ports (so a restart keeps its URI)."""

    def __init__(self, tick_ms: int | None = None) -> None:
        """`tick_ms`: proxy.timeTickInterval (default 200 ms), what a Strong read waits for at most."""
        from milvus import MilvusServer, __version__

        self.package_version = __version__
        self.root = Path(tempfile.mkdtemp(prefix="xl-milvus-"))
        self.server = MilvusServer()
        self.server.set_base_dir(str(self.root))
        config = self.server.config
        # Every port its own free one (not the defaults' first free): other sessions' servers on
        # this machine pick from the same defaults.
        for key in [k for k in config.configurable_items if k.endswith("_port")]:
            config.set(key, _free_port())
        self._embedded_etcd_on_free_ports(config)
        config.set("authorization_enabled", True)
        if tick_ms:
            config.set("proxy.timeTickInterval", int(tick_ms))
        self.server.webservice_port = _free_port()
        self.port = config.get("proxy_port")
        self.uri = f"http://127.0.0.1:{self.port}"
        self.password = "Milvus"  # root's default; start() replaces it with a random one
        self.version = ""

    def _embedded_etcd_on_free_ports(self, config) -> None:
        """Milvus's embedded etcd listens on etcd's default ports (2379, 2380) unless given a config
        file, which the package's template has no key for: a second server on the machine would die."""
        client, peer = (f"http://127.0.0.1:{_free_port()}" for _ in range(2))
        etcd = self.root / "etcd.yaml"
        etcd.write_text(
            f"name: xl\ndata-dir: {self.root / 'data' / 'etcd.data'}\nlisten-client-urls: {client}\n"
            f"advertise-client-urls: {client}\nlisten-peer-urls: {peer}\n"
            f"initial-advertise-peer-urls: {peer}\ninitial-cluster: xl={peer}\n"
        )
        config.template_text = config.template_text.replace(
            "\netcd:\n", f"\netcd:\n  config:\n    path: {etcd}\n", 1
        )

    @property
    def token(self) -> str:
        return f"root:{self.password}"

    def start(self, timeout: float = 120.0) -> None:
        self.server.wait_started = lambda: None  # we wait ourselves, on the gRPC port itself
        self.server.start()
        from pymilvus import MilvusClient

        deadline, error = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.server.server_proc.poll() is not None:
                raise RuntimeError(f"the Milvus server exited with {self.server.server_proc.returncode}")
            try:
                client = MilvusClient(uri=self.uri, token=self.token, timeout=5)
                self.version = client.get_server_version()
                client.list_collections()
                break
            except Exception as exc:  # not up yet
                error = exc
                time.sleep(0.5)
        else:
            raise RuntimeError(
                f"the Milvus server did not answer on {self.uri} within {timeout:.0f} s: {error}"
            )
        if self.password == "Milvus":
            new = "xlS3cret-" + secrets.token_hex(8)
            client.update_password("root", self.password, new)
            self.password = new
        client.close()
        # A restart keeps these ports: the package would re-check them with a plain bind, which
        # fails on a port with connections in TIME_WAIT, and silently move to the next port.
        self.server.config.resolve_all_listen_ports = lambda: None

    def stop(self) -> None:
        self.server.stop()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n: int = 2000) -> str:
        logs = sorted((self.root / "logs").glob("milvus-std*.log"))
        return " ".join(p.read_text(errors="replace")[-n:] for p in logs)
