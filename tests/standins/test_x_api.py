"""Tests of the X API v2 stand-in, driven by the real tweepy AsyncClient."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import tweepy
from tweepy.asynchronous import AsyncClient

from bot.sandbox.x_api import (
    ROUTE_SEARCH_RECENT,
    ROUTE_USER_BY_USERNAME,
    XRequest,
    XStandIn,
)

X_API = "https://api.twitter.com"
INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"


class RewritingSession:
    """Stands in for tweepy's aiohttp session and sends its requests to the stand-in."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        target = str(url)
        if target.startswith(X_API):
            target = self.base_url + target[len(X_API) :]
        return self.session.request(method, target, **kwargs)


def make_client(
    x: XStandIn, http: aiohttp.ClientSession, token: str = "test-bearer", **kwargs: Any
) -> Any:
    kwargs.setdefault("return_type", dict)
    client = AsyncClient(bearer_token=token, wait_on_rate_limit=False, **kwargs)
    client.session = RewritingSession(x.url, http)
    return client


@pytest.fixture
async def x() -> AsyncIterator[XStandIn]:
    async with XStandIn() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(x: XStandIn, http: aiohttp.ClientSession) -> Any:
    return make_client(x, http)


def ids_of(response: dict[str, Any]) -> list[str]:
    return [post["id"] for post in response.get("data", [])]


async def error_body(exc: tweepy.errors.HTTPException) -> Any:
    return await exc.response.json()


# ----------------------------------------------------------------------------- server basics


async def test_start_binds_loopback_and_ids_look_like_snowflakes(x: XStandIn) -> None:
    assert x.port > 0
    assert x.url == f"http://127.0.0.1:{x.port}"
    a, b = x.add_user("alice"), x.add_user("bob")
    assert a != b
    ids = [x.add_post(name, f"post {i}") for i in range(5) for name in ("alice", "bob")]
    old = x.add_post("alice", "an old one", created_at=datetime(2015, 1, 1, tzinfo=UTC))
    ids.append(old)
    assert all(len(post_id) == 19 and post_id.isdigit() for post_id in ids)
    assert [int(post_id) for post_id in ids] == sorted({int(post_id) for post_id in ids})
    with pytest.raises(ValueError, match="taken"):
        x.add_user("ALICE")
    with pytest.raises(KeyError):
        x.add_post("nobody", "hi")


# ----------------------------------------------------------------------------- users by username


async def test_get_user_found_case_insensitive(x: XStandIn, client: Any) -> None:
    user_id = x.add_user("JobsBoard", name="Jobs Board")
    response = await client.get_user(
        username="jobsboard", user_fields=["protected", "created_at", "description"]
    )
    data = response["data"]
    assert data["id"] == user_id
    assert data["username"] == "JobsBoard"
    assert data["name"] == "Jobs Board"
    assert data["protected"] is False
    assert data["description"] == ""
    assert data["created_at"].endswith("Z")
    assert "errors" not in response
    plain = await client.get_user(username="JobsBoard")
    assert plain == {"data": {"id": user_id, "name": "Jobs Board", "username": "JobsBoard"}}


async def test_get_user_unknown_is_200_with_errors(client: Any) -> None:
    response = await client.get_user(username="ghost")
    assert response == {
        "errors": [
            {
                "value": "ghost",
                "detail": "Could not find user with username: [ghost].",
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "username",
                "resource_id": "ghost",
                "type": NOT_FOUND,
            }
        ]
    }


async def test_get_user_suspended_and_deleted(x: XStandIn, client: Any) -> None:
    x.add_user("banned")
    x.suspend_user("banned")
    response = await client.get_user(username="banned")
    (error,) = response["errors"]
    assert "data" not in response
    assert error["title"] == "Forbidden"
    assert error["detail"] == "User has been suspended: [banned]."
    assert error["type"] == NOT_FOUND
    x.add_user("gone")
    x.delete_user("gone")
    response = await client.get_user(username="gone")
    assert response["errors"][0]["title"] == "Not Found Error"


async def test_get_user_bad_handle_is_bad_request(client: Any) -> None:
    with pytest.raises(tweepy.errors.BadRequest) as caught:
        await client.get_user(username="bad-handle")
    body = await error_body(caught.value)
    assert body["title"] == "Invalid Request"
    assert body["type"] == INVALID_REQUEST
    assert body["errors"][0]["parameters"] == {"username": ["bad-handle"]}
    with pytest.raises(tweepy.errors.BadRequest):
        await client.get_user(username="a" * 16)
    with pytest.raises(tweepy.errors.BadRequest, match=r"user\.fields"):
        await client.get_user(username="fine", user_fields=["shoe_size"])


