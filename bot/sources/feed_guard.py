"""Feeds are fetched from addresses users type: every request, redirects included, goes only
to a public address, and to the very address that was checked (no DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import urlsplit

import httpx

from bot.sources.feed_errors import FeedRefused, FeedUnreachable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SHARED_V4 = ipaddress.IPv4Network("100.64.0.0/10")
NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
DEFAULT_PORTS = {"http": 80, "https": 443}
# TLS connections are pooled per host name: a connection opened (and verified) for one name
# must never carry a request for another name that resolves to the same address.
MAX_TLS_POOLS = 32
HOST_MAP_FORMAT = (
    "expected comma-separated host=http://IP:PORT pairs, "
    "e.g. jobs.example=http://127.0.0.1:8080,bsky.app=http://127.0.0.1:8080"
)


def is_public_address(ip: IPAddress) -> bool:
    """Whether a feed may be fetched from this address: not private, loopback, link-local,
    multicast, reserved, unspecified, shared (100.64/10), site-local nor unique-local, nor an
    IPv6 form (mapped, 6to4, NAT64, Teredo) of such an IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return is_public_address(ip.sixtofour)
        if ip.teredo is not None:
            return is_public_address(ip.teredo[1])
        if any(ip in prefix for prefix in NAT64_PREFIXES):
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.is_site_local:
            return False
    elif ip in SHARED_V4:
        return False
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


async def resolve_public(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses `host` resolves to (as the system resolver reads it: `127.1` and
    `2130706433` are loopback too); FeedRefused("private") when any of them is not public."""
    host = host.removeprefix("[").removesuffix("]")
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FeedUnreachable("host name does not resolve") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise FeedUnreachable("host name does not resolve")
    if not allow_private:
        for address in addresses:
            # A scoped IPv6 address (fe80::1%eth0) is link-local anyway.
            if not is_public_address(ipaddress.ip_address(address.partition("%")[0])):
                raise FeedRefused("private")
    return addresses


def parse_host_map(value: str) -> dict[str, str]:
    """The FEED_HOSTS setting: `host=http://IP:PORT` pairs, comma-separated, that send a
    host's requests elsewhere (the sandbox and tests route feed hosts to local servers)."""
    routes: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        host, equals, target = (part.strip() for part in item.partition("="))
        if not equals or not host or any(char in host for char in "/:@ "):
            raise ValueError(f"FEED_HOSTS: bad entry {item!r}; {HOST_MAP_FORMAT}")
        try:
            parts = urlsplit(target)
            parts.port  # noqa: B018 (raises ValueError on a bad port)
        except ValueError:
            raise ValueError(f"FEED_HOSTS: bad target {target!r}; {HOST_MAP_FORMAT}") from None
        if (
            parts.scheme not in DEFAULT_PORTS
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ValueError(f"FEED_HOSTS: bad target {target!r}; {HOST_MAP_FORMAT}")
        routes[host.lower()] = target.rstrip("/")
    return routes


class GuardedTransport(httpx.AsyncBaseTransport):
    """Sends each request to a checked address of its (possibly re-routed) host: the URL is
    rewritten to that IP while the Host header and the TLS server name stay the host's."""

    def __init__(
        self, *, allow_private: bool = False, host_map: Mapping[str, str] | None = None
    ) -> None:
        self._allow_private = allow_private
        self._routes = {host.lower(): httpx.URL(url) for host, url in (host_map or {}).items()}
        self._plain = httpx.AsyncHTTPTransport(retries=0)
        self._tls: OrderedDict[str, httpx.AsyncHTTPTransport] = OrderedDict()
        self._busy: dict[str, int] = {}
        self.sent = 0

    async def _tls_transport(self, server_name: str) -> httpx.AsyncHTTPTransport:
        """The pool of one TLS server name; the least recently used idle pools are closed
        beyond MAX_TLS_POOLS."""
        transport = self._tls.pop(server_name, None) or httpx.AsyncHTTPTransport(retries=0)
        self._tls[server_name] = transport
        idle = [name for name in self._tls if not self._busy.get(name)]
        for name in idle[: max(len(self._tls) - MAX_TLS_POOLS, 0)]:
            await self._tls.pop(name).aclose()
        return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check, re-route and send one request."""
        url = request.url
        host = url.raw_host.decode("ascii").lower()
        route = self._routes.get(host)
        target = route if route is not None else url
        scheme = target.scheme
        if scheme not in DEFAULT_PORTS:
            raise FeedRefused("scheme")
        port = target.port or DEFAULT_PORTS[scheme]
        addresses = await resolve_public(
            target.raw_host.decode("ascii"), port, allow_private=self._allow_private
        )
        # A copy: the client keeps its own request, with the host's URL (for relative
        # redirects and cookies); the copy keeps the Host header it was built with.
        extensions = dict(request.extensions)
        if scheme == "https":
            extensions["sni_hostname"] = host
        request = httpx.Request(
            request.method,
            url.copy_with(scheme=scheme, host=addresses[0], port=port),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        self.sent += 1
        if scheme != "https":
            return await self._plain.handle_async_request(request)
        self._busy[host] = self._busy.get(host, 0) + 1
        try:
            transport = await self._tls_transport(host)
            response = await transport.handle_async_request(request)
        except BaseException:
            self._release(host)
            raise
        # The pool stays busy (never closed by eviction) until the body is read or closed.
        assert isinstance(response.stream, httpx.AsyncByteStream)
        stream = _ReleasingStream(response.stream, lambda: self._release(host))
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=stream,
            extensions=response.extensions,
        )

    def _release(self, host: str) -> None:
        self._busy[host] -= 1
        if not self._busy[host]:
            del self._busy[host]

    async def aclose(self) -> None:
        """Close every pool."""
        await self._plain.aclose()
        while self._tls:
            await self._tls.popitem()[1].aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that calls `release` once when closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        """Close the body, then release its pool."""
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
