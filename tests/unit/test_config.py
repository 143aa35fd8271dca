"""Configuration: defaults from the contract, and one clear line per bad variable."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    for name in [
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_URL",
        "X_BEARER_TOKEN",
        "X_API_URL",
        "DATABASE_URL",
        "POLL_INTERVAL_SECONDS",
        "DEFAULT_TIMEZONE",
        "ADMIN_USER_IDS",
        "RETENTION_DAYS",
        "PORT",
        "HOST",
        "WEBHOOK_URL",
        "WEBHOOK_SECRET",
    ]:
        monkeypatch.delenv(name, raising=False)


def test_defaults_follow_the_contract() -> None:
    settings = load_settings()
    assert settings.telegram_bot_token is None
    assert settings.telegram_api_url == "https://api.telegram.org/bot"
    assert settings.x_api_url == "https://api.twitter.com"
    assert settings.database_url == "sqlite:///jobrelay.db"
    assert settings.poll_interval_seconds == 300
    assert settings.default_timezone == "Europe/Paris"
    assert settings.admin_user_ids == frozenset()
    assert settings.x_monthly_post_read_budget == 10_000
    assert settings.default_group_mode == "instant"
    assert settings.receive_updates is True
    assert settings.retention_days == 90


def test_values_are_read_from_the_environment_and_dotenv(monkeypatch, tmp_path) -> None:
    (tmp_path / ".env").write_text("X_BEARER_TOKEN=abc\nADMIN_USER_IDS=1, 2,3\n")
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "1")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@127.0.0.1:5432/jobs")
    settings = load_settings()
    assert settings.x_bearer_token is not None
    assert settings.x_bearer_token.get_secret_value() == "abc"
    assert settings.admin_user_ids == frozenset({1, 2, 3})
    assert settings.poll_interval_seconds == 1


def test_retention_days_takes_a_whole_number_of_days(monkeypatch) -> None:
    monkeypatch.setenv("RETENTION_DAYS", " 30 ")
    assert load_settings().retention_days == 30


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("POLL_INTERVAL_SECONDS", "abc", "POLL_INTERVAL_SECONDS: Input should be a valid number"),
        ("POLL_INTERVAL_SECONDS", "0", "POLL_INTERVAL_SECONDS: Input should be greater than 0"),
        ("TELEGRAM_API_URL", "api.telegram.org", "TELEGRAM_API_URL: must be an http(s) URL"),
        ("X_API_URL", "ftp://x", "X_API_URL: must be an http(s) URL"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL: uses 'mysql'"),
        ("DATABASE_URL", "not a url", "DATABASE_URL: 'not a url' is not a database URL"),
        ("DEFAULT_TIMEZONE", "Mars/Olympus", "DEFAULT_TIMEZONE: 'Mars/Olympus' is not an IANA"),
        ("ADMIN_USER_IDS", "12,bob", "ADMIN_USER_IDS: must be Telegram user ids"),
        ("TELEGRAM_BOT_TOKEN", "nocolon", "TELEGRAM_BOT_TOKEN: must look like 123456789:ABC"),
        ("DEFAULT_GROUP_MODE", "sometimes", "DEFAULT_GROUP_MODE: must be instant or digest"),
        (
            "X_MONTHLY_POST_READ_BUDGET",
            "-5",
            "X_MONTHLY_POST_READ_BUDGET: Input should be greater than or equal to 0",
        ),
        ("X_MONTHLY_POST_READ_BUDGET", "lots", "X_MONTHLY_POST_READ_BUDGET: Input should be"),
        (
            "X_SILENT_ACCOUNT_CHECK_SECONDS",
            "0",
            "X_SILENT_ACCOUNT_CHECK_SECONDS: Input should be greater than or equal to 1",
        ),
        ("RECEIVE_UPDATES", "perhaps", "RECEIVE_UPDATES: Input should be a valid boolean"),
        ("SEND_RATE_PER_SECOND", "31", "SEND_RATE_PER_SECOND: Input should be less than"),
        ("RETENTION_DAYS", "7", "RETENTION_DAYS: must be a whole number of days from 8 to 3650"),
        ("RETENTION_DAYS", "30.5", "RETENTION_DAYS: must be a whole number of days from 8"),
        ("RETENTION_DAYS", "forever", "RETENTION_DAYS: must be a whole number of days from 8"),
    ],
)
def test_bad_values_name_the_variable_and_what_is_accepted(monkeypatch, name, value, says) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert says in str(error.value)
    assert "\n" not in str(error.value)


def test_a_bad_token_is_not_echoed_back(monkeypatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "supersecretvalue")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "supersecretvalue" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "BOARDS_FILE: cannot read"),
        ("accounts = [", "is not valid TOML"),
        ('boards = ["@a"]', 'needs a list of X handles: accounts = ["@indeed_fr", "@apec"]'),
        ('accounts = ["@ok_board", "@not-a-handle"]', "'@not-a-handle' is not an X handle"),
    ],
)
def test_a_bad_boards_file_is_named_with_what_is_wrong(
    monkeypatch, tmp_path, content, says
) -> None:
    path = tmp_path / "boards.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    monkeypatch.setenv("BOARDS_FILE", str(path))
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert says in str(error.value)
    assert "\n" not in str(error.value)


def test_an_empty_boards_file_variable_means_no_boards(monkeypatch) -> None:
    monkeypatch.setenv("BOARDS_FILE", "")
    assert load_settings().boards_file is None


def test_a_boards_file_lists_handles_once(monkeypatch, tmp_path) -> None:
    from bot.boards import load_boards

    path = tmp_path / "boards.toml"
    path.write_text('accounts = ["@Indeed_FR", "indeed_fr", "https://x.com/apec"]\n', "utf-8")
    monkeypatch.setenv("BOARDS_FILE", str(path))
    assert load_settings().boards_file == path
    assert load_boards(path).accounts == ["Indeed_FR", "apec"]
    path.write_text(
        'feeds = ["https://jobs.example/feed.xml", "https://jobs.example/feed.xml",'
        ' "@j@m.example"]\n',
        "utf-8",
    )
    boards = load_boards(path)
    assert boards.accounts == []
    assert [a.key for a in boards.feeds] == ["https://jobs.example/feed.xml", "@j@m.example"]
    path.write_text('feeds = ["ftp://jobs.example/feed"]\n', "utf-8")
    with pytest.raises(ValueError, match="is not a feed address"):
        load_boards(path)


def test_http_and_webhook_are_off_by_default() -> None:
    settings = load_settings()
    assert settings.port is None
    assert settings.host == "0.0.0.0"
    assert settings.webhook_url is None and settings.webhook_secret is None


def test_a_webhook_needs_https_unless_its_host_is_loopback(monkeypatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "abc_DEF-123")
    monkeypatch.setenv("PORT", " 8080 ")
    for url in [
        "https://bot.example.org/tg",
        "https://bot.example.org:8443/tg",
        "http://127.0.0.1:9/x",
    ]:
        monkeypatch.setenv("WEBHOOK_URL", url)
        settings = load_settings()
        assert settings.webhook_url == url and settings.port == 8080
        assert settings.webhook_secret is not None
        assert settings.webhook_secret.get_secret_value() == "abc_DEF-123"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"PORT": "0"}, "PORT: must be a TCP port number from 1 to 65535, got '0'"),
        ({"PORT": "http"}, "PORT: must be a TCP port number"),
        ({"HOST": "0.0.0.0; rm"}, "HOST: must be an address to listen on"),
        (
            {"WEBHOOK_URL": "ftp://x.example/y", "WEBHOOK_SECRET": "s"},
            "WEBHOOK_URL: must be an https://",
        ),
        (
            {"WEBHOOK_URL": "http://bot.example.org/tg", "WEBHOOK_SECRET": "s"},
            "only for a loopback host",
        ),
        (
            {"WEBHOOK_URL": "https://bot.example.org:8080/", "WEBHOOK_SECRET": "s"},
            "port 443, 80, 88",
        ),
        (
            {"WEBHOOK_URL": "https://bot.example.org/healthz", "WEBHOOK_SECRET": "s"},
            "cannot use the path",
        ),
        (
            {"WEBHOOK_URL": "https://bot.example.org/tg"},
            "WEBHOOK_SECRET: is required with WEBHOOK_URL",
        ),
        (
            {"WEBHOOK_URL": "https://bot.example.org/tg", "WEBHOOK_SECRET": "a b"},
            "WEBHOOK_SECRET: must be",
        ),
        (
            {"WEBHOOK_URL": "https://b.example/t", "WEBHOOK_SECRET": "x" * 257},
            "at most 256 characters",
        ),
    ],
)
def test_bad_http_and_webhook_settings_are_one_clear_line(monkeypatch, env, says) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert says in str(caught.value)
    secret = env.get("WEBHOOK_SECRET")
    if secret and len(secret) > 1:
        assert secret not in str(caught.value)