# ----------------------------------------------------------------------------- user timelines


async def test_users_tweets_newest_first_since_id_and_fields(x: XStandIn, client: Any) -> None:
    user_id = x.add_user("acme", name="ACME Corp")
    ids = [
        x.add_post("acme", f"Hiring #python dev {i} https://acme.example/jobs/{i}")
        for i in range(6)
    ]
    response = await client.get_users_tweets(
        user_id,
        since_id=ids[1],
        tweet_fields=["created_at", "author_id", "conversation_id", "entities", "lang"],
        expansions=["author_id"],
        user_fields=["protected"],
    )
    assert ids_of(response) == ids[:1:-1]
    first = response["data"][0]
    assert first["edit_history_tweet_ids"] == [first["id"]]
    assert first["author_id"] == user_id
    assert first["conversation_id"] == first["id"]
    assert first["lang"] == "en"
    assert first["entities"]["hashtags"] == [{"start": 7, "end": 14, "tag": "python"}]
    assert first["entities"]["urls"][0]["expanded_url"] == "https://acme.example/jobs/5"
    assert response["includes"]["users"] == [
        {"id": user_id, "name": "ACME Corp", "username": "acme", "protected": False}
    ]
    assert response["meta"] == {"newest_id": ids[5], "oldest_id": ids[2], "result_count": 4}
    # Nothing newer than the newest: X's empty shape.
    assert await client.get_users_tweets(user_id, since_id=ids[-1]) == {"meta": {"result_count": 0}}


async def test_users_tweets_exclude_replies_and_retweets(x: XStandIn, client: Any) -> None:
    other = x.add_user("other")
    user_id = x.add_user("acme")
    theirs = x.add_post("other", "We need a Rust engineer")
    plain = x.add_post("acme", "Hiring: data analyst")
    reply = x.add_post("acme", "@other DM us", reply_to=theirs)
    repost = x.add_post("acme", "", retweet_of=theirs)
    quote = x.add_post("acme", "Great role!", quote_of=theirs)
    fields = ["referenced_tweets", "in_reply_to_user_id", "conversation_id"]
    everything = await client.get_users_tweets(user_id, tweet_fields=fields)
    assert ids_of(everything) == [quote, repost, reply, plain]
    by_id = {post["id"]: post for post in everything["data"]}
    assert by_id[reply]["referenced_tweets"] == [{"type": "replied_to", "id": theirs}]
    assert by_id[reply]["in_reply_to_user_id"] == other
    assert by_id[reply]["conversation_id"] == theirs
    assert by_id[repost]["text"] == "RT @other: We need a Rust engineer"
    assert by_id[repost]["referenced_tweets"] == [{"type": "retweeted", "id": theirs}]
    assert by_id[quote]["referenced_tweets"] == [{"type": "quoted", "id": theirs}]
    assert "referenced_tweets" not in by_id[plain]
    assert "in_reply_to_user_id" not in by_id[plain]

    filtered = await client.get_users_tweets(user_id, exclude=["replies", "retweets"])
    assert ids_of(filtered) == [quote, plain]
    no_retweets = await client.get_users_tweets(user_id, exclude="retweets")
    assert ids_of(no_retweets) == [quote, reply, plain]

    expanded = await client.get_users_tweets(
        user_id, expansions=["referenced_tweets.id", "referenced_tweets.id.author_id"]
    )
    assert [post["id"] for post in expanded["includes"]["tweets"]] == [theirs]
    assert [user["id"] for user in expanded["includes"]["users"]] == [other]


async def test_users_tweets_time_window(x: XStandIn, client: Any) -> None:
    user_id = x.add_user("acme")
    base = datetime(2025, 3, 1, 12, tzinfo=UTC)
    ids = [x.add_post("acme", f"day {d}", created_at=base + timedelta(days=d)) for d in range(5)]
    response = await client.get_users_tweets(
        user_id, start_time=base + timedelta(days=1), end_time=base + timedelta(days=3)
    )
    assert ids_of(response) == [ids[2], ids[1]]  # start inclusive, end exclusive
    with pytest.raises(tweepy.errors.BadRequest, match="end_time"):
        await client.get_users_tweets(user_id, start_time=base, end_time=base)


