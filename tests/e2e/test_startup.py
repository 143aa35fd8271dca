"""Starting the bot: bad configuration, schema checks, a refused token, and the sandbox."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from bot.sandbox.telegram_api import TelegramStandIn
from storage.migrate import current_revision, head_revision
from tests.e2e.harness import ROOT
from tests.pgserver import PostgresServer


async def run_bot(
    *args: str, env: dict[str, str], cwd: Path, stdin: bytes | None = None, timeout: float = 60
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode()


def base_env(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "X_", "DATABASE_", "POLL_", "SANDBOX_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(values)
    return env


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://bob:s3cret@127.0.0.1:notaport/db", "is not a database URL"),
        ("postgresql://bob:s3cret@127.0.0.1:1/db?nosuchoption=1", "cannot migrate DATABASE_URL"),
        ("postgresql://bob:s3cret@127.0.0.1:1/db", "cannot migrate DATABASE_URL"),
        # A password with a slash (SQLAlchemy reads up to the '@'), or given as a parameter.
        ("postgresql://bob:s3/cret@127.0.0.1:notaport/db", "is not a database URL"),
        ("postgresql://bob@127.0.0.1:notaport/db?password=s3cret", "is not a database URL"),
        ("postgresql://bob@127.0.0.1:1/db?sslmode=x&password=s3cret", "cannot migrate"),
    ],
)
async def test_the_database_password_never_appears_in_an_error(tmp_path, url, says) -> None:
    code, out = await run_bot("migrate", env=base_env(DATABASE_URL=url), cwd=tmp_path)
    assert code != 0 and says in out, out
    assert "s3cret" not in out and "cret" not in out and "Traceback" not in out, out


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("POLL_INTERVAL_SECONDS", "often", "POLL_INTERVAL_SECONDS: Input should be a valid number"),
        ("TELEGRAM_API_URL", "telegram", "TELEGRAM_API_URL: must be an http(s) URL"),
        ("DATABASE_URL", "oracle://db", "DATABASE_URL: uses 'oracle'"),
        ("PORT", "eighty", "PORT: must be a TCP port number from 1 to 65535"),
        ("PORT", "70000", "PORT: must be a TCP port number from 1 to 65535"),
        ("WEBHOOK_URL", "http://bot.example.org/tg", "WEBHOOK_URL: must be an https:// URL"),
        (
            "WEBHOOK_URL",
            "https://bot.example.org/tg",
            "WEBHOOK_SECRET: is required with WEBHOOK_URL",
        ),
    ],
)
async def test_bad_configuration_stops_with_one_clear_line(tmp_path, variable, value, message):
    code, out = await run_bot("run", env=base_env(**{variable: value}), cwd=tmp_path)
    assert code == 2
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith(f"jobrelay: configuration error: {message}")
    assert "Traceback" not in out


async def test_a_bad_webhook_secret_stops_with_one_line_that_does_not_repeat_it(tmp_path):
    env = base_env(WEBHOOK_URL="https://bot.example.org/tg", WEBHOOK_SECRET="not/a-valid:secret")
    code, out = await run_bot("run", env=env, cwd=tmp_path)
    assert code == 2
    assert out.strip() == (
        "jobrelay: configuration error: WEBHOOK_SECRET: must be 1 to 256 characters A-Z, a-z, "
        "0-9, _ and - as Telegram requires (got 18 characters, not all of them allowed)"
    )


async def test_a_port_in_use_stops_the_bot_with_a_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with TelegramStandIn() as tg:
            env = base_env(
                DATABASE_URL=f"sqlite:///{tmp_path / 'port.db'}",
                TELEGRAM_BOT_TOKEN=tg.token,
                TELEGRAM_API_URL=tg.base_url,
                PORT=str(port),
                HOST="127.0.0.1",
            )
            code, out = await run_bot("run", env=env, cwd=tmp_path)
    assert code == 1
    assert f"jobrelay: cannot listen on HOST 127.0.0.1 PORT {port}: " in out, out
    assert "Traceback" not in out


async def _empty_database(server: PostgresServer | None, prefix: str) -> str:
    """The URL of a new, empty database on the run's server (skipped without PostgreSQL)."""
    if server is None:
        pytest.skip("PostgreSQL is not installed here (no initdb/pg_ctl found)")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return server.url(name)


async def test_a_postgresql_schema_that_is_behind_is_refused_until_migrated(
    tmp_path: Path, postgres_server: PostgresServer | None
) -> None:
    url = await _empty_database(postgres_server, "behind")
    async with TelegramStandIn() as tg:
        env = base_env(
            DATABASE_URL=url,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.base_url,
        )
        code, out = await run_bot("run", env=env, cwd=tmp_path)
        assert code == 1
        assert "schema is at revision none" in out
        assert "run `python -m bot migrate`" in out
        code, out = await run_bot("migrate", env=env, cwd=tmp_path)
        assert code == 0, out
        assert f"database schema migrated to revision {head_revision()}: " in out
        assert len(out.strip().splitlines()) == 1, out  # not one line per revision
        code, out = await run_bot("migrate", env=env, cwd=tmp_path)
        assert code == 0, out
        assert out.strip().endswith(f"database schema is up to date (revision {head_revision()})")


