"""One writer at a time: exclusive `flock`s on the collection directory and on `DIR/write.lock`.

The kernel releases the locks when the holder exits, however it exits (SIGKILL included), so a
crashed writer never leaves a stale lock. The lock that counts is the one on the directory itself:
deleting or replacing `write.lock` while a writer runs cannot let a second writer in (a lock on a
deleted file guards nothing). `write.lock` is locked too, for writers of earlier versions, and
records who holds the lock for the message the second writer gets. It is opened without following
symbolic links, so a link planted there cannot make a writer truncate another file.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from indexer.errors import CollectionLockedError, IndexerError, ReadOnlyError

POLL = 0.05  # seconds between attempts while waiting for another writer


def _printable(value: object, limit: int = 200) -> str:
    """A holder field from write.lock, safe to print (the file may hold anything)."""
    text = str(value)[:limit]
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class WriteLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fds: tuple[int, int] | None = None  # (directory, write.lock)
        self._depth = 0

    @property
    def held(self) -> bool:
        return self._fds is not None

    def holder(self) -> dict:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return {}
        try:
            info = json.loads(os.read(fd, 4096) or b"{}")
        except ValueError:
            return {}
        finally:
            os.close(fd)
        return info if isinstance(info, dict) else {}

    def _open_dir(self) -> int:
        try:
            return os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise ReadOnlyError(f"cannot open {self.path.parent} to lock it ({exc.strerror})") from None

    def _open_file(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise IndexerError(
                    f"{self.path} is a symbolic link; a writer will not write through it: remove it (it holds "
                    "no data) and run the command again"
                ) from None
            raise ReadOnlyError(
                f"cannot write {self.path} ({exc.strerror}): the collection is read-only for this user; "
                "search, info, verify and export work without writing"
            ) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise IndexerError(
                f"{self.path} is not a regular file: remove it (it holds no data) and run the command again"
            )
        return fd

    def _locked_message(self) -> str:
        info = self.holder()
        who = (
            f"process {_printable(info.get('pid', '?'))} ({_printable(info.get('command', '?'))}, "
            f"since {_printable(info.get('since', '?'))})"
        )
        return (
            f"{self.path.parent} is being written by {who}; one writer at a time: wait for it to finish "
            "(searching it meanwhile is fine)"
        )

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock (re-entrant within this object); wait up to `timeout` seconds in all."""
        if self._fds is not None:
            self._depth += 1
            return
        deadline = time.monotonic() + max(timeout, 0.0)
        dfd = self._open_dir()
        ffd = None
        try:
            self._wait(dfd, deadline)
            ffd = self._open_file()
            self._wait(ffd, deadline)
        except BaseException:
            os.close(dfd)
            if ffd is not None:
                os.close(ffd)
            raise
        info = {
            "pid": os.getpid(),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4])),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(ffd, 0)
        os.pwrite(ffd, json.dumps(info).encode(), 0)
        self._fds, self._depth = (dfd, ffd), 1

    def _wait(self, fd: int, deadline: float) -> None:
        tries = 0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                tries += 1
                # One retry even without a timeout: `verify` probes the lock for an instant.
                if time.monotonic() >= deadline and tries > 1:
                    raise CollectionLockedError(self._locked_message()) from None
                time.sleep(POLL)

    def release(self) -> None:
        if self._fds is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        (dfd, ffd), self._fds = self._fds, None
        try:
            os.ftruncate(ffd, 0)
        finally:
            os.close(ffd)  # closing releases the flocks
            os.close(dfd)

    def is_locked_elsewhere(self) -> bool:
        """True when another process holds the lock (probed with a shared lock on the directory)."""
        if self._fds is not None:
            return False
        try:
            fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also drops the probe's lock

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