async def test_users_tweets_pagination_is_stable_while_posts_arrive(
    x: XStandIn, client: Any
) -> None:
    user_id = x.add_user("busy")
    originals = [x.add_post("busy", f"offer {i}") for i in range(250)]
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        response = await client.get_users_tweets(user_id, max_results=100, pagination_token=token)
        seen.extend(ids_of(response))
        pages += 1
        for i in range(3):
            x.add_post("busy", f"late offer {pages}.{i}")
        token = response["meta"].get("next_token")
        if token is None:
            break
        assert not any(post_id in token for post_id in originals)  # opaque
    assert pages == 3
    assert seen == originals[::-1]
    assert x.posts_returned == 250


async def test_users_tweets_only_last_3200(x: XStandIn, client: Any) -> None:
    user_id = x.add_user("prolific")
    ids = [x.add_post("prolific", f"post {i}") for i in range(3230)]
    seen: list[str] = []
    token = None
    while True:
        response = await client.get_users_tweets(user_id, max_results=100, pagination_token=token)
        seen.extend(ids_of(response))
        token = response["meta"].get("next_token")
        if token is None:
            break
    assert len(seen) == 3200
    assert seen[-1] == ids[30]
    old = await client.get_users_tweets(user_id, until_id=ids[30])
    assert old == {"meta": {"result_count": 0}}


async def test_users_tweets_unknown_deleted_suspended_protected(x: XStandIn, client: Any) -> None:
    response = await client.get_users_tweets("123")
    assert response == {
        "errors": [
            {
                "value": "123",
                "detail": "Could not find user with id: [123].",
                "title": "Not Found Error",
                "resource_type": "user",
                "parameter": "id",
                "resource_id": "123",
                "type": NOT_FOUND,
            }
        ]
    }
    gone = x.add_user("gone")
    x.add_post("gone", "bye")
    x.delete_user("gone")
    response = await client.get_users_tweets(gone)
    assert response["errors"][0]["detail"] == f"Could not find user with id: [{gone}]."
    banned = x.add_user("banned")
    x.suspend_user("banned")
    response = await client.get_users_tweets(banned)
    assert response["errors"][0]["title"] == "Forbidden"
    assert response["errors"][0]["detail"] == f"User has been suspended: [{banned}]."
    private = x.add_user("private", protected=True)
    response = await client.get_users_tweets(private)
    assert response["errors"][0]["title"] == "Authorization Error"
    assert "data" not in response


async def test_users_tweets_parameter_validation(x: XStandIn, client: Any) -> None:
    user_id = x.add_user("acme")
    with pytest.raises(tweepy.errors.BadRequest) as caught:
        await client.get_users_tweets(user_id, max_results=3)
    assert await error_body(caught.value) == {
        "errors": [
            {
                "parameters": {"max_results": ["3"]},
                "message": "The `max_results` query parameter value [3] is not between 5 and 100",
            }
        ],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": INVALID_REQUEST,
    }
    with pytest.raises(tweepy.errors.BadRequest, match="exclude"):
        await client.get_users_tweets(user_id, exclude=["quotes"])
    with pytest.raises(tweepy.errors.BadRequest, match="since_id"):
        await client.get_users_tweets(user_id, since_id="latest")
    with pytest.raises(tweepy.errors.BadRequest, match="pagination_token"):
        await client.get_users_tweets(user_id, pagination_token="garbage")
    # A token is only valid for the timeline it was issued for.
    other = x.add_user("other")
    for i in range(12):
        x.add_post("acme", f"post {i}")
    token = (await client.get_users_tweets(user_id))["meta"]["next_token"]
    with pytest.raises(tweepy.errors.BadRequest, match="pagination_token"):
        await client.get_users_tweets(other, pagination_token=token)


# ----------------------------------------------------------------------------- recent search


async def test_search_from_or_excluding_retweets_and_replies(x: XStandIn, client: Any) -> None:
    a, b = x.add_user("a"), x.add_user("b")
    x.add_user("c")
    a1 = x.add_post("a", "Job: backend dev")
    c1 = x.add_post("c", "Job: frontend dev")
    b1 = x.add_post("b", "Job: designer")
    x.add_post("a", "", retweet_of=c1)
    x.add_post("b", "apply by DM", reply_to=b1)
    a2 = x.add_post("a", "Look at this", quote_of=c1)
    x.add_post("c", "Job: QA")
    response = await client.search_recent_tweets(
        "(from:a OR from:b) -is:retweet -is:reply",
        tweet_fields=["author_id", "created_at"],
        expansions=["author_id"],
        user_fields=["username"],
    )
    assert ids_of(response) == [a2, b1, a1]
    assert {post["author_id"] for post in response["data"]} == {a, b}
    assert sorted(user["username"] for user in response["includes"]["users"]) == ["a", "b"]
    assert response["meta"] == {"newest_id": a2, "oldest_id": a1, "result_count": 3}


