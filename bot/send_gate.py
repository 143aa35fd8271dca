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

The gate also holds outbox sends while this process may not send (`fence`: on PostgreSQL,
while its liveness record may look dead to the other processes, which then send its rows;
bot.liveness), and while Telegram is not answering (after a timeout, the sender
suspends it until a probe is answered): a send that times out may still be carried out, and
retrying it into the same hang would be one more copy each time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import NetworkError
from telegram.ext import AIORateLimiter

from bot.shared_rate import SharedRate

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]


class SendHeld(NetworkError):
    """An outbox send the gate kept back because Telegram is not answering; nothing left."""

    def __init__(self, why: str = "held until Telegram answers again") -> None:
        super().__init__(why)


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
        #: False while this process must not send outbox rows (bot.liveness.Liveness.fresh).
        self.fence: Callable[[], bool] = lambda: True

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
        if not self.fence():
            raise SendHeld("held: this process's liveness record is not fresh")

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
    request (see `SendGate.before_request`), each group's 20 a minute metered before an
    outbox send takes its turn, and, on PostgreSQL, the bot's one rate shared with the other
    processes (`shared`, bot.shared_rate) right before a request leaves.

    A group's limit is waited for first, holding nothing: inside the turn (as
    AIORateLimiter meters it), a group whose minute is used up by replies to its members'
    commands held every outbox send of the process, private chats' too, for up to a minute.
    """

    def __init__(
        self,
        gate: SendGate,
        *,
        group_max_rate: float = 20,
        group_time_period: float = 60,
        **limits: Any,
    ) -> None:
        super().__init__(group_max_rate=0, **limits)  # groups: metered here (`_group_turn`)
        self.gate = gate
        self.shared: SharedRate | None = None
        # (not AIORateLimiter's `_group_max_rate`, which stays 0)
        self._group_rate = group_max_rate
        self._group_period = group_time_period
        self._groups: dict[int | str, AsyncLimiter] = {}

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSONResult:
        """A request waits for its group's limit (if any); an outbox send then takes its turn,
        is metered as AIORateLimiter meters it, passes the gate, gets the shared turn, and
        leaves; any other request is only metered."""
        shared = self.shared if data.get("chat_id") is not None else None
        await self._group_turn(data.get("chat_id"))
        if not self.gate.tracked:

            async def paced(*call_args: Any, **call_kwargs: Any) -> JSONResult:
                if shared is not None:
                    await shared.turn()
                return await callback(*call_args, **call_kwargs)

            return await super().process_request(
                paced, args, kwargs, endpoint, data, rate_limit_args
            )
        async with self.gate.turn() as turn:

            async def gated(*call_args: Any, **call_kwargs: Any) -> JSONResult:
                try:
                    await self.gate.before_request()
                    if shared is not None:
                        await shared.turn()
                    self.gate.leaving()
                finally:
                    turn.end()
                return await callback(*call_args, **call_kwargs)

            return await super().process_request(
                gated, args, kwargs, endpoint, data, rate_limit_args
            )

    def group_has_room(self, chat_id: object) -> bool:
        """Whether one more request to this chat fits in its group's minute now (True for a
        private chat): the sender asks before an outbox send to a group, so as not to wait
        for the group's slot while other chats' offers wait for the sender."""
        key = _group_key(chat_id)
        limiter = self._groups.get(key) if key is not None and self._group_rate else None
        return limiter is None or limiter.has_capacity()

    async def _group_turn(self, chat_id: object) -> None:
        """Wait until a group or channel (a negative or string chat id, as AIORateLimiter
        tells them) may get one more request this minute."""
        key = _group_key(chat_id)
        if key is None or not self._group_rate:
            return
        if len(self._groups) > 512:  # forget the groups whose minute is long over
            for other, limiter in list(self._groups.items()):
                if other != key and limiter.has_capacity(limiter.max_rate):
                    del self._groups[other]
        if key not in self._groups:
            self._groups[key] = AsyncLimiter(self._group_rate, self._group_period)
        await self._groups[key].acquire()


def _group_key(chat_id: object) -> int | str | None:
    """The chat id of a group or channel (negative, or a string @username), else None."""
    if isinstance(chat_id, str):
        try:
            chat_id = int(chat_id)
        except ValueError:
            return chat_id
    if isinstance(chat_id, int) and chat_id < 0:
        return chat_id
    return None


def share_rate(bot: Any, shared: SharedRate) -> None:
    """Meter a bot's requests by the rate every process shares (PostgreSQL), besides its
    own limiter."""
    limiter = getattr(bot, "rate_limiter", None)
    if isinstance(limiter, GatedRateLimiter):
        limiter.shared = shared


def group_has_room(bot: Any, chat_id: int) -> bool:
    """Whether a request to this chat would leave now as far as its group's 20 messages a
    minute go (True for a bot built without GatedRateLimiter)."""
    limiter = getattr(bot, "rate_limiter", None)
    return not isinstance(limiter, GatedRateLimiter) or limiter.group_has_room(chat_id)


def gate_of(bot: Any) -> SendGate:
    """The gate wired into a bot's rate limiter, or a fresh one that only the sender's own
    checks use (a Bot built without GatedRateLimiter)."""
    limiter = getattr(bot, "rate_limiter", None)
    if isinstance(limiter, GatedRateLimiter):
        return limiter.gate
    return SendGate()
