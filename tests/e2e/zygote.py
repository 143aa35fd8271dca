"""Start `python -m bot` processes in milliseconds: fork them from a process that has already
imported the bot.

Importing the bot (python-telegram-bot, SQLAlchemy, tweepy, pydantic, Alembic …) costs about
1.2 s of CPU; the end-to-end tests start the bot some two hundred times, which on two cores was
a third of the suite's CPU. Each test worker therefore keeps one *zygote*: a Python process
that imports the bot once and then, for every start, forks a child that sets the test's
environment, working directory and log file and runs `bot.__main__.main()`, exactly what
`python -m bot run` runs after its imports. The child is a real, separate process: it is
signalled, killed with -9 and waited for like any other.

The child is forked twice so that it is re-parented to the test worker, which marks itself a
*child subreaper* (Linux `PR_SET_CHILD_SUBREAPER`); the worker then waits for it like its own
child (`os.waitpid` through a pidfd, no thread per process). `tests/e2e/test_startup.py`
still runs the real `python -m bot` from scratch, imports included.

Run as a module (`python -m tests.e2e.zygote`): reads one JSON request a line on stdin
(`argv`, `env`, `cwd`, `log`) and answers one JSON line on stdout (`pid`, or `error`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PR_SET_CHILD_SUBREAPER = 36


# --------------------------------------------------------------------------- the zygote


def _serve() -> None:
    """The zygote's loop: import the bot, then fork one child per request."""
    before = dict(os.environ)
    import bot.__main__
    import bot.app
    import storage.migrate  # noqa: F401 - SQLite is migrated at start

    # What importing the bot put into the environment (PTB_TIMEDELTA) stays in every child.
    imported_env = {k: v for k, v in os.environ.items() if before.get(k) != v}
    # The answers go to a copy of stdout; anything else printed goes to stderr.
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    while line := sys.stdin.readline():
        request = json.loads(line)
        try:
            pid = _spawn(request, imported_env, bot.__main__.main)
            protocol_out.write(json.dumps({"pid": pid}) + "\n")
        except Exception as exc:
            protocol_out.write(json.dumps({"error": repr(exc)}) + "\n")


def _spawn(request: dict[str, Any], imported_env: dict[str, str], main: Any) -> int:
    """Fork twice (the middle process exits at once) and return the grandchild's pid."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # the middle process
        try:
            os.close(read_end)
            child = os.fork()
            if child == 0:
                os.close(write_end)
                _become_bot(request, imported_env, main)  # never returns
            os.write(write_end, str(child).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(middle, 0)
    if not answer:
        raise RuntimeError("the middle process died before forking the bot")
    return int(answer)


def _become_bot(request: dict[str, Any], imported_env: dict[str, str], main: Any) -> None:
    """In the forked child: the test's files, directory and environment, then the bot."""
    code = 1
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
            if fd > 2:
                with contextlib.suppress(OSError):
                    os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({**request["env"], **imported_env})
        sys.argv = ["python -m bot", *request["argv"]]
        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


# --------------------------------------------------------------------------- the test side


class ForkedBot:
    """A bot process re-parented to this test worker: `pid`, `returncode`, `send_signal`,
    `wait()` (the parts of `asyncio.subprocess.Process` the harness uses)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._ended = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._pidfd = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return  # not re-parented yet, or not ended: the pidfd stays readable
        self.returncode = os.waitstatus_to_exitcode(status)
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._ended.set()

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    async def wait(self) -> int:
        await self._ended.wait()
        assert self.returncode is not None
        return self.returncode


class Zygote:
    """This worker's zygote process, started on first use."""

    _lock = threading.Lock()
    _process: subprocess.Popen[str] | None = None

    @classmethod
    def _started(cls) -> subprocess.Popen[str]:
        if cls._process is None or cls._process.poll() is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
            cls._process = subprocess.Popen(
                [sys.executable, "-u", "-m", "tests.e2e.zygote"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            atexit.register(cls.close)
        return cls._process

    @classmethod
    def spawn(cls, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> ForkedBot:
        """Fork `python -m bot ARGV` with this environment, directory and log file."""
        with cls._lock:
            process = cls._started()
            assert process.stdin is not None and process.stdout is not None
            request = {"argv": argv, "env": env, "cwd": str(cwd), "log": str(log)}
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline() or '{"error": "the zygote died"}')
        if "error" in answer:
            raise RuntimeError(f"could not start the bot: {answer['error']}")
        return ForkedBot(int(answer["pid"]))

    @classmethod
    def close(cls) -> None:
        process, cls._process = cls._process, None
        if process is not None and process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    _serve()