async def test_search_keywords_window_and_hidden_authors(x: XStandIn, client: Any) -> None:
    for name in ("acme", "old", "banned", "gone", "private"):
        x.add_user(name, protected=name == "private")
    now = datetime.now(UTC)
    match1 = x.add_post(
        "acme", "Senior PYTHON developer, remote", created_at=now - timedelta(days=6)
    )
    x.add_post("acme", "Pythonic ideas, nothing to see")
    match2 = x.add_post("acme", "python: junior role in Berlin")
    x.add_post("old", "python job", created_at=now - timedelta(days=8))
    for name in ("banned", "gone", "private"):
        x.add_post(name, "python job")
    x.suspend_user("banned")
    x.delete_user("gone")
    response = await client.search_recent_tweets("python")
    assert ids_of(response) == [match2, match1]
    # AND binds tighter than OR; quoted phrases and negated keywords work.
    assert ids_of(await client.search_recent_tweets("python remote OR berlin")) == [match2, match1]
    assert ids_of(await client.search_recent_tweets("python -remote")) == [match2]
    assert ids_of(await client.search_recent_tweets('"junior role"')) == [match2]
    assert ids_of(await client.search_recent_tweets("from:ACME senior")) == [match1]
    assert await client.search_recent_tweets("from:nobody") == {"meta": {"result_count": 0}}
    since = await client.search_recent_tweets("python", since_id=match1)
    assert ids_of(since) == [match2]


async def test_search_pagination_with_next_token(
    x: XStandIn, client: Any, http: aiohttp.ClientSession
) -> None:
    x.add_user("acme")
    posts = [x.add_post("acme", f"job {i}") for i in range(25)]
    seen: list[str] = []
    token = None
    while True:
        response = await client.search_recent_tweets("job", max_results=10, next_token=token)
        seen.extend(ids_of(response))
        x.add_post("acme", "job fresh")
        token = response["meta"].get("next_token")
        if token is None:
            break
    assert seen == posts[::-1]
    # X's search takes next_token; pagination_token is rejected (sent raw: tweepy would warn).
    async with http.get(
        f"{x.url}/2/tweets/search/recent",
        params={"query": "job", "pagination_token": "abc"},
        headers={"Authorization": "Bearer test-bearer"},
    ) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["errors"][0]["parameters"] == {"pagination_token": ["abc"]}


async def test_search_validation(x: XStandIn, client: Any) -> None:
    x.add_user("a")
    ok_query = "from:a " + "x" * (512 - len("from:a "))
    assert len(ok_query) == 512
    assert await client.search_recent_tweets(ok_query) == {"meta": {"result_count": 0}}
    with pytest.raises(tweepy.errors.BadRequest) as caught:
        await client.search_recent_tweets(ok_query + "y")
    assert (await error_body(caught.value))["errors"][0]["parameters"] == {
        "query": [ok_query + "y"]
    }
    with pytest.raises(tweepy.errors.BadRequest, match="not between 10 and 100"):
        await client.search_recent_tweets("jobs", max_results=5)
    with pytest.raises(tweepy.errors.BadRequest, match="non-negation"):
        await client.search_recent_tweets("-is:retweet")
    with pytest.raises(tweepy.errors.BadRequest, match="parenthesis"):
        await client.search_recent_tweets("(from:a OR from:b")
    with pytest.raises(tweepy.errors.BadRequest, match="invalid operator"):
        await client.search_recent_tweets("jobs place_country:US")
    with pytest.raises(tweepy.errors.BadRequest, match="start_time"):
        await client.search_recent_tweets("jobs", start_time=datetime.now(UTC) - timedelta(days=8))


# ----------------------------------------------------------------------------- errors and limits


async def test_wrong_bearer_is_unauthorized(x: XStandIn, http: aiohttp.ClientSession) -> None:
    client = make_client(x, http, token="not-the-token")
    with pytest.raises(tweepy.errors.Unauthorized) as caught:
        await client.get_user(username="someone")
    assert await error_body(caught.value) == {
        "title": "Unauthorized",
        "type": "about:blank",
        "status": 401,
        "detail": "Unauthorized",
    }
    assert x.requests[-1].status == 401


