"""X (Twitter) API v2 through tweepy's AsyncClient, routed to X_API_URL through its session seam."""

from __future__ import annotations

import asyncio
import html
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import tweepy
from tweepy.asynchronous import AsyncClient

from bot.sources.base import (
    Account,
    AccountNotFound,
    AccountSuspended,
    AuthError,
    Batch,
    Lookup,
    Post,
    RateLimited,
    SourceError,
    Unavailable,
)

log = logging.getLogger(__name__)

TWEEPY_HOST = "https://api.twitter.com"
HANDLE_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
PAGE_SIZE = 100
# A search's page walk stops here even if X keeps paging.
MAX_PAGES = 32
NOT_FOUND_TYPE = "https://api.twitter.com/2/problems/resource-not-found"
USAGE_CAPPED_TYPE = "https://api.twitter.com/2/problems/usage-capped"
UNKNOWN_RESET_WAIT = timedelta(minutes=15)
# The longest `tweets/search/recent` query X's Basic tier accepts.
MAX_QUERY_LENGTH = 512
QUERY_TAIL = " -is:retweet -is:reply"
# X looks up at most 100 users per `GET /2/users` request.
MAX_LOOKUP = 100
TWITTER_EPOCH_MS = 1_288_834_974_657


def search_query(handles: list[str]) -> str:
    """One recent-search query reading these accounts' own posts (no reposts, no replies)."""
    clause = " OR ".join(f"from:{handle}" for handle in handles)
    return f"({clause}){QUERY_TAIL}" if len(handles) > 1 else f"{clause}{QUERY_TAIL}"


def query_fits(handles: list[str]) -> bool:
    """Whether one query can read all these accounts."""
    return len(search_query(handles)) <= MAX_QUERY_LENGTH


def id_at(moment: datetime) -> int:
    """The smallest post id X can give a post created at `moment` (ids are snowflakes: the
    creation time in milliseconds since X's epoch, shifted 22 bits)."""
    milliseconds = int(moment.timestamp() * 1000) - TWITTER_EPOCH_MS
    return max(milliseconds, 0) << 22


