"""The machine-wide shared embedded LLM: one ``llama-server`` per machine and user, shared by every process that
holds a lease (``envgen run``s at once, test sessions), stopped about a second after the last lease ends.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from .embedded import EmbeddedLLM, EmbeddedLLMError, alive, cache_dir, stop_pid

SHARED_DIR = "shared-llm-server"
SHARED_RECORD = "server.json"
SETUP_LOCK = "setup.lock"
USERS_LOCK = "users.lock"


def _lock(path: Path, mode: int) -> IO[bytes]:
    handle = path.open("ab")
    try:
        fcntl.flock(handle, mode)
    except BaseException:
        handle.close()
        raise
    return handle


def shared_dir() -> Path:
    """Where the shared server's keeper keeps its record, locks and log."""
    return cache_dir() / SHARED_DIR


class SharedEmbeddedLLM:
    """One embedded server per machine and user, shared by every process holding a lease (``envgen run``s at
    once, test sessions).

    A lease is a shared ``flock`` on ``users.lock``: the kernel drops it when its holder exits, even by SIGKILL.
    The first holder starts a keeper process (``python -m envgen.llm.shared keep DIR``) that runs the server
    and stops it about a second after the last lease is gone. Starting, joining and stopping all happen under
    an exclusive lock on ``setup.lock``, so a holder never sees its server vanish.
    """

    def __init__(self, directory: str | Path | None = None, ready_timeout_seconds: float = 120.0) -> None:
        self.directory = Path(directory) if directory is not None else shared_dir()
        self.ready_timeout_seconds = ready_timeout_seconds
        self.base_url: str | None = None
        self._lease: IO[bytes] | None = None

    def start(self) -> SharedEmbeddedLLM:
        """Join the running server, or start one; holds a lease until :meth:`stop`."""
        if self._lease is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        with _lock(self.directory / SETUP_LOCK, fcntl.LOCK_EX):
            record = _read_record(self.directory)
            if record is None:
                record = self._spawn_keeper()
            self._lease = _lock(self.directory / USERS_LOCK, fcntl.LOCK_SH)
        self.base_url = str(record["baseURL"])
        return self

    def _spawn_keeper(self) -> dict[str, object]:
        (self.directory / SHARED_RECORD).unlink(missing_ok=True)
        log_path = self.directory / "keeper.log"
        with log_path.open("wb") as log:
            keeper = subprocess.Popen(
                [sys.executable, "-m", __name__, "keep", str(self.directory)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives this process: the last lease ends it
            )
        deadline = time.monotonic() + self.ready_timeout_seconds
        while time.monotonic() < deadline:
            record = _read_record(self.directory)
            if record is not None:
                return record
            code = keeper.poll()
            if code is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise EmbeddedLLMError(f"the shared llama-server keeper exited with code {code}:\n{tail}")
            time.sleep(0.2)
        stop_pid(keeper.pid)
        raise EmbeddedLLMError(f"the shared llama-server did not start within {self.ready_timeout_seconds:.0f} s")

    def stop(self) -> None:
        """Give the lease back; the keeper stops the server once no lease is left."""
        if self._lease is not None:
            self._lease.close()
            self._lease = None

    def __enter__(self) -> SharedEmbeddedLLM:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _read_record(directory: Path) -> dict[str, object] | None:
    """The shared server's record, when its keeper is alive."""
    try:
        record = json.loads((directory / SHARED_RECORD).read_text())
        pid = int(record["keeperPid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if alive(pid) else None


def keep_shared(directory: Path, poll_seconds: float = 1.0) -> None:
    """The keeper: run the server, publish its URL, stop when no lease is held (``SharedEmbeddedLLM``)."""
    with EmbeddedLLM(state_dir=directory, ready_timeout_seconds=120.0) as llm:
        assert llm.process is not None
        record = {"keeperPid": os.getpid(), "serverPid": llm.process.pid, "baseURL": llm.base_url}
        (directory / SHARED_RECORD).write_text(json.dumps(record) + "\n")
        while llm.process.poll() is None:
            time.sleep(poll_seconds)
            with _lock(directory / SETUP_LOCK, fcntl.LOCK_EX):
                try:
                    unused = _lock(directory / USERS_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                unused.close()
                (directory / SHARED_RECORD).unlink(missing_ok=True)
                llm.stop()
                return
        (directory / SHARED_RECORD).unlink(missing_ok=True)


if __name__ == "__main__":  # the shared server's keeper: python -m envgen.llm.shared keep DIR
    if len(sys.argv) != 3 or sys.argv[1] != "keep":
        sys.exit("usage: python -m envgen.llm.shared keep DIR")
    keep_shared(Path(sys.argv[2]))