async def test_fail_next_503_then_recovers(x: XStandIn, client: Any) -> None:
    x.add_user("acme")
    x.fail_next(503)
    with pytest.raises(tweepy.errors.TwitterServerError) as caught:
        await client.get_user(username="acme")
    assert await error_body(caught.value) == {
        "title": "Service Unavailable",
        "detail": "Service Unavailable",
        "type": "about:blank",
        "status": 503,
    }
    assert (await client.get_user(username="acme"))["data"]["username"] == "acme"
    assert [request.status for request in x.requests] == [503, 200]


async def test_fail_next_scoped_by_path_and_count(x: XStandIn, client: Any) -> None:
    x.add_user("acme")
    x.fail_next(502, count=2, path_prefix="/2/tweets/search")
    assert "data" in await client.get_user(username="acme")
    for _ in range(2):
        with pytest.raises(tweepy.errors.TwitterServerError):
            await client.search_recent_tweets("jobs")
    assert await client.search_recent_tweets("jobs") == {"meta": {"result_count": 0}}
    assert x.request_count("/2/tweets/search/recent") == 3
    assert x.request_count() == 4


async def test_fail_next_scoped_to_later_pages(x: XStandIn, client: Any) -> None:
    user_id = x.add_user("acme")
    for i in range(8):
        x.add_post("acme", f"post {i}")
    x.fail_next(503, param="pagination_token")
    first = await client.get_users_tweets(user_id, max_results=5)
    assert len(first["data"]) == 5
    token = first["meta"]["next_token"]
    with pytest.raises(tweepy.errors.TwitterServerError):
        await client.get_users_tweets(user_id, max_results=5, pagination_token=token)
    second = await client.get_users_tweets(user_id, max_results=5, pagination_token=token)
    assert len(second["data"]) == 3
    assert [request.status for request in x.requests] == [200, 503, 200]


async def test_fail_next_plain_text_body(
    x: XStandIn, client: Any, http: aiohttp.ClientSession
) -> None:
    x.fail_next(503, content_type="text/plain")
    async with http.get(f"{x.url}/2/users/by/username/acme") as resp:
        assert resp.status == 503
        assert resp.content_type == "text/plain"
        assert await resp.text() == "Service Unavailable"
    # tweepy parses every error body as JSON, so a client sees aiohttp's decoding error.
    x.fail_next(503, content_type="text/plain")
    with pytest.raises(aiohttp.ContentTypeError):
        await client.get_user(username="acme")


async def test_fail_next_429_carries_reset(x: XStandIn, client: Any) -> None:
    x.add_user("acme")
    x.fail_next(429, reset_in=30)
    before = time.time()
    with pytest.raises(tweepy.errors.TooManyRequests) as caught:
        await client.get_user(username="acme")
    headers = caught.value.response.headers
    assert headers["x-rate-limit-remaining"] == "0"
    assert headers["x-rate-limit-limit"] == "300"
    assert before + 29 <= int(headers["x-rate-limit-reset"]) <= time.time() + 31
    assert caught.value.reset_time == int(headers["x-rate-limit-reset"])
    assert (await error_body(caught.value))["title"] == "Too Many Requests"
    assert x.requests[-1].status == 429


async def test_usage_capped_is_distinguishable(x: XStandIn, client: Any) -> None:
    x.fail_next(429, usage_capped=True)
    with pytest.raises(tweepy.errors.TooManyRequests) as caught:
        await client.search_recent_tweets("jobs")
    assert caught.value.api_messages == ["Usage cap exceeded: Monthly product cap"]
    assert await error_body(caught.value) == {
        "title": "UsageCapExceeded",
        "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped",
        "period": "Monthly",
        "scope": "Product",
    }


