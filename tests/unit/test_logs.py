"""Secrets never reach the log output."""

from __future__ import annotations

import logging

import pytest

from bot.__main__ import _secrets
from bot.config import load_settings
from bot.logs import RedactSecrets, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_token_in_an_httpx_style_url_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    token = "123456:AAHsecretsecret"
    configure_logging([token])
    logging.getLogger("bot.test").warning(
        "HTTP Request: POST %s", f"https://api.telegram.org/bot{token}/getMe"
    )
    try:
        raise RuntimeError(f"failed calling /bot{token}/sendMessage")
    except RuntimeError:
        logging.getLogger("bot.test").exception("boom")
    err = capsys.readouterr().err
    assert token not in err
    assert "/bot[REDACTED]/getMe" in err
    assert "/bot[REDACTED]/sendMessage" in err


def test_httpx_and_tweepy_debug_output_is_turned_down() -> None:
    configure_logging([])
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert not logging.getLogger("tweepy").isEnabledFor(logging.DEBUG)


def test_short_values_are_not_treated_as_secrets() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "id 12345 ok", None, None)
    RedactSecrets(["12345"]).filter(record)
    assert record.getMessage() == "id 12345 ok"


def test_the_webhook_url_path_never_reaches_the_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "/hooks/Zq81n-unguessable%20x"
    url = f"https://bot.example.org{path}"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:AAHsecretsecretsecretsecret01234")
    monkeypatch.setenv("WEBHOOK_URL", url)
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret-s3cret")
    configure_logging(_secrets(load_settings()))
    # What bot.app and bot.web log as they start in webhook mode.
    logging.getLogger("bot.app").info("receiving Telegram's updates by webhook at %s", url)
    logging.getLogger("bot.web").info(
        "serving /healthz, /metrics and the webhook %s", "/hooks/Zq81n-unguessable x"
    )
    err = capsys.readouterr().err
    assert path not in err and "unguessable" not in err
    assert "at https://bot.example.org[REDACTED]" in err
