"""Feed bodies are read in worker processes, each read under a time budget.

feedparser is pure Python: in a thread it still holds the GIL the event loop needs (a
malformed 3 MB feed of tiny items cost 6 to 11 s of CPU, and cut the loop's ticks by more than
half), and a thread cannot be stopped. So a few processes (`FeedReaders`, two by default)
read bodies, one at a time each, at a lower priority than the bot. A read may take `seconds`
of CPU: the worker's own timer (ITIMER_PROF) interrupts it there, whatever the machine's load,
and the feed is reported as too complex to read (FeedTooComplex). Should a read outlive a
wall-clock limit anyway (3 × `seconds` + 5 s: a worker starved, or a parser that swallowed
the interruption), it is abandoned and its process killed. A process that dies on a body
counts the same, and a worker that went over budget is not used again (the next read starts
a fresh one). A worker also stops itself some seconds after the wall-clock limit (an alarm),
should the bot be gone, and when its input closes.

Protocol on a worker's stdin and stdout: frames, each a 4-byte big-endian length and that many
bytes. A worker that has started (its imports done: not a read's time) sends an empty frame.
A request is two frames, a JSON header (url, content_type, discover, max_entries,
seconds, wall_seconds) and the body; the reply is one JSON frame: `{"ok": ...}` (what
`bot.sources.feed_parse.read_body` returns) or `{"error": code, "message": ...}`, with the
CPU seconds the read took (`cpu`).

    python -m bot.sources.feed_worker   # a worker: what FeedReaders starts
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

from bot.sources.feed_errors import FeedTooComplex, MalformedFeed, NotAFeed

log = logging.getLogger(__name__)

READERS = 2  # the machine's cores: more would only queue for them
PARSE_SECONDS = 10.0  # of CPU, for one body
WALL_FACTOR, WALL_MARGIN = 3.0, 5.0  # the wall-clock limit of a read: 3 × its CPU budget + 5 s
GRACE_SECONDS = 5  # a worker's own alarm, past the wall-clock limit: an orphan stops by itself
INTERRUPT_EVERY = 0.1  # CPU seconds between interruptions, once over budget
NICENESS = 5  # the bot's event loop comes first when the cores are busy
MEMORY_LIMIT = 2 * 1024**3  # address space of a worker: a blow-up fails there, not the machine
MAX_REPLY = 256 * 1024 * 1024
STARTUP_SECONDS = 60.0  # for a worker to import what it needs, on a very busy machine
ROOT = Path(__file__).resolve().parents[2]  # where `bot` is imported from, for the workers
ERRORS: dict[str, type[MalformedFeed] | type[NotAFeed]] = {
    "malformed": MalformedFeed,
    "not_a_feed": NotAFeed,
}


class _Reader:
    """One worker process; it reads one body at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> _Reader:
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *([path] if path else [])])}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.sources.feed_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        return cls(process)

    async def ready(self) -> None:
        """Wait for the worker to say it has started."""
        assert self.process.stdout is not None
        async with asyncio.timeout(STARTUP_SECONDS):
            size = int.from_bytes(await self.process.stdout.readexactly(4), "big")
        if size:
            raise ConnectionError("a feed reader said something else than that it started")

    async def call(self, header: bytes, body: bytes) -> bytes:
        """Send one request; its reply."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(len(header).to_bytes(4, "big") + header + len(body).to_bytes(4, "big"))
        stdin.write(body)
        await stdin.drain()
        size = int.from_bytes(await stdout.readexactly(4), "big")
        if size > MAX_REPLY:
            raise ConnectionError(f"a reply of {size} bytes")
        return await stdout.readexactly(size)

    def kill(self) -> None:
        """Stop it at once (it may be in the middle of a read)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def close(self) -> None:
        """Let it end (its input closes), or kill it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            async with asyncio.timeout(2):
                await self.process.wait()
        except TimeoutError:
            self.kill()
            await self.process.wait()


class FeedReaders:
    """Worker processes that read feed bodies (`read`), started on first use."""

    def __init__(
        self,
        *,
        size: int = READERS,
        seconds: float = PARSE_SECONDS,
        wall_seconds: float | None = None,
    ) -> None:
        self.seconds = seconds
        self.wall_seconds = wall_seconds or seconds * WALL_FACTOR + WALL_MARGIN
        self._slots = asyncio.Semaphore(max(1, size))
        self._idle: list[_Reader] = []
        self._started: list[_Reader] = []
        self.cpu_seconds = 0.0  # what the workers reported, reads that finished only
        self.abandoned = 0  # reads that outlived the budget, or whose worker died

    async def read(
        self, body: bytes, *, url: str, content_type: str, discover: bool, max_entries: int
    ) -> dict[str, Any]:
        """What `bot.sources.feed_parse.read_body` makes of `body`, read in a worker. Raises
        NotAFeed, MalformedFeed, or FeedTooComplex when the read takes more than `seconds` of
        CPU, or longer than `wall_seconds`, or its worker dies."""
        header = json.dumps(
            {
                "url": url,
                "content_type": content_type,
                "discover": discover,
                "max_entries": max_entries,
                "seconds": self.seconds,
                "wall_seconds": self.wall_seconds,
            }
        ).encode()
        async with self._slots:
            reader = self._idle.pop() if self._idle else await self._start()
            reusable = False
            try:
                async with asyncio.timeout(self.wall_seconds):
                    raw = await reader.call(header, body)
                reply: dict[str, Any] = json.loads(raw)
                # A worker interrupted in the middle of a read is not trusted with another.
                reusable = reply.get("error") != "too_complex"
            except TimeoutError:
                self.abandoned += 1
                raise FeedTooComplex(
                    f"not read within {self.wall_seconds:g} s", seconds=self.seconds
                ) from None
            except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
                self.abandoned += 1
                log.warning(
                    "a feed reader stopped while reading %s (%s, exit status %s)",
                    url.partition("?")[0],
                    type(exc).__name__,
                    reader.process.returncode,
                )
                raise FeedTooComplex("its reader stopped", seconds=self.seconds) from None
            finally:
                if reusable:
                    self._idle.append(reader)
                else:  # in the middle of a read, cancelled, or over budget: it goes
                    reader.kill()
        self.cpu_seconds += float(reply.get("cpu", 0.0))
        if "error" in reply:
            code, message = str(reply["error"]), str(reply.get("message", ""))
            if code == "too_complex":
                raise FeedTooComplex(message, seconds=self.seconds)
            raise ERRORS.get(code, MalformedFeed)(message)
        result: dict[str, Any] = reply["ok"]
        return result

    async def _start(self) -> _Reader:
        # Killed ones are forgotten once they have ended.
        self._started = [r for r in self._started if r.process.returncode is None]
        reader = await _Reader.start()
        self._started.append(reader)
        try:
            await reader.ready()
        except BaseException:
            reader.kill()
            raise
        return reader

    async def aclose(self) -> None:
        """Stop every worker."""
        started, self._started, self._idle = self._started, [], []
        await asyncio.gather(*(reader.close() for reader in started), return_exceptions=True)


# ----------------------------------------------------------------------------- the worker


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    data = stream.read(size)
    return data if len(data) == size else None


class _OverBudget(BaseException):
    """Raised by the CPU timer's signal in the middle of a read (a BaseException: the parser
    and the reader catch Exception)."""


def _over_budget(signum: int, frame: object) -> None:
    raise _OverBudget


def serve() -> None:
    """A worker's loop: read requests on stdin until it closes, answer each on stdout."""
    import resource

    from bot.sources.feed_errors import FeedError
    from bot.sources.feed_parse import read_body

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bot's: it stops us
    signal.signal(signal.SIGPROF, _over_budget)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else is printed goes to stderr, never into a reply
    replies.write(b"\0\0\0\0")  # started
    replies.flush()
    while (header := _read_frame(requests)) is not None:
        body = _read_frame(requests)
        if body is None:
            return
        request = json.loads(header)
        seconds = float(request["seconds"])
        signal.alarm(math.ceil(float(request["wall_seconds"])) + GRACE_SECONDS)
        began = time.process_time()
        reply: dict[str, Any]
        # SIGPROF after `seconds` of this process's CPU, then again every INTERRUPT_EVERY
        # (should a parser swallow the first one).
        signal.setitimer(signal.ITIMER_PROF, seconds, INTERRUPT_EVERY)
        try:
            try:
                reply = {
                    "ok": read_body(
                        body,
                        url=str(request["url"]),
                        content_type=str(request["content_type"]),
                        discover=bool(request["discover"]),
                        max_entries=int(request["max_entries"]),
                    )
                }
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
        except _OverBudget:
            reply = {"error": "too_complex", "message": f"more than {seconds:g} s of CPU"}
        except FeedError as exc:
            reply = {"error": exc.code, "message": str(exc)}
        except MemoryError:
            reply = {"error": "too_complex", "message": "more memory than a reader has"}
        except Exception as exc:
            reply = {"error": "malformed", "message": f"unreadable ({type(exc).__name__})"}
        signal.alarm(0)
        reply["cpu"] = time.process_time() - began
        payload = json.dumps(reply, ensure_ascii=False).encode("utf-8", "replace")
        replies.write(len(payload).to_bytes(4, "big") + payload)
        replies.flush()


if __name__ == "__main__":
    # The bot gone, or an interruption that came as a read ended: the worker ends quietly (the
    # bot sees the read fail and says so in its log).
    with contextlib.suppress(BrokenPipeError, _OverBudget, KeyboardInterrupt):
        serve()