async def test_rate_limit_exhaustion(x: XStandIn, http: aiohttp.ClientSession) -> None:
    x.add_user("acme")
    x.limits[ROUTE_USER_BY_USERNAME] = 3
    raw_client = make_client(x, http, return_type=aiohttp.ClientResponse)
    remaining = []
    for _ in range(3):
        response = await raw_client.get_user(username="acme")
        assert response.status == 200
        remaining.append(response.headers["x-rate-limit-remaining"])
        assert response.headers["x-rate-limit-limit"] == "3"
    assert remaining == ["2", "1", "0"]
    client = make_client(x, http)
    with pytest.raises(tweepy.errors.TooManyRequests) as caught:
        await client.get_user(username="acme")
    assert caught.value.reset_time is not None
    assert 0 < caught.value.reset_time - time.time() <= 15 * 60 + 1
    assert await error_body(caught.value) == {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    # Other endpoints have their own window.
    assert await client.search_recent_tweets("jobs") == {"meta": {"result_count": 0}}
    x.reset_rate_limits()
    assert "data" in await client.get_user(username="acme")


async def test_rate_limits_can_be_disabled(http: aiohttp.ClientSession) -> None:
    async with XStandIn(rate_limits=False) as x:
        x.limits[ROUTE_SEARCH_RECENT] = 1
        client = make_client(x, http)
        for _ in range(3):
            assert await client.search_recent_tweets("jobs") == {"meta": {"result_count": 0}}


async def test_requests_and_posts_returned_are_counted(x: XStandIn, client: Any) -> None:
    user_id = x.add_user("acme")
    for i in range(15):
        x.add_post("acme", f"job {i}")
    await client.get_user(username="acme")
    await client.get_users_tweets(user_id, max_results=5)
    await client.search_recent_tweets("job", max_results=12)
    with pytest.raises(tweepy.errors.BadRequest):
        await client.search_recent_tweets("job", max_results=500)
    assert x.posts_returned == 17
    assert x.request_count() == 4
    assert x.request_count("/2/users/") == 2
    last = x.requests[-1]
    assert isinstance(last, XRequest)
    assert (last.method, last.path, last.status) == ("GET", "/2/tweets/search/recent", 400)
    assert last.params == {"query": "job", "max_results": "500"}
    assert x.requests[0].at <= last.at <= time.time()
    x.clear_requests()
    assert (x.request_count(), x.posts_returned) == (0, 0)


async def test_set_delay(x: XStandIn, client: Any) -> None:
    x.set_delay(0.2)
    started = asyncio.get_running_loop().time()
    await client.get_user(username="acme")
    assert asyncio.get_running_loop().time() - started >= 0.2
    x.set_delay(0)


async def test_links_are_served_as_t_co_with_the_originals_in_entities(
    x: XStandIn, client: Any
) -> None:
    user_id = x.add_user("acme_jobs")
    x.add_post(
        "acme_jobs",
        "Apply: https://jobs.acme.example/o/1#top & https://acme.example/a?b=1 #job @acme_jobs",
    )
    response = await client.get_users_tweets(user_id, tweet_fields=["entities"])
    post = response["data"][0]
    assert "jobs.acme.example" not in post["text"]
    urls = post["entities"]["urls"]
    assert [u["expanded_url"] for u in urls] == [
        "https://jobs.acme.example/o/1#top",
        "https://acme.example/a?b=1",
    ]
    served = post["text"].replace("&amp;", "&")
    for entry in urls:
        assert entry["url"].startswith("https://t.co/")
        assert served[entry["start"] : entry["end"]] == entry["url"]
    # Hashtags and mentions are placed in the served text too (none inside a link).
    tags = post["entities"]["hashtags"]
    assert [served[h["start"] : h["end"]] for h in tags] == ["#job"]
    mentions = post["entities"]["mentions"]
    assert [served[m["start"] : m["end"]] for m in mentions] == ["@acme_jobs"]


def test_the_x_adapter_shows_the_links_the_author_wrote() -> None:
    from bot.sources.x import _expand_links

    entities = {
        "urls": [
            {"url": "https://t.co/a1", "expanded_url": "https://jobs.acme.example/o/1"},
            {
                "url": "https://t.co/p2",
                "expanded_url": "https://x.com/a/photo/1",
                "media_key": "3_1",
            },
            {"url": "https://t.co/x3", "expanded_url": "javascript:alert(1)"},
        ]
    }
    text = "Apply: https://t.co/a1 now https://t.co/x3 https://t.co/p2"
    assert _expand_links(text, entities) == (
        "Apply: https://jobs.acme.example/o/1 now https://t.co/x3"
    )
    assert _expand_links(text, None) == text
    # An empty or missing short link changes nothing; one link that begins another never cuts
    # it; an expanded link is never expanded again.
    tricky = {
        "urls": [
            {"url": "", "expanded_url": "https://evil.example"},
            {"expanded_url": "https://evil.example"},
            {"url": "https://t.co/a1", "expanded_url": "https://jobs.example/https://t.co/a12"},
            {"url": "https://t.co/a12", "expanded_url": "https://jobs.example/2"},
        ]
    }
    assert _expand_links("1: https://t.co/a1 2: https://t.co/a12", tricky) == (
        "1: https://jobs.example/https://t.co/a12 2: https://jobs.example/2"
    )