async def test_up_with_a_token_migrates_postgresql_before_running(
    tmp_path: Path, postgres_server: PostgresServer | None
) -> None:
    url = await _empty_database(postgres_server, "up")
    async with TelegramStandIn() as tg:
        env = base_env(
            DATABASE_URL=url,
            TELEGRAM_BOT_TOKEN="999999:wrong-token-value",  # stops the bot right after start
            TELEGRAM_API_URL=tg.base_url,
        )
        code, out = await run_bot("up", env=env, cwd=tmp_path)
    assert code == 1
    assert f"database schema migrated to revision {head_revision()}" in out
    assert "Telegram refused TELEGRAM_BOT_TOKEN" in out  # it went on to run, schema and all
    assert await current_revision(url) == head_revision()
    assert not (tmp_path / "jobrelay.db").exists()


async def test_sqlite_is_migrated_on_start_and_a_refused_token_is_a_clear_error(
    tmp_path: Path,
) -> None:
    async with TelegramStandIn() as tg:
        wrong = "999999:wrong-token-value"
        env = base_env(
            DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}",
            TELEGRAM_BOT_TOKEN=wrong,
            TELEGRAM_API_URL=tg.base_url,
        )
        code, out = await run_bot("run", env=env, cwd=tmp_path)
    assert code == 1
    assert "Telegram refused TELEGRAM_BOT_TOKEN" in out
    assert (tmp_path / "fresh.db").exists()
    assert "wrong-token-value" not in out


async def test_up_without_a_token_starts_the_sandbox_on_its_own_database_quietly(
    tmp_path: Path,
) -> None:
    env = base_env(SANDBOX_LANGUAGE="en", DEFAULT_TIMEZONE="Asia/Tokyo")
    code, out = await run_bot("up", env=env, cwd=tmp_path, stdin=b":quit\n")
    assert code == 0, out
    assert "jobrelay sandbox" in out
    assert not (tmp_path / "jobrelay.db").exists()  # the real bot's database is not touched
    assert (tmp_path / "sandbox.db").exists()
    schema_lines = [line for line in out.splitlines() if "schema" in line]
    assert schema_lines == [
        line for line in out.splitlines() if line.startswith("Database sqlite:///sandbox.db")
    ]
    assert schema_lines[0].startswith(
        f"Database sqlite:///sandbox.db: schema migrated to revision {head_revision()}: "
    )
    assert "Running upgrade" not in out and "alembic" not in out
    assert "Times are shown in Asia/Tokyo, the bot's time zone (DEFAULT_TIMEZONE)" in out
    code, out = await run_bot("up", env=env, cwd=tmp_path, stdin=b":quit\n")
    assert code == 0, out
    assert f"sandbox.db: schema is up to date (revision {head_revision()})." in out


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
async def test_make_run_leaves_migrating_to_bot_up() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    process = await asyncio.create_subprocess_exec(
        *("make", "--no-print-directory", "-n", "-W", "requirements.lock", "run"),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    commands = [line for line in out.decode().splitlines() if not line.startswith("make")]
    assert process.returncode == 0
    assert commands[-1].endswith("/python -m bot up")
    assert not any("-m bot migrate" in line for line in commands)  # jobrelay.db stays untouched


async def test_the_sandbox_relays_offers_to_the_terminal(tmp_path: Path) -> None:
    env = base_env(POLL_INTERVAL_SECONDS="1", SANDBOX_POST_EVERY_SECONDS="1", SANDBOX_LANGUAGE="en")
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
    assert process.stdin is not None and process.stdout is not None
    seen: list[str] = []

    async def read_until(marker: str) -> None:
        assert process.stdout is not None
        while not any(marker in line for line in seen):
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "".join(seen)
            seen.append(line.decode())

    try:
        await read_until("jobrelay sandbox")
        process.stdin.write(
            b"/follow @acme_jobs @paris_recrute @devjobs_fr @rh_talents @studio_design\n"
        )
        await process.stdin.drain()
        await read_until("Now following @acme_jobs")
        await read_until("View on X")  # an offer posted on the X stand-in reached the "phone"
        # Categories: the sandbox's job board is read for category followers.
        process.stdin.write(b"/follow design\n")
        await process.stdin.drain()
        await read_until("Now following the category Design")
        # No wait for the board's first poll: an account never read yet relays what is posted
        # after it became a source (at the sandbox's start), whenever its first poll comes.
        process.stdin.write(
            b":post @emploi_board Graphiste (F/H) en CDI a Nantes, postulez : https://b.example/9\n"
        )
        await process.stdin.drain()
        await read_until("Graphiste (F/H) en CDI a Nantes")
        await read_until("Permanent (CDI)")
        process.stdin.write(b":quit\n")
        await process.stdin.drain()
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert (tmp_path / "sandbox.db").exists()
    assert "Traceback" not in "".join(seen)
