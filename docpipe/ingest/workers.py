"""A pool of parser processes that a hung, crashing or memory-hungry parser cannot take down.

Each worker is its own process group (so LibreOffice or Tesseract children die with it),
parses one file at a time, and tells the parent which engine it is on. The parent kills a
worker that passes the per-file timeout or memory cap, restarts it, and hands the file's
remaining engines to the next free worker.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

import psutil

from docpipe.config import IngestConfig
from docpipe.runtime import offline

# Set in every worker before any parser is imported, with the offline switches (no model hub, no
# analytics pings): one BLAS/OpenMP thread per worker (the pool is the parallelism).
WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OMP_THREAD_LIMIT": "1",  # tesseract
    "TOKENIZERS_PARALLELISM": "false",
}
_POLL_S = 0.2


@dataclass
class Task:
    key: int
    path: Path
    fmt: str | None = None  # known once a worker has sniffed the file
    start_at: int = 0  # index of the first engine to try (after a killed attempt)
    attempts: list[str] = field(default_factory=list)
    started: float | None = None  # when a worker first took it


@dataclass
class _Worker:
    process: mp.Process
    conn: Connection
    task: Task | None = None
    engine: tuple[int, str] | None = None
    started: float = 0.0


def _worker_main(conn: Connection, cfg_json: str, log_path: str | None) -> None:
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if log_path:  # parsers and the programs they start talk on stdout/stderr: keep it off the screen
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
    offline.apply()
    for name, value in WORKER_ENV.items():
        os.environ.setdefault(name, value)
    from docpipe.ingest.parse import parse_file, run_engines  # after the environment is set

    cfg = IngestConfig.model_validate_json(cfg_json)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        path, fmt, start_at, attempts = message
        on_engine = lambda index, name, fmt: conn.send(("engine", index, name, fmt))  # noqa: E731
        if fmt:
            result = run_engines(Path(path), fmt, cfg, start_at, on_engine, attempts)
        else:
            result = parse_file(Path(path), cfg, on_engine=on_engine)
        conn.send(("done", result))


class ParserPool:
    """Runs `parse_file` over many files in `size` supervised processes; their output goes to `log_path`."""

    def __init__(self, cfg: IngestConfig, size: int, log_path: Path | None = None):
        self.cfg = cfg
        self.size = size
        self.log_path = log_path
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []

    def run(self, tasks: Iterable[Task], on_result: Callable[[Task, dict], None]) -> None:
        queue = deque(tasks)
        self._workers = [self._spawn() for _ in range(min(self.size, len(queue)) or 1)]
        try:
            while queue or any(w.task for w in self._workers):
                for index, worker in enumerate(self._workers):
                    if worker.task is None and queue:
                        if not worker.process.is_alive():
                            self._kill(worker)
                            self._workers[index] = worker = self._spawn()
                        self._assign(worker, queue.popleft())
                ready = wait([w.conn for w in self._workers if w.task], timeout=_POLL_S)
                for worker in [w for w in self._workers if w.conn in ready]:
                    self._receive(worker, queue, on_result)
                self._enforce_limits(queue, on_result)
        finally:
            self.close()

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                self._kill(worker)
        self._workers = []

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main, args=(child, self.cfg.model_dump_json(), self.log_path and str(self.log_path)), daemon=True
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def _assign(self, worker: _Worker, task: Task) -> None:
        worker.task, worker.engine, worker.started = task, None, time.monotonic()
        task.started = task.started or worker.started
        worker.conn.send((str(task.path), task.fmt, task.start_at, task.attempts))

    def _receive(self, worker: _Worker, queue: deque, on_result: Callable[[Task, dict], None]) -> None:
        result = self._drain(worker)
        if result is not None:
            task, worker.task = worker.task, None
            on_result(task, result)
        elif not worker.process.is_alive() or worker.conn.closed:
            self._fail(worker, queue, on_result, f"parser process crashed (exit code {worker.process.exitcode})")

    def _drain(self, worker: _Worker) -> dict | None:
        """Read what the worker has said: engine changes, then perhaps its result."""
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "done":
                    return message[1]
                _, index, name, worker.task.fmt = message
                worker.engine = (index, name)
        except (EOFError, OSError):
            worker.process.join(1)
            worker.conn.close()
        return None

    def _enforce_limits(self, queue: deque, on_result: Callable[[Task, dict], None]) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker.task is None:
                continue
            if now - worker.started > self.cfg.timeout_s:
                self._fail(worker, queue, on_result, f"timed out after {self.cfg.timeout_s:g} s (parser killed)")
            elif (rss := _tree_rss(worker.process.pid)) > self.cfg.max_rss_mb * 2**20:
                self._fail(
                    worker, queue, on_result, f"used {rss / 2**20:,.0f} MB of memory, over max_rss_mb={self.cfg.max_rss_mb} (parser killed)"
                )
            elif not worker.process.is_alive():
                self._fail(worker, queue, on_result, f"parser process crashed (exit code {worker.process.exitcode})")

    def _fail(self, worker: _Worker, queue: deque, on_result: Callable[[Task, dict], None], reason: str) -> None:
        """Kill the worker; give the file's next engine a chance, or report the file failed."""
        if not worker.conn.closed and (result := self._drain(worker)) is not None:
            task, worker.task = worker.task, None  # the result beat the limit by a hair: keep it
            on_result(task, result)
            return
        task, engine = worker.task, worker.engine
        self._kill(worker)
        index = self._workers.index(worker)
        self._workers[index] = self._spawn()
        if task is None:
            return
        if engine is None:
            on_result(task, {"status": "failed", "reason": reason, "attempts": task.attempts})
            return
        attempts = [*task.attempts, f"{engine[1]}: {reason}"]
        queue.appendleft(Task(task.key, task.path, task.fmt, engine[0] + 1, attempts, task.started))

    def _kill(self, worker: _Worker) -> None:
        try:
            os.killpg(worker.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        worker.process.join(5)
        if not worker.conn.closed:
            worker.conn.close()


def _tree_rss(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        return proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.Error:
        return 0