class RoutedSession:
    """Duck-typed aiohttp session for tweepy: rewrites tweepy's hard-coded host to X_API_URL."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str) -> None:
        self._session = session
        self._api_url = api_url.rstrip("/")

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        """Same signature as aiohttp.ClientSession.request, with the host replaced."""
        text = str(url)
        if text.startswith(TWEEPY_HOST):
            text = self._api_url + text[len(TWEEPY_HOST) :]
        return self._session.request(method, text, **kwargs)


def _expand_links(text: str, entities: object) -> str:
    """Replace t.co links by the links the author posted (`entities.urls[].expanded_url`);
    a photo's or video's own link (it has a `media_key`) is dropped from the text."""
    urls = entities.get("urls") if isinstance(entities, dict) else None
    if not isinstance(urls, list):
        return text
    replacements: dict[str, str] = {}
    for entry in urls:
        if not isinstance(entry, dict):
            continue
        short, expanded = entry.get("url"), entry.get("expanded_url")
        if not isinstance(short, str) or not short.startswith(("http://", "https://")):
            continue
        if entry.get("media_key") is not None:
            replacements[short] = ""
        elif isinstance(expanded, str) and expanded.startswith(("http://", "https://")):
            replacements[short] = expanded
    if not replacements:
        return text
    # One pass, longest link first, so an expanded link is never rewritten again and a
    # link that is a prefix of another never cuts it.
    pattern = re.compile(
        "|".join(re.escape(short) for short in sorted(replacements, key=len, reverse=True))
    )
    return pattern.sub(lambda match: replacements[match.group(0)], text).strip()


def post_url(handle: str, post_id: str) -> str:
    """The public link of a post."""
    return f"https://x.com/{handle}/status/{post_id}"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


async def _problem_type(exc: tweepy.HTTPException) -> str:
    """The problem `type` of an X error body (tweepy keeps the response, not its JSON; aiohttp
    has the body cached, since tweepy already read it)."""
    try:
        body = await exc.response.json(content_type=None)
    except Exception:  # not JSON, or no body: no problem type
        return ""
    return str(body.get("type", "")) if isinstance(body, dict) else ""


class XSource:
    """Resolves handles and reads new posts of accounts; every failure becomes a SourceError."""

    kind = "x"

    def __init__(self, bearer_token: str, api_url: str, *, timeout: float = 20.0) -> None:
        self._bearer_token = bearer_token
        self._api_url = api_url
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncClient | None = None

    async def start(self) -> None:
        """Open the HTTP session (call from the running event loop)."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        self._client = AsyncClient(
            bearer_token=self._bearer_token, return_type=dict, wait_on_rate_limit=False
        )
        # The public seam tweepy offers for its transport.
        self._client.session = RoutedSession(self._session, self._api_url)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self._client is None:
            raise RuntimeError("XSource.start() was not called")
        try:
            result = await getattr(self._client, method)(*args, **kwargs)
        except tweepy.TooManyRequests as exc:
            reset = exc.reset_time if getattr(exc, "reset_time", None) else None
            # Without x-rate-limit-reset, wait a whole rate-limit window (15 minutes).
            reset_at = (
                datetime.fromtimestamp(reset, UTC)
                if reset
                else datetime.now(UTC) + UNKNOWN_RESET_WAIT
            )
            raise RateLimited(
                reset_at, usage_capped=await _problem_type(exc) == USAGE_CAPPED_TYPE
            ) from None
        except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
            raise AuthError(f"X refused the credentials (HTTP {exc.response.status})") from None
        except tweepy.BadRequest as exc:
            raise Unavailable(f"X rejected the request: {exc}") from None
        except tweepy.TwitterServerError as exc:
            raise Unavailable(f"X answered HTTP {exc.response.status}") from None
        except tweepy.HTTPException as exc:
            raise Unavailable(f"X answered HTTP {exc.response.status}") from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # ValueError covers bodies that are not JSON (aiohttp's ContentTypeError is one).
            raise Unavailable(f"X unreachable: {type(exc).__name__}") from None
        if not isinstance(result, dict):
            raise Unavailable("X answered with something that is not a JSON object")
        return result

    @staticmethod
    def _raise_for_resource_errors(body: dict[str, Any]) -> None:
        errors = body.get("errors")
        if body.get("data") or not isinstance(errors, list) or not errors:
            return
        first = errors[0] if isinstance(errors[0], dict) else {}
        detail = str(first.get("detail", ""))
        if "suspended" in detail.lower() or first.get("title") in {
            "Forbidden",
            "Authorization Error",
        }:
            raise AccountSuspended(detail)
        if first.get("type") == NOT_FOUND_TYPE or first.get("title") == "Not Found Error":
            raise AccountNotFound(detail)
        raise Unavailable(f"X answered with errors: {detail or first}")

    async def resolve(self, handle: str) -> Account:
        """Look an account up by handle (`GET /2/users/by/username/:u`)."""
        if not HANDLE_RE.fullmatch(handle):
            raise ValueError(f"not an X handle: {handle!r}")
        body = await self._call("get_user", username=handle, user_fields=["protected"])
        self._raise_for_resource_errors(body)
        data = body.get("data")
        if not isinstance(data, dict) or "id" not in data or "username" not in data:
            raise Unavailable("X answered a user lookup without data")
        if data.get("protected") is True:
            # Its posts cannot be read with an app token.
            raise AccountSuspended(f"@{data['username']} is protected")
        return Account(
            external_id=str(data["id"]),
            handle=str(data["username"]),
            name=str(data.get("name") or data["username"]),
        )

    async def search_new(self, handles: list[str], *, since_id: int) -> Batch:
        """Every post of these accounts newer than `since_id`, oldest first, in one query
        (`tweets/search/recent`, replies and reposts excluded); every page is read. Each post
        names its author's id and handle as X gives them now."""
        if not handles or not query_fits(handles):
            raise ValueError(f"cannot read {len(handles)} accounts in one query")
        params: dict[str, Any] = {
            "query": search_query(handles),
            "max_results": PAGE_SIZE,
            "since_id": str(since_id),
            "expansions": ["author_id"],
            "tweet_fields": ["created_at", "author_id", "entities"],
            "user_fields": ["username"],
            "user_auth": False,
        }
        posts: list[Post] = []
        token: str | None = None
        requests = returned = 0
        newest = since_id
        for _ in range(MAX_PAGES):
            page_params = dict(params)
            if token:
                page_params["next_token"] = token
            body = await self._call("search_recent_tweets", **page_params)
            requests += 1
            data = body.get("data") or []
            meta = body.get("meta") or {}
            includes = body.get("includes") or {}
            if not isinstance(data, list) or not isinstance(meta, dict):
                raise Unavailable("X answered a search in an unexpected shape")
            returned += len(data)
            authors = _authors(includes)
            for item in data:
                author_id = str(item.get("author_id", "")) if isinstance(item, dict) else ""
                handle = authors.get(author_id)
                if not author_id or handle is None:
                    log.warning("skipping a post of an X search without its author")
                    continue
                post = self._to_post(item, Account(author_id, handle, handle))
                if post is None:
                    continue
                posts.append(post)
                newest = max(newest, int(post.external_id))
            token = meta.get("next_token")
            if not token:
                break
            await asyncio.sleep(0)
        posts.sort(key=lambda p: int(p.external_id))
        return Batch(posts=posts, cursor=str(newest), requests=requests, returned=returned)

    async def lookup(self, external_ids: list[str]) -> Lookup:
        """Accounts by id (`GET /2/users`, at most MAX_LOOKUP): which still exist, renamed or
        not, and which are gone (deleted, suspended, or protected and so unreadable)."""
        if not external_ids or len(external_ids) > MAX_LOOKUP:
            raise ValueError(f"cannot look up {len(external_ids)} accounts in one request")
        body = await self._call(
            "get_users", ids=external_ids, user_fields=["protected"], user_auth=False
        )
        found: dict[str, Account] = {}
        gone: dict[str, SourceError] = {}
        for item in body.get("data") or []:
            if not isinstance(item, dict) or "id" not in item or "username" not in item:
                raise Unavailable("X answered a user lookup in an unexpected shape")
            account = Account(
                external_id=str(item["id"]),
                handle=str(item["username"]),
                name=str(item.get("name") or item["username"]),
            )
            if item.get("protected") is True:
                gone[account.external_id] = AccountSuspended(f"@{account.handle} is protected")
            else:
                found[account.external_id] = account
        for error in body.get("errors") or []:
            if not isinstance(error, dict):
                continue
            key = str(error.get("resource_id") or error.get("value") or "")
            if key not in external_ids:
                continue
            detail = str(error.get("detail", ""))
            if "suspended" in detail.lower() or error.get("title") == "Forbidden":
                gone[key] = AccountSuspended(detail)
            elif error.get("type") == NOT_FOUND_TYPE or error.get("title") == "Not Found Error":
                gone[key] = AccountNotFound(detail)
        missing = set(external_ids) - set(found) - set(gone)
        if missing:
            # Neither found nor said to be gone: a partial answer, not a verdict.
            raise Unavailable(f"X's user lookup said nothing of {len(missing)} account(s)")
        return Lookup(found=found, gone=gone)

    @staticmethod
    def _to_post(item: object, account: Account) -> Post | None:
        if not isinstance(item, dict):
            return None
        post_id = str(item.get("id", ""))
        text = item.get("text")
        if not post_id.isdigit() or not isinstance(text, str):
            log.warning("skipping a malformed post from X for @%s", account.handle)
            return None
        return Post(
            external_id=post_id,
            author=account.handle,
            # X API v2 escapes &, < and > in post text; store what the author typed, with the
            # links it wrapped in t.co shown as they were written (the apply link is real).
            text=_expand_links(html.unescape(text), item.get("entities")),
            url=post_url(account.handle, post_id),
            posted_at=_parse_time(item.get("created_at")),
            author_id=account.external_id,
        )


def _authors(includes: object) -> dict[str, str]:
    """Author id -> handle, from a search answer's `includes.users`."""
    users = includes.get("users") if isinstance(includes, dict) else None
    if not isinstance(users, list):
        return {}
    return {
        str(user["id"]): str(user["username"])
        for user in users
        if isinstance(user, dict) and "id" in user and isinstance(user.get("username"), str)
    }
