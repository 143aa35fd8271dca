"""What may go to Telegram next: the last check of an outbox send, right before its request.

A message Telegram accepted but the database has not recorded yet is sent again after a crash.
The rate limiter lets a send go every 1/SEND_RATE_PER_SECOND s whether or not the previous one
is recorded, so a record held up for a moment (measured: up to ~180 ms in the seconds after a
start, while the event loop and the database are busy; seconds when the database is locked)
let several accepted sends pile up unrecorded. Here an outbox send, once the limiter lets it
go, also waits until every send that left before it is answered and recorded: a crash can
then only double the one message whose request was out (or answered and not yet recorded) at
that instant. Waiting only for the sends already answered is not enough: two requests out at
once, both carried out, were two copies after a kill whenever Telegram (or a loaded machine)
took longer to answer than the limiter's interval. Outbox sends take turns
through the limiter and the gate (one at a time until its request leaves, never during it), so
sends held at the gate never leave together as a burst beyond Telegram's 30 a second.

The gate also holds outbox sends while Telegram is not answering (after a timeout, the sender
suspends it until a probe is answered): a send that times out may still be carried out, and
retrying it into the same hang would be one more copy each time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any

from telegram.error import NetworkError
from telegram.ext import AIORateLimiter

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]


class SendHeld(NetworkError):
    """An outbox send the gate kept back because Telegram is not answering; nothing left."""

    def __init__(self) -> None:
        super().__init__("held until Telegram answers again")


class _Turn:
    """An outbox send's turn through the limiter and the gate; ended as its request leaves."""

    __slots__ = ("_lock",)

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock: asyncio.Lock | None = lock

    def end(self) -> None:
        """Let the next outbox send queue for the limiter (idempotent)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class _Send:
    """One outbox send, from its request until its outcome is recorded."""

    __slots__ = ()


_CURRENT: ContextVar[_Send | None] = ContextVar("jobrelay_outbox_send", default=None)


class SendGate:
    """Tracks outbox sends Telegram answered but the database has not recorded, and whether
    Telegram answers at all; see the module's docstring."""

    def __init__(self) -> None:
        self._unrecorded: set[_Send] = set()
        self._all_recorded = asyncio.Event()
        self._all_recorded.set()
        self._answering = True
        self._turn = asyncio.Lock()

    @property
    def answering(self) -> bool:
        """False while the sender waits for a probe to show that Telegram answers again."""
        return self._answering

    def suspend(self) -> None:
        """Telegram did not answer: hold every outbox send until `resume()`."""
        self._answering = False

    def resume(self) -> None:
        """A probe was answered: outbox sends may go again."""
        self._answering = True

    @property
    def unrecorded(self) -> int:
        """Outbox sends that left whose outcome is not recorded yet."""
        return len(self._unrecorded)

    @contextlib.contextmanager
    def tracking(self) -> Iterator[None]:
        """Wrap one outbox send and the recording of its outcome (requests made inside are
        gated; leaving the block says the outcome is recorded, or never will be)."""
        send = _Send()
        token = _CURRENT.set(send)
        try:
            yield
        finally:
            _CURRENT.reset(token)
            self._unrecorded.discard(send)
            if not self._unrecorded:
                self._all_recorded.set()

    @property
    def tracked(self) -> bool:
        """True inside `tracking()`: the request being made is an outbox send."""
        return _CURRENT.get() is not None

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[_Turn]:
        """One outbox send at a time from here until its request leaves (`_Turn.end()`)."""
        await self._turn.acquire()
        handle = _Turn(self._turn)
        try:
            await self._wait_recorded()
            yield handle
        finally:
            handle.end()

    async def before_request(self) -> None:
        """Called as the limiter lets a request go: an outbox send waits until the sends
        that left before it are answered and recorded, and is held back while Telegram is not
        answering."""
        if not self.tracked:
            return
        await self._wait_recorded()
        if not self._answering:
            raise SendHeld

    async def _wait_recorded(self) -> None:
        current = _CURRENT.get()
        while self._unrecorded - {current}:
            await self._all_recorded.wait()

    def leaving(self) -> None:
        """The current outbox send's request leaves: it is unrecorded until its block ends,
        answered or not (a request that timed out may still have been carried out)."""
        send = _CURRENT.get()
        if send is not None:
            self._unrecorded.add(send)
            self._all_recorded.clear()


class GatedRateLimiter(AIORateLimiter):
    """python-telegram-bot's AIORateLimiter with the send gate between the limiter and the
    request (see `SendGate.before_request`)."""

    def __init__(self, gate: SendGate, **limits: Any) -> None:
        super().__init__(**limits)
        self.gate = gate

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSONResult:
        """An outbox send takes its turn, is metered as AIORateLimiter meters, passes the
        gate, then leaves; any other request is only metered."""
        if not self.gate.tracked:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        async with self.gate.turn() as turn:

            async def gated(*call_args: Any, **call_kwargs: Any) -> JSONResult:
                try:
                    await self.gate.before_request()
                    self.gate.leaving()
                finally:
                    turn.end()
                return await callback(*call_args, **call_kwargs)

            return await super().process_request(
                gated, args, kwargs, endpoint, data, rate_limit_args
            )


def gate_of(bot: Any) -> SendGate:
    """The gate wired into a bot's rate limiter, or a fresh one that only the sender's own
    checks use (a Bot built without GatedRateLimiter)."""
    limiter = getattr(bot, "rate_limiter", None)
    if isinstance(limiter, GatedRateLimiter):
        return limiter.gate
    return SendGate()
