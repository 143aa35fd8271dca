"""A sandbox session as a newcomer has it: files both ways, /stats' chart, buttons, one clock."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.opml import Outline, write_opml
from tests.e2e.harness import ROOT


def sandbox_env(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "X_", "DATABASE_", "POLL_", "SANDBOX_", "DEFAULT_"))
    }
    env.update(PYTHONPATH=str(ROOT), **values)
    return env


def subscriptions(*handles: str) -> bytes:
    outlines = [Outline(kind="x", value=h, title=f"@{h}") for h in handles]
    return write_opml("mine", outlines, created=datetime.now(UTC))


def read(path: Path) -> bytes:
    return path.read_bytes()


class Session:
    """The sandbox as a subprocess: type lines, read what the terminal prints."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[str] = []
        self._read = 0  # lines already matched by `expect`

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def expect(self, marker: str, timeout: float = 60) -> str:
        """The first line from here on that contains `marker`, waiting at most `timeout` seconds
        in all (the poster's lines keep coming, so each line read is no sign of progress)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._read, len(self.seen)):
                if marker in self.seen[index]:
                    self._read = index + 1
                    return self.seen[index]
            left = deadline - time.monotonic()
            try:
                raw = await asyncio.wait_for(self.process.stdout.readline(), max(left, 0.01))
            except TimeoutError:
                raise AssertionError(
                    f"no {marker!r} after {timeout:g} s:\n{''.join(self.seen)}"
                ) from None
            assert raw, f"the sandbox ended before {marker!r}:\n{''.join(self.seen)}"
            self.seen.append(raw.decode())


async def test_a_newcomer_imports_exports_and_gets_the_chart_in_the_sandbox(
    tmp_path: Path,
) -> None:
    (tmp_path / "subs.opml").write_bytes(subscriptions("acme_jobs"))
    (tmp_path / "more.opml").write_bytes(subscriptions("paris_recrute"))
    env = sandbox_env(
        POLL_INTERVAL_SECONDS="1",
        SANDBOX_POST_EVERY_SECONDS="1",
        SANDBOX_LANGUAGE="en",
        DEFAULT_TIMEZONE="Asia/Kolkata",  # +05:30: never the machine's UTC by accident
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sandbox",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    session = Session(process)
    try:
        await session.expect("Times are shown in Asia/Kolkata")
        await session.expect("Database sqlite:///sandbox.db: schema migrated to revision")
        # Buttons first, while nothing is followed: no offer (with buttons of its own) can
        # come between /settings and the presses.
        await session.type("/settings")
        header = await session.expect(" jobrelay:")
        assert " IST jobrelay:" in header  # the bot's clock, named
        await session.expect("[2 Limit: ")
        await session.type(":press 2")
        await session.expect("is a label, not a button")
        await session.type(":press 3")
        await session.expect("(toast after [+]) Saved")
        # An OPML file with /import as its caption.
        await session.type(":send subs.opml /import")
        await session.expect("(you) sent the document subs.opml (")
        await session.expect("Now following @acme_jobs")
        await session.expect("View on X")  # an offer reached the "phone"
        # A file sent alone, then answered with /import.
        await session.type(":send more.opml")
        await session.expect("answer it with /import")
        await session.type(":reply /import")
        await session.expect("(you) answered more.opml with: /import")
        await session.expect("Now following @paris_recrute")
        # What the bot sends as files is named and saved.
        await session.type("/stats")
        photo = await session.expect("🖼 Photo (")
        await session.type("/export")
        document = await session.expect("📎 Document jobrelay.opml (")
        await session.type(":quit")
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = "".join(session.seen)
    assert "Traceback" not in output
    assert "new offer" not in output
    saved_photo = Path(photo.split(", saved as ", 1)[1].strip())
    saved_document = Path(document.split(", saved as ", 1)[1].strip())
    assert saved_photo.parent == saved_document.parent == tmp_path / "sandbox-files"
    assert read(saved_photo).startswith(b"\x89PNG")
    assert b"paris_recrute" in read(saved_document)
