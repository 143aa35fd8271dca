"""Settings read once from the environment (and `.env`), validated, then passed down."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.boards import load_boards
from bot.sources.feeds import parse_host_map
from storage.db import DatabaseURLError, async_database_url

# RETENTION_DAYS: /stats and the weekly summary read the last 7 local days and the day before.
MIN_RETENTION_DAYS = 8
MAX_RETENTION_DAYS = 3650


# Telegram's rules for setWebhook: a secret_token of 1-256 characters A-Z, a-z, 0-9, _ and -;
# an https URL on one of these ports.
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})
# Paths the bot's HTTP server answers itself: a webhook cannot take them.
RESERVED_PATHS = frozenset({"/healthz", "/metrics"})


class ConfigError(Exception):
    """Configuration that cannot start the bot; the message names the variable."""


def _check_http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(
            f"{name} must be an http(s) URL such as https://example.org, got {value!r}"
        )
    return value


def is_loopback_host(host: str) -> bool:
    """Whether a URL's host is this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_webhook_url(value: str) -> str:
    """An https URL Telegram can POST to; http only for a loopback host (tests, the sandbox)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(
            f"must be an https:// URL such as https://bot.example.org/telegram, got {value!r}"
        )
    if parts.username or parts.password or parts.fragment:
        raise ValueError("must not carry a user name, a password or a #fragment")
    loopback = is_loopback_host(parts.hostname)
    if parts.scheme != "https" and not loopback:
        raise ValueError(
            f"must be an https:// URL (Telegram posts only to https; http:// is accepted only "
            f"for a loopback host such as 127.0.0.1, for tests), got {value!r}"
        )
    if not loopback and (port or 443) not in WEBHOOK_PORTS:
        raise ValueError(
            f"must use port 443, 80, 88 or 8443 (Telegram's webhook ports), got {port}"
        )
    if (unquote(parts.path) or "/") in RESERVED_PATHS:
        raise ValueError(f"cannot use the path {parts.path} (the bot serves /healthz and /metrics)")
    return value


class Settings(BaseSettings):
    """Everything jobrelay reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    x_bearer_token: SecretStr | None = None
    x_api_url: str = "https://api.twitter.com"
    database_url: str = "sqlite:///jobrelay.db"
    poll_interval_seconds: float = Field(default=300, gt=0, le=86_400)
    default_timezone: str = "Europe/Paris"
    admin_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    default_daily_limit: int = Field(default=10, ge=0, le=50)
    # Posts X may bill per UTC month (X charges $0.005 per post read).
    x_monthly_post_read_budget: int = Field(default=10_000, ge=0, le=3_000_000)
    # A search never says an account is gone: an account silent this long is looked up (one
    # `GET /2/users` per 100, billed per user), at most once per such period. 14 days.
    x_silent_account_check_seconds: float = Field(default=1_209_600, ge=1, le=31_536_000)
    boards_file: Path | None = None
    # Which sources feed the categories: only curated ones (job boards: BOARDS_FILE and
    # /admin board add), or every source anybody follows (a private deployment among friends).
    category_sources: Literal["curated", "followed"] = "curated"
    # What one stranger may cost (operators in ADMIN_USER_IDS are exempt): commands a minute
    # per person, X accounts and feeds followed per chat.
    commands_per_minute: int = Field(default=30, ge=1, le=1000)
    max_follows_per_chat: int = Field(default=100, ge=1, le=10_000)
    # New X accounts one person may have looked up a day (each lookup is billed $0.010).
    x_lookups_per_user_per_day: int = Field(default=50, ge=0, le=10_000)
    # Several processes on one PostgreSQL database: only one may receive Telegram's updates
    # (getUpdates answers 409 to a second); the others poll X and send. Telegram's ~30
    # messages/s is per bot: SEND_RATE_PER_SECOND is the whole bot's, shared through the
    # database by every process. A process silent (no liveness beat) this long is dead: the
    # others take over its leases (bot.liveness).
    receive_updates: bool = True
    send_rate_per_second: float = Field(default=29.5, gt=0, le=30)
    # PORT: serve /healthz and /metrics (and the webhook) over HTTP on HOST:PORT.
    # WEBHOOK_URL: receive updates by webhook on PORT instead of long polling (WEBHOOK_SECRET,
    # required with it, is the X-Telegram-Bot-Api-Secret-Token every update must carry).
    port: int | None = None
    host: str = "0.0.0.0"  # noqa: S104 - the platform's router or load balancer reaches it
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    worker_dead_after_seconds: float = Field(default=10.0, ge=2, le=600)
    # How a new group or channel receives offers: each as it comes, or in the daily digest.
    default_group_mode: str = "instant"
    # Feeds: a feed whose address resolves to a private, loopback or link-local address is
    # refused unless this is true (tests, intranets); FEED_HOSTS sends requests for some hosts
    # to another origin ("jobs.example=http://127.0.0.1:8080", the offline sandbox and tests);
    # a feed failing this long is paused (and its followers told) until it answers again; a
    # feed's body is read (parsed) in a worker process within FEED_PARSE_SECONDS of CPU.
    allow_private_feeds: bool = False
    feed_hosts: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    feed_pause_after_seconds: float = Field(default=172_800, gt=0, le=2_592_000)
    feed_parse_seconds: float = Field(default=10, gt=0, le=120)
    # Sent, digested and failed outbox rows, sent digests and offers no kept row needs are
    # deleted this many days after their last use (a daily prune, bot.retention).
    retention_days: int = 90
    # Not in the public contract: tuned by tests and the sandbox.
    delivery_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    digest_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    delivery_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    send_concurrency: int = Field(default=32, ge=1, le=1000)
    group_pace_seconds: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("telegram_api_url")
    @classmethod
    def _telegram_url(cls, value: str) -> str:
        return _check_http_url(value, "TELEGRAM_API_URL")

    @field_validator("x_api_url")
    @classmethod
    def _x_url(cls, value: str) -> str:
        return _check_http_url(value, "X_API_URL").rstrip("/")

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: object) -> int | None:
        text = str(value).strip() if value is not None else ""
        if not text:
            return None
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise ValueError(f"must be a TCP port number from 1 to 65535, got {value!r}")
        return int(text)

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: object) -> str:
        text = str(value).strip() if value is not None else ""
        if not text:
            return "0.0.0.0"  # noqa: S104 - as the default
        if not re.fullmatch(r"[A-Za-z0-9.:_-]{1,253}", text):
            raise ValueError(
                f"must be an address to listen on, such as 0.0.0.0, 127.0.0.1 or ::, got {value!r}"
            )
        return text

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook_url(cls, value: object) -> str | None:
        text = str(value).strip() if value is not None else ""
        return _check_webhook_url(text) if text else None

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        secret = value.get_secret_value().strip() if value is not None else ""
        if not secret:
            if info.data.get("webhook_url"):
                raise ValueError(
                    "is required with WEBHOOK_URL: 1 to 256 characters A-Z, a-z, 0-9, _ and - "
                    "(for example the output of `openssl rand -hex 32`)"
                )
            return None
        if not WEBHOOK_SECRET_RE.fullmatch(secret):
            # The value itself is not repeated: it is a secret.
            raise ValueError(
                f"must be 1 to 256 characters A-Z, a-z, 0-9, _ and - as Telegram requires "
                f"(got {len(secret)} characters, not all of them allowed)"
                if len(secret) <= 256
                else f"must be at most 256 characters long (got {len(secret)})"
            )
        return SecretStr(secret)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            async_database_url(value)
        except DatabaseURLError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone; use a name such as Europe/Paris"
            ) from None
        return value

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _admins(cls, value: object) -> frozenset[int]:
        if isinstance(value, frozenset | set | list | tuple):
            items = [str(v) for v in value]
        elif value is None:
            items = []
        else:
            items = [part for part in str(value).replace(",", " ").split() if part]
        try:
            return frozenset(int(item) for item in items)
        except ValueError:
            raise ValueError(
                "must be Telegram user ids (numbers) separated by commas, e.g. 12345,67890"
            ) from None

    @field_validator("default_group_mode", mode="before")
    @classmethod
    def _group_mode(cls, value: object) -> str:
        mode = str(value or "instant").strip().lower()
        if mode not in {"instant", "digest"}:
            raise ValueError(f"must be instant or digest, got {value!r}")
        return mode

    @field_validator("retention_days", mode="before")
    @classmethod
    def _retention(cls, value: object) -> int:
        text = str(value).strip() if value is not None else ""
        days = int(text) if text.isdigit() else None
        if days is None or not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
            raise ValueError(
                f"must be a whole number of days from {MIN_RETENTION_DAYS} to "
                f"{MAX_RETENTION_DAYS} (/stats and the weekly summary read the last 7 days), "
                f"got {value!r}"
            )
        return days

    @field_validator("feed_hosts", mode="before")
    @classmethod
    def _feed_hosts(cls, value: object) -> dict[str, str]:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return parse_host_map(str(value or ""))

    @field_validator("boards_file", mode="before")
    @classmethod
    def _boards(cls, value: object) -> Path | None:
        if value is None or not str(value).strip():
            return None  # BOARDS_FILE= (empty) means no job boards
        path = Path(str(value).strip())
        load_boards(path)  # a ValueError names what is wrong with the file
        return path

    @field_validator("telegram_bot_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        token = value.get_secret_value().strip()
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError("must look like 123456789:ABC... as given by @BotFather")
        return SecretStr(token)

    @field_validator("x_bearer_token")
    @classmethod
    def _bearer(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one clear line per variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            variable = str(error["loc"][0]).upper() if error["loc"] else "configuration"
            message = str(error["msg"]).removeprefix("Value error, ").removeprefix(f"{variable} ")
            lines.append(f"{variable}: {message}")
        raise ConfigError("; ".join(lines)) from None
