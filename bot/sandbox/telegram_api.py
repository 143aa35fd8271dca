"""Local stand-in for the Telegram Bot API that speaks the real wire protocol.

The real python-telegram-bot runs unchanged against it::

    async with TelegramStandIn() as standin:
        app = (
            ApplicationBuilder()
            .token(standin.token)
            .base_url(standin.base_url)
            .base_file_url(standin.base_file_url)
            .build()
        )

The stand-in plays both sides of Telegram: tests act as users through
:meth:`TelegramStandIn.send_message` / :meth:`TelegramStandIn.press_button`
(which become ``getUpdates`` results) and observe the bot through
:attr:`TelegramStandIn.sent`, :meth:`TelegramStandIn.wait_for_messages` and
:attr:`TelegramStandIn.stats`.  Faults (blocked users, migrated groups, flood
limits, gateway errors, outages of every method, hangs) can be switched on at run time.

Chat membership of the bot itself is modelled too: :meth:`TelegramStandIn.set_bot_status`
changes it and queues the ``my_chat_member`` update Telegram sends.  By default the bot is a
``member`` of private chats and groups and an ``administrator`` of channels (so a test can post
to a channel without setting anything up).  Writes fail like on Telegram while the bot is
``left``/``kicked``, in a channel unless it is an administrator, and pinning needs admin rights.
Forum topics (:meth:`TelegramStandIn.add_topic`), anonymous group admins
(``send_message(..., anonymous_admin=True)``) and flood observation
(:meth:`TelegramStandIn.max_sends_in_window`, :attr:`TelegramStandIn.flood_errors`) complete it.

It validates outgoing HTML exactly as Telegram documents it, see
:func:`parse_telegram_html`, and never logs the bot token.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import json
import logging
import math
import re
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.config import is_loopback_host

__all__ = [
    "GROUP_ANONYMOUS_BOT_ID",
    "MAX_DOWNLOAD_BYTES",
    "SentMessage",
    "TelegramHTMLError",
    "TelegramStandIn",
    "parse_telegram_html",
    "parse_telegram_html_with_entities",
    "utf16_length",
]

LOGGER: Final = logging.getLogger(__name__)

JSONDict = dict[str, Any]

MAX_MESSAGE_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES: Final = 20 * 1024 * 1024
"""The largest file ``getFile`` hands a bot (Telegram's limit for bots' downloads)."""
GLOBAL_SENDS_PER_SECOND: Final = 30
GROUP_SENDS_PER_MINUTE: Final = 20
DEFAULT_GROUP_USER_ID: Final = 1000
GROUP_ANONYMOUS_BOT_ID: Final = 1087968824
"""The ``from`` user of messages an anonymous group admin writes (Telegram's GroupAnonymousBot)."""
FORUM_TOPIC_ICON_COLOR: Final = 7322096  # Telegram's default (blue) topic icon colour
WEBHOOK_SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
WEBHOOK_CONFLICT: Final = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_WEBHOOK_PORTS: Final = frozenset({80, 88, 443, 8443})
_WEBHOOK_SECRET_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --------------------------------------------------------------------------------------------
# Telegram-flavoured HTML
# --------------------------------------------------------------------------------------------

_ALLOWED_TAGS: Final = _words(
    "a b blockquote code del em i ins pre s span strike strong tg-emoji tg-spoiler u"
)
_TAG_ENTITY_TYPES: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_NAMED_ENTITIES: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES: Final = frozenset(" \t\r\n\v\f")
_NAME_TOKEN_CHARS: Final = frozenset(string.ascii_letters + string.digits + ".-")
_SPECIAL_RE: Final = re.compile(r"[<&]")
_ENTITY_RE: Final = re.compile(
    r"&(?:#[xX](?P<hex>[0-9A-Fa-f]{1,8});|#(?P<dec>[0-9]{1,10});|(?P<name>[A-Za-z][A-Za-z0-9]*);)"
)
_LANGUAGE_KEY: Final = "_language"


class TelegramHTMLError(ValueError):
    """Text that Telegram would reject with "can't parse entities"."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        self.description = f"Bad Request: can't parse entities: {detail}"
        super().__init__(self.description)


@dataclass(slots=True)
class _OpenTag:
    name: str
    argument: str | None
    offset: int  # in UTF-16 code units of the plain text


def utf16_length(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _entity_char(match: re.Match[str]) -> str | None:
    """Decode one matched entity; None if it is an unsupported name or invalid number."""
    name = match.group("name")
    if name is not None:
        return _NAMED_ENTITIES.get(name)
    hex_digits = match.group("hex")
    code = int(hex_digits, 16) if hex_digits is not None else int(match.group("dec"))
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _decode_text_entity(text: str, pos: int) -> tuple[str, int]:
    match = _ENTITY_RE.match(text, pos)
    if match is None:
        raise TelegramHTMLError(
            f'Character "&" at byte offset {_byte_offset(text, pos)} must be escaped as "&amp;"'
        )
    char = _entity_char(match)
    if char is None:
        offset = _byte_offset(text, pos)
        name = match.group("name")
        if name is not None:
            raise TelegramHTMLError(f'Unsupported entity "{name}" at byte offset {offset}')
        raise TelegramHTMLError(
            f'Invalid numeric entity "{match.group(0)}" at byte offset {offset}'
        )
    return char, match.end()


def _decode_attribute(raw: str) -> str:
    """Decode entities inside a quoted attribute value; like Telegram, keep bare '&' as is."""
    if "&" not in raw:
        return raw
    return _ENTITY_RE.sub(lambda m: _entity_char(m) or m.group(0), raw)


def _open_tag(text: str, begin: int, utf16_offset: int) -> tuple[_OpenTag, int]:
    """Parse the start tag at ``text[begin] == '<'``; return it and the index after '>'."""
    n = len(text)
    j = begin + 1
    while j < n and text[j] not in _SPACES and text[j] != ">":
        j += 1

    def fail(message: str) -> TelegramHTMLError:
        return TelegramHTMLError(f"{message} at byte offset {_byte_offset(text, begin)}")

    if j >= n:
        raise fail("Unclosed start tag")
    name = text[begin + 1 : j].lower()
    if name not in _ALLOWED_TAGS:
        raise fail(f'Unsupported start tag "{name}"')

    attributes: dict[str, str] = {}
    while True:
        while j < n and text[j] in _SPACES:
            j += 1
        if j >= n:
            raise fail("Unclosed start tag")
        if text[j] == ">":
            break
        name_begin = j
        while j < n and text[j] not in _SPACES and text[j] != "=" and text[j] != ">":
            j += 1
        attribute = text[name_begin:j].lower()
        if not attribute:
            raise fail(f'Empty attribute name in the tag "{name}"')
        while j < n and text[j] in _SPACES:
            j += 1
        if j >= n:
            raise fail("Unclosed start tag")
        if text[j] != "=":
            attributes[attribute] = ""  # attribute without a value, e.g. "expandable"
            continue
        j += 1
        while j < n and text[j] in _SPACES:
            j += 1
        if j >= n:
            raise fail("Unclosed start tag")
        quote = text[j]
        if quote in "\"'":
            end = text.find(quote, j + 1)
            if end < 0:
                raise fail("Unclosed start tag")
            value = _decode_attribute(text[j + 1 : end])
            j = end + 1
        else:
            token_begin = j
            while j < n and text[j] in _NAME_TOKEN_CHARS:
                j += 1
            if j >= n:
                raise fail("Unclosed start tag")
            if text[j] not in _SPACES and text[j] != ">":
                raise TelegramHTMLError(
                    f"Unexpected end of name token at byte offset {_byte_offset(text, token_begin)}"
                )
            value = text[token_begin:j].lower()
        attributes[attribute] = value

    argument: str | None = None
    if name == "a":
        argument = attributes.get("href")
        if not argument:
            raise fail('Tag "a" must have a non-empty "href" attribute')
    elif name == "span":
        if attributes.get("class") != "tg-spoiler":
            raise fail('Tag "span" must have class "tg-spoiler"')
    elif name == "tg-emoji":
        argument = attributes.get("emoji-id", "")
        if not argument.isdigit() or int(argument) == 0:
            raise fail("Custom emoji entity must contain a valid custom emoji identifier")
    elif name == "code":
        css_class = attributes.get("class", "")
        if css_class.startswith("language-") and len(css_class) > len("language-"):
            argument = css_class[len("language-") :]
    elif name == "blockquote" and "expandable" in attributes:
        argument = "expandable"
    return _OpenTag(name, argument, utf16_offset), j + 1


def _close_tag(
    text: str, begin: int, stack: list[_OpenTag], entities: list[JSONDict], utf16_offset: int
) -> int:
    """Parse the end tag at ``text[begin:begin+2] == '</'``; return the index after '>'."""
    if not stack:
        raise TelegramHTMLError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
    n = len(text)
    j = begin + 2
    while j < n and text[j] not in _SPACES and text[j] != ">":
        j += 1
    end_name = text[begin + 2 : j].lower()
    while j < n and text[j] in _SPACES:
        j += 1
    if j >= n or text[j] != ">":
        raise TelegramHTMLError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
    tag = stack.pop()
    if end_name and end_name != tag.name:
        raise TelegramHTMLError(
            f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
            f'expected "</{tag.name}>", found "</{end_name}>"'
        )
    length = utf16_offset - tag.offset
    if length > 0:
        entities.append(_make_entity(tag, length, entities))
    return j + 1


def _make_entity(tag: _OpenTag, length: int, entities: list[JSONDict]) -> JSONDict:
    entity: JSONDict = {"type": _TAG_ENTITY_TYPES[tag.name], "offset": tag.offset, "length": length}
    if tag.name == "a":
        entity["url"] = tag.argument
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.argument
    elif tag.name == "code" and tag.argument:
        entity[_LANGUAGE_KEY] = tag.argument
    elif tag.name == "blockquote" and tag.argument:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "pre" and entities:
        inner = entities[-1]
        if (
            inner["type"] == "code"
            and inner["offset"] == tag.offset
            and inner["length"] == length
            and _LANGUAGE_KEY in inner
        ):
            entities.pop()
            entity["language"] = inner[_LANGUAGE_KEY]
    return entity


def parse_telegram_html_with_entities(text: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram HTML into plain text and Bot API message entities (UTF-16 offsets)."""
    out: list[str] = []
    entities: list[JSONDict] = []
    stack: list[_OpenTag] = []
    utf16_offset = 0
    n = len(text)
    i = 0
    while i < n:
        match = _SPECIAL_RE.search(text, i)
        stop = n if match is None else match.start()
        if stop > i:
            chunk = text[i:stop]
            out.append(chunk)
            utf16_offset += utf16_length(chunk)
        if match is None:
            break
        if text[stop] == "&":
            char, i = _decode_text_entity(text, stop)
            out.append(char)
            utf16_offset += 1 if ord(char) <= 0xFFFF else 2
        elif stop + 1 < n and text[stop + 1] == "/":
            i = _close_tag(text, stop, stack, entities, utf16_offset)
        else:
            tag, i = _open_tag(text, stop, utf16_offset)
            stack.append(tag)
    if stack:
        raise TelegramHTMLError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"'
        )
    for entity in entities:
        entity.pop(_LANGUAGE_KEY, None)  # a language only counts on <pre><code>
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def parse_telegram_html(text: str) -> str:
    """Validate Telegram HTML and return its plain text; raise TelegramHTMLError if invalid."""
    return parse_telegram_html_with_entities(text)[0]


# --------------------------------------------------------------------------------------------
# Observation records
# --------------------------------------------------------------------------------------------


@dataclass
class SentMessage:
    """One outgoing message (or edit) the stand-in accepted from the bot."""

    chat_id: int
    message_id: int
    text: str  # raw HTML/plain text as sent; for media the raw caption or ""
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    message_thread_id: int | None
    method: str
    date: float
    disable_web_page_preview: bool
    file_bytes: bytes | None = None
    caption: str | None = None
    file_name: str | None = None  # for documents: the name the bot gave the file
    mime_type: str | None = None
    plain_text: str = ""  # text/caption after entity parsing (tags removed, entities decoded)
    entities: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Webhook:
    """The webhook set with setWebhook, and how its deliveries went."""

    url: str
    secret_token: str | None
    allowed_updates: frozenset[str] | None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(slots=True)
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None
    mime_type: str | None


class _ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class _Abandoned(Exception):
    """A delayed call whose client hung up, dropped (see TelegramStandIn.set_delay)."""


class _Pulse:
    """Wakes every coroutine waiting on it; costs nothing when nobody waits."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        event = self._event
        if event is None:
            return
        self._event = None
        loop = self.loop
        try:
            in_loop = loop is None or asyncio.get_running_loop() is loop
        except RuntimeError:
            in_loop = False
        if in_loop or loop is None:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109
        if self._event is None:
            self._event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


Params = dict[str, Any]
Uploads = dict[str, tuple[str | None, bytes, str | None]]
_Handler = Callable[[Params, Uploads], Awaitable[Any]]

_MEMBER_STATUSES: Final = frozenset(
    {"creator", "administrator", "member", "left", "kicked", "restricted"}
)
_BOT_STATUSES: Final = {
    "private": frozenset({"member", "kicked"}),
    "group": frozenset({"administrator", "member", "left", "kicked", "restricted"}),
    "supergroup": frozenset({"administrator", "member", "left", "kicked", "restricted"}),
    "channel": frozenset({"administrator", "member", "left", "kicked"}),
}
_SEND_RIGHTS_WORDING: Final = {
    "sendMessage": "text messages",
    "sendPhoto": "photos",
    "sendDocument": "documents",
}
_DEFAULT_UPDATE_TYPES_EXCLUDED: Final = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)
_CHAT_ACTIONS: Final = _words(
    "typing upload_photo record_video upload_video record_voice upload_voice upload_document"
    " choose_sticker find_location record_video_note upload_video_note"
)
_ADMIN_RIGHTS: Final = _words(
    "can_manage_chat can_delete_messages can_manage_video_chats can_restrict_members"
    " can_promote_members can_change_info can_invite_users can_post_stories can_edit_stories"
    " can_delete_stories can_pin_messages"
)
_RESTRICTED_RIGHTS: Final = _words(
    "can_change_info can_invite_users can_pin_messages can_send_messages can_send_polls"
    " can_send_other_messages can_add_web_page_previews can_manage_topics can_send_audios"
    " can_send_documents can_send_photos can_send_videos can_send_video_notes"
    " can_send_voice_notes can_edit_tag can_react_to_messages"
)
_COMMAND_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
_BOT_COMMAND_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,64})?")
_LANGUAGE_RE: Final = re.compile(r"[a-z]{2}")
# The HTTP request being handled (each aiohttp request runs in its own task), so a delayed
# send can tell whether its client hung up meanwhile.
_CURRENT_REQUEST: Final[contextvars.ContextVar[web.Request | None]] = contextvars.ContextVar(
    "telegram_standin_request", default=None
)


# --------------------------------------------------------------------------------------------
# Request parameter helpers
# --------------------------------------------------------------------------------------------


def _param_str(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _param_int(params: Params, name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _ApiError(400, f"Bad Request: {name} is empty")
        return None
    if isinstance(value, bool):
        raise _ApiError(400, f"Bad Request: invalid {name} specified")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise _ApiError(400, f"Bad Request: invalid {name} specified") from None


def _param_float(params: Params, name: str) -> float | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _ApiError(400, f"Bad Request: invalid {name} specified") from None


def _param_bool(params: Params, name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def _param_json(params: Params, name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        if not value:
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    return value


async def _read_params(request: web.Request) -> tuple[Params, Uploads]:
    """Collect parameters from the query string and a JSON, form or multipart body."""
    params: Params = dict(request.query)
    uploads: Uploads = {}
    if request.body_exists:
        content_type = request.content_type
        if content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError(400, "Bad Request: can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: JSON object expected")
            params.update(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    uploads[key] = (value.filename, value.file.read(), value.content_type)
                else:
                    params[key] = value
    return params, uploads


def _json_response(status: int, payload: JSONDict) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(payload, ensure_ascii=False),
        content_type="application/json",
    )


# --------------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------------


class TelegramStandIn:
    """An aiohttp server that behaves like api.telegram.org for one bot."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",  # noqa: S107 - a fake token for tests
        *,
        bot_id: int = 123456,
        bot_username: str = "jobrelay_bot",
        flood_limits: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_retry_max: float = 2.0,
    ) -> None:
        """`webhook_retry_max`: the longest wait between two deliveries of an update the
        webhook did not take (Telegram waits longer; tests do not)."""
        self._token = token
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.flood_limits = flood_limits
        self.host = host
        self.port = port

        # observation
        self.sent: list[SentMessage] = []
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.stats: collections.Counter[str] = collections.Counter()
        self.recent_errors: collections.deque[str] = collections.deque(maxlen=50)
        self.callback_answers: dict[str, JSONDict] = {}
        self.pinned: dict[int, int] = {}
        self.deleted: list[tuple[int, int]] = []
        self.chat_actions: list[tuple[int, str]] = []
        # chat_id -> True if the last pinChatMessage asked to notify members (that is,
        # disable_notification was not set), False if it passed disable_notification=True
        self.pin_notifications: dict[int, bool] = {}
        # chat_id -> number of 429 "Too Many Requests" answers to requests for that chat
        self.flood_errors: collections.Counter[int] = collections.Counter()
        # send*/edit* calls whose client hung up while set_delay held them: "kept" (handled
        # all the same, like any call) or "dropped" (see set_delay's keep_abandoned);
        # sendChatAction calls, which leave no message, as "kept action" / "dropped action"
        self.abandoned: collections.Counter[str] = collections.Counter()

        # world state
        self._bot_user: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "JobRelay",
            "username": bot_username,
        }
        self._chats: dict[int, JSONDict] = {}
        self._users: dict[int, JSONDict] = {}
        self._members: dict[int, dict[int, str]] = {}
        self._bot_can_pin: dict[int, bool] = {}
        self._topics: dict[int, dict[int, JSONDict]] = {}  # chat -> thread -> creation message
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._callback_queries: dict[str, JSONDict] = {}
        self._too_old: set[tuple[int, int]] = set()  # messages edits can no longer reach
        self._next_callback_id = 4_000_000_000_000_000_000

        # updates
        self._updates: collections.deque[JSONDict] = collections.deque()
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        #: The webhook set with setWebhook (None: updates wait for getUpdates).
        self.webhook: Webhook | None = None
        #: Every webhook POST: (update_id, HTTP status, or 0 when the bot could not be reached).
        self.webhook_posts: list[tuple[int, int]] = []
        self._webhook_task: asyncio.Task[None] | None = None
        self._webhook_retry_max = webhook_retry_max

        # faults
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}
        self._fail_count = 0
        self._rejected_texts: list[str] = []
        self._fail_status = 502
        self._fail_description = "Bad Gateway"
        self._delay = 0.0
        self._keep_abandoned = True
        self._outage: tuple[int, str] | None = None
        self._global_sends: collections.deque[float] = collections.deque()
        self._chat_sends: dict[int, collections.deque[float]] = {}

        # plumbing
        self._updates_pulse = _Pulse()
        self._state_pulse = _Pulse()
        self._delay_pulse = _Pulse()
        #: send*/edit* calls held by `set_delay` right now.
        self.waiting_calls = 0
        self._closing: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, tuple[str, _Handler]] = {}
        for name, handler in self._handler_table().items():
            self._handlers[name.lower()] = (name, handler)

    # ---------------------------------------------------------------- lifecycle

    @property
    def token(self) -> str:
        """The bot token this stand-in accepts."""
        return self._token

    @property
    def base_url(self) -> str:
        """PTB ``base_url``: ``http://127.0.0.1:PORT/bot``."""
        return f"http://{self.host}:{self._require_port()}/bot"

    @property
    def base_file_url(self) -> str:
        """PTB ``base_file_url``: ``http://127.0.0.1:PORT/file/bot``."""
        return f"http://{self.host}:{self._require_port()}/file/bot"

    def _require_port(self) -> int:
        if not self.port:
            raise RuntimeError("TelegramStandIn has no port yet: call start() first")
        return self.port

    async def start(self) -> None:
        """Start serving on host:port (port 0 picks a free port)."""
        if self._runner is not None:
            return
        loop = asyncio.get_running_loop()
        self._updates_pulse.loop = loop
        self._state_pulse.loop = loop
        self._delay_pulse.loop = loop
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._webhook_task = loop.create_task(self._deliver_to_webhook(), name="tg-webhook")
        LOGGER.info("Telegram stand-in listening on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Wake pending long polls and delayed sends, then shut the server down."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._closing is not None:
            self._closing.set()
        self._updates_pulse.notify()
        self._state_pulse.notify()
        self._delay_pulse.notify()
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()

    async def __aenter__(self) -> TelegramStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def _is_closing(self) -> bool:
        return self._closing is not None and self._closing.is_set()

    # ---------------------------------------------------------------- user side

    def add_chat(
        self,
        chat_id: int,
        chat_type: str = "private",
        *,
        title: str | None = None,
        username: str | None = None,
        is_forum: bool = False,
    ) -> None:
        """Make a chat known (for getChat, sendMessage...); updates an existing one."""
        if chat_type not in {"private", "group", "supergroup", "channel"}:
            raise ValueError(f"unknown chat type {chat_type!r}")
        chat: JSONDict = {"id": chat_id, "type": chat_type}
        previous = self._chats.get(chat_id, {})
        if chat_type == "private":
            chat["first_name"] = previous.get("first_name", "Test")
        else:
            chat["title"] = title or previous.get("title") or f"Test {chat_type} {chat_id}"
        if username or previous.get("username"):
            chat["username"] = username or previous["username"]
        if chat_type == "supergroup" and (is_forum or previous.get("is_forum")):
            chat["is_forum"] = True
        self._chats[chat_id] = chat
        if chat_type == "channel":
            # Telegram only lets bots into channels as administrators; defaulting to that keeps
            # tests that post to a channel without any setup working.
            self._members.setdefault(chat_id, {}).setdefault(self.bot_id, "administrator")

    def set_bot_status(
        self, chat_id: int, status: str, *, by_user_id: int | None = None
    ) -> dict[str, Any]:
        """Change the bot's own status in a chat and queue the ``my_chat_member`` update.

        Allowed: ``member``/``kicked`` in private chats (``kicked`` = the user blocked the bot),
        ``administrator``/``member``/``left``/``kicked``/``restricted`` in groups and
        supergroups, and ``administrator``/``member``/``left``/``kicked`` in channels.  The
        change comes ``from`` ``by_user_id`` (default: the chat's default user, see
        :meth:`send_message`).  Every call queues one update, even if the status is unchanged
        (a test asking for an update gets one).  Returns the ``my_chat_member`` object.
        """
        if status == "creator":
            raise ValueError("a bot cannot be the creator of a chat")
        if chat_id not in self._chats:
            self.add_chat(chat_id, self._guess_chat_type(chat_id, "private"))
        chat = self._chats[chat_id]
        if status not in _BOT_STATUSES[chat["type"]]:
            raise ValueError(f"a bot cannot be {status!r} in a {chat['type']} chat")
        old = self._member_status(chat, self.bot_id)
        old_member = self._member_dict(self.bot_id, old, chat=chat)
        self._members.setdefault(chat_id, {})[self.bot_id] = status
        return self._queue_my_chat_member(chat, old_member, by_user_id)

    def set_bot_can_pin(self, chat_id: int, allowed: bool) -> dict[str, Any] | None:
        """Grant or withdraw the bot's ``can_pin_messages`` admin right in a chat (default: on).

        The right only matters while the bot is an administrator (:meth:`set_bot_status`).  If
        it is one now, Telegram reports the changed rights, so a ``my_chat_member`` update
        (administrator -> administrator) is queued and returned; otherwise nothing is queued.
        """
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ValueError(f"unknown chat {chat_id}: call add_chat first")
        status = self._member_status(chat, self.bot_id)
        old_member = self._member_dict(self.bot_id, status, chat=chat)
        self._bot_can_pin[chat_id] = allowed
        if status != "administrator" or old_member.get("can_pin_messages") == allowed:
            return None
        return self._queue_my_chat_member(chat, old_member, None)

    def _queue_my_chat_member(
        self, chat: JSONDict, old_member: JSONDict, by_user_id: int | None
    ) -> JSONDict:
        chat_id = int(chat["id"])
        new_member = self._member_dict(
            self.bot_id, self._member_status(chat, self.bot_id), chat=chat
        )
        payload: JSONDict = {
            "chat": dict(chat),
            "from": self._known_user(self._default_user_id(chat_id, by_user_id)),
            "date": int(time.time()),
            "old_chat_member": old_member,
            "new_chat_member": new_member,
        }
        self.enqueue_update({"my_chat_member": payload})
        return payload

    def add_topic(self, chat_id: int, thread_id: int, name: str) -> None:
        """Make a forum topic exist in a forum supergroup (``add_chat(..., is_forum=True)``).

        Like on Telegram the topic's id is the id of its creation service message (with
        ``forum_topic_created``), which is stored as message ``thread_id`` of the chat; later
        message ids continue after it; adding a topic again renames it.  The topic is taken to
        exist already, so no update is queued.  Once a forum has at least one topic, a
        ``message_thread_id`` that is not one of its topics is refused (by sendMessage with 400
        "message thread not found", by :meth:`send_message` with ValueError); a forum without
        any topic accepts every thread id, as before topics were modelled.
        """
        chat = self._chats.get(chat_id)
        if chat is None or not chat.get("is_forum"):
            raise ValueError(f"chat {chat_id} is not a forum: add_chat(..., is_forum=True) first")
        if thread_id <= 1:
            raise ValueError("topic ids start at 2 (1 is the General topic)")
        existing = self._messages.get((chat_id, thread_id))
        if existing is not None and "forum_topic_created" not in existing:
            raise ValueError(f"message {thread_id} of chat {chat_id} exists and is not a topic")
        creator = self._known_user(DEFAULT_GROUP_USER_ID)
        message: JSONDict = {
            "message_id": thread_id,
            "from": creator,
            "date": int(time.time()),
            "chat": dict(chat),
            "message_thread_id": thread_id,
            "forum_topic_created": {"name": name, "icon_color": FORUM_TOPIC_ICON_COLOR},
            "is_topic_message": True,
        }
        self._topics.setdefault(chat_id, {})[thread_id] = message
        self._messages[(chat_id, thread_id)] = message
        self._last_message_id[chat_id] = max(self._last_message_id.get(chat_id, 0), thread_id)

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """Set a user's status in a chat (creator|administrator|member|left|kicked|restricted)."""
        if status not in _MEMBER_STATUSES:
            raise ValueError(f"unknown member status {status!r}")
        if chat_id not in self._chats:
            self.add_chat(chat_id, self._guess_chat_type(chat_id, "private"))
        self._members.setdefault(chat_id, {})[user_id] = status

    def send_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        language_code: str | None = "en",
        chat_type: str = "private",
        first_name: str = "Test",
        username: str | None = None,
        chat_title: str | None = None,
        message_thread_id: int | None = None,
        document: tuple[str, bytes] | None = None,
        anonymous_admin: bool = False,
        reply_to: int | None = None,
        forwarded_from: int | None = None,
    ) -> dict[str, Any]:
        """Act as a user writing in a chat: enqueue a message update and return the message.

        ``anonymous_admin=True`` (groups and supergroups only) writes as an anonymous admin:
        ``from`` is Telegram's GroupAnonymousBot and ``sender_chat`` the group itself.  In a
        forum, ``message_thread_id`` makes a topic message that replies to the topic's
        creation message (see :meth:`add_topic`); without it the message is in General.
        ``reply_to`` answers an earlier message of the chat (by its id), as a user's reply does.
        ``document=(file_name, data)`` sends a file with ``text`` as its caption; the bot can
        then fetch it with ``getFile`` (up to :data:`MAX_DOWNLOAD_BYTES`, as on Telegram).
        ``forwarded_from=user_id`` forwards the text (commands included, with their entities)
        as that user first wrote it: the message carries a ``forward_origin``.
        """
        chat = self._user_side_chat(chat_id, chat_type, chat_title, first_name, username)
        if anonymous_admin and chat["type"] not in ("group", "supergroup"):
            raise ValueError("anonymous admins only exist in groups and supergroups")
        topic = self._topic_message(chat, message_thread_id, user_side=True)
        now = time.time()
        message: JSONDict = {
            "message_id": self._allocate_message_id(chat_id),
            "date": int(now),
            "chat": dict(chat),
        }
        if chat["type"] == "channel":
            message["sender_chat"] = dict(chat)
        elif anonymous_admin:
            message["from"] = {
                "id": GROUP_ANONYMOUS_BOT_ID,
                "is_bot": True,
                "first_name": "Group",
                "username": "GroupAnonymousBot",
            }
            message["sender_chat"] = dict(chat)
        else:
            uid = self._default_user_id(chat_id, user_id)
            message["from"] = self._remember_user(uid, first_name, username, language_code)
            if chat["type"] != "private":
                self._members.setdefault(chat_id, {}).setdefault(uid, "member")
        self._place_in_thread(message, chat, message_thread_id, topic)
        if document is not None:
            stored = self._store_file(document[1], file_name=document[0], mime_type=None)
            message["document"] = self._document_dict(stored)
            if text:
                message["caption"] = text
                command = _BOT_COMMAND_RE.match(text)
                if command:
                    message["caption_entities"] = [
                        {
                            "type": "bot_command",
                            "offset": 0,
                            "length": utf16_length(command.group()),
                        }
                    ]
        else:
            message["text"] = text
            command = _BOT_COMMAND_RE.match(text)
            if command:
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": utf16_length(command.group())}
                ]
        if reply_to is not None:
            replied = self._messages.get((chat_id, reply_to))
            if replied is None:
                raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
            message["reply_to_message"] = dict(replied)
        if forwarded_from is not None:
            message["forward_origin"] = {
                "type": "user",
                "sender_user": self._known_user(forwarded_from),
                "date": int(now) - 3600,
            }
        self._messages[(chat_id, message["message_id"])] = message
        self.enqueue_update({"channel_post" if chat["type"] == "channel" else "message": message})
        return message

    def edit_message(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        """Act as the author of a message editing its text: the message changes and an
        ``edited_message`` (``edited_channel_post`` in a channel) update is queued, with the
        same ``message_id`` and ``date`` and a new ``edit_date``; a command keeps its entity."""
        message = self._messages.get((chat_id, message_id))
        if message is None or "text" not in message:
            raise LookupError(f"no text message {message_id} in chat {chat_id} to edit")
        message["text"] = text
        message["edit_date"] = int(time.time())
        command = _BOT_COMMAND_RE.match(text)
        if command:
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_length(command.group())}
            ]
        else:
            message.pop("entities", None)
        channel = self._chats.get(chat_id, {}).get("type") == "channel"
        self.enqueue_update({"edited_channel_post" if channel else "edited_message": dict(message)})
        return message

    def remove_message(self, chat_id: int, message_id: int) -> None:
        """A message deleted on the user's side (by a person or an administrator): the bot's
        edits of it are answered 400 "message to edit not found" from now on."""
        self._messages.pop((chat_id, message_id), None)

    def press_button(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        language_code: str | None = "en",
        inaccessible: bool = False,
    ) -> dict[str, Any]:
        """Act as a user pressing an inline button: enqueue a callback_query update.

        ``inaccessible=True`` presses a button of a message Telegram no longer shows the bot
        (too old): the query's ``message`` is an InaccessibleMessage, only ``chat``,
        ``message_id`` and ``date`` 0, and the bot's edits of that message are answered 400
        "message can't be edited" from now on.
        """
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise LookupError(f"no message {message_id} in chat {chat_id} to press a button on")
        if inaccessible:
            self._too_old.add((chat_id, message_id))
            message = {"chat": dict(message["chat"]), "message_id": message_id, "date": 0}
        uid = self._default_user_id(chat_id, user_id)
        known = self._users.get(uid, {})
        user = self._remember_user(
            uid, known.get("first_name", "Test"), known.get("username"), language_code
        )
        self._next_callback_id += 1
        query: JSONDict = {
            "id": str(self._next_callback_id),
            "from": user,
            "message": dict(message),
            "chat_instance": f"{abs(chat_id)}{self.bot_id}",
            "data": data,
        }
        self._callback_queries[query["id"]] = query
        self.enqueue_update({"callback_query": query})
        return query

    def enqueue_update(self, update: dict[str, Any]) -> None:
        """Queue a raw update for getUpdates; an update_id is assigned if missing."""
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
        self._updates.append(update)
        self._updates_pulse.notify()
        self._state_pulse.notify()

    def repeat_last_update(self) -> dict[str, Any]:
        """Queue the last queued update once more, with the same update_id, as Telegram does
        for a receiver that took over before the previous one confirmed it (the next
        getUpdates answers both copies). The update must not be confirmed yet."""
        if not self._updates:
            raise LookupError("no update waiting to be repeated")
        again: dict[str, Any] = json.loads(json.dumps(self._updates[-1]))
        self._updates.append(again)
        self._updates_pulse.notify()
        self._state_pulse.notify()
        return again

    def get_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Return the current state of a message (after edits), or None if unknown/deleted."""
        return self._messages.get((chat_id, message_id))

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    # ---------------------------------------------------------------- faults

    def block(self, chat_id: int) -> None:
        """Make sends to the chat fail with 403 (user blocked the bot / bot kicked)."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        """Undo :meth:`block`."""
        self._blocked.discard(chat_id)

    def migrate(self, chat_id: int, new_chat_id: int) -> None:
        """Upgrade a group: requests to chat_id fail with migrate_to_chat_id=new_chat_id."""
        old = self._chats.get(chat_id, {})
        self._migrated[chat_id] = new_chat_id
        if new_chat_id not in self._chats:
            self.add_chat(new_chat_id, "supergroup", title=old.get("title"))
        if chat_id in self._members:
            self._members.setdefault(new_chat_id, {}).update(self._members[chat_id])

    def fail_next(self, count: int, status: int = 502, description: str = "Bad Gateway") -> None:
        """Make the next ``count`` send*/edit* calls fail with this HTTP status."""
        self._fail_count = count
        self._fail_status = status
        self._fail_description = description

    def reject_texts_containing(self, text: str) -> None:
        """Answer 400 (for good, as Telegram does with a message it will never take) to every
        sendMessage whose text contains ``text``."""
        self._rejected_texts.append(text)

    def set_delay(self, seconds: float, *, keep_abandoned: bool = True) -> None:
        """Make every send*/edit* call wait this long (from its arrival) before answering.

        Lowering the delay ends the hang for the calls already waiting longer than the new
        delay: ``set_delay(60)`` then ``set_delay(0)`` a minute later is a one-minute hang.
        A call whose client hung up while it waited (the client timed out) is carried out all
        the same when ``keep_abandoned`` (as set when the call arrived) is true, as Telegram
        does with a request it received (the client never learns that the message was sent);
        when false it is dropped, like a request lost on the way. Either way it is counted in
        :attr:`abandoned`.
        """
        self._delay = max(0.0, seconds)
        self._keep_abandoned = keep_abandoned
        self._delay_pulse.notify()

    def set_outage(self, status: int | None, description: str = "Bad Gateway") -> None:
        """Answer every Bot API method (getUpdates included) with this HTTP error until
        ``set_outage(None)``; a long poll already waiting is answered with it too."""
        self._outage = None if status is None else (status, description)
        self._updates_pulse.notify()

    # ---------------------------------------------------------------- observation

    def messages_for(self, chat_id: int) -> list[SentMessage]:
        """Every accepted outgoing message (and edit) to a chat, in order."""
        return [m for m in self.sent if m.chat_id == chat_id]

    def max_sends_in_window(self, chat_id: int, seconds: float = 60.0) -> int:
        """The most accepted send* calls to a chat inside any sliding window of ``seconds``.

        Computed from :attr:`SentMessage.date` (edits do not count).  Like the flood limiter,
        the window is half-open: two sends exactly ``seconds`` apart are in different windows.
        """
        dates = sorted(
            m.date for m in self.sent if m.chat_id == chat_id and m.method.startswith("send")
        )
        best = 0
        start = 0
        for end, date in enumerate(dates):
            while date - dates[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Wait until a chat has received ``count`` messages; return all of them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        scanned = 0
        while True:
            if len(self.sent) < scanned:  # someone cleared `sent`: rescan
                seen = scanned = 0
            total = len(self.sent)
            seen += sum(1 for m in self.sent[scanned:total] if m.chat_id == chat_id)
            scanned = total
            if seen >= count:
                return self.messages_for(chat_id)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._describe_wait(chat_id, count, timeout))
            await self._state_pulse.wait(min(remaining, 0.5))

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``predicate()`` is true (re-checked on every request and every 50 ms)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"condition {getattr(predicate, '__name__', predicate)!r} not met within "
                    f"{timeout}s; {self._summary()}"
                )
            await self._state_pulse.wait(min(remaining, 0.05))

    def _describe_wait(self, chat_id: int, count: int, timeout: float) -> str:
        got = self.messages_for(chat_id)
        lines = [
            f"timed out after {timeout}s waiting for {count} message(s) to chat {chat_id}; "
            f"got {len(got)}:"
        ]
        lines += [f"  #{m.message_id} {m.method}: {m.text[:200]!r}" for m in got[-20:]]
        lines.append(self._summary())
        return "\n".join(lines)

    def _summary(self) -> str:
        per_chat = collections.Counter(m.chat_id for m in self.sent)
        parts = [
            f"messages per chat: {dict(per_chat)}",
            f"stats: {dict(self.stats)}",
            f"pending updates: {len(self._updates)}",
        ]
        if self.recent_errors:
            parts.append("recent errors: " + "; ".join(list(self.recent_errors)[-10:]))
        return "\n".join(parts)

    # ---------------------------------------------------------------- HTTP plumbing

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/file/bot"):
            return self._serve_file(path[len("/file/bot") :])
        if not path.startswith("/bot"):
            return _json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, _, method = path[len("/bot") :].partition("/")
        if token != self._token:
            self.stats[f"{method}:401"] += 1
            return _json_response(
                401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        entry = self._handlers.get(method.lower())
        if entry is None:
            self.stats[f"{method}:404"] += 1
            return _json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        name, handler = entry
        params: Params = {}
        _CURRENT_REQUEST.set(request)
        try:
            params, uploads = await _read_params(request)
            self._check_outage()
            result = await handler(params, uploads)
        except _ApiError as exc:
            self.stats[f"{name}:{exc.status}"] += 1
            if exc.status == 429:
                chat_id = self._chat_id_of(params.get("chat_id"))
                if chat_id is not None:
                    self.flood_errors[chat_id] += 1
            self.recent_errors.append(f"{name} -> {exc.status} {exc.description}")
            self._state_pulse.notify()
            return _json_response(exc.status, exc.payload())
        except (_Abandoned, ConnectionResetError):
            # The client hung up (timed out, or was killed mid-request): nobody reads this.
            return _json_response(
                499, {"ok": False, "error_code": 499, "description": "Client Closed Request"}
            )
        except Exception:
            LOGGER.exception("Telegram stand-in failed while handling %s", name)
            self.stats[f"{name}:500"] += 1
            return _json_response(
                500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
            )
        self.stats[name] += 1
        self._state_pulse.notify()
        return _json_response(200, {"ok": True, "result": result})

    def _serve_file(self, rest: str) -> web.Response:
        token, _, file_path = rest.partition("/")
        stored = self._files_by_path.get(file_path) if token == self._token else None
        if stored is None:
            return _json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        self.stats["file"] += 1
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    def _handler_table(self) -> dict[str, _Handler]:
        return {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "answerCallbackQuery": self._answer_callback_query,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "pinChatMessage": self._pin_chat_message,
            "deleteMessage": self._delete_message,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
        }

    # ---------------------------------------------------------------- bot & updates

    async def _true(self, params: Params, uploads: Uploads) -> bool:
        return True

    async def _get_me(self, params: Params, uploads: Uploads) -> JSONDict:
        return {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_webhook(self, params: Params, uploads: Uploads) -> bool:
        url = (_param_str(params, "url") or "").strip()
        if not url:
            return await self._delete_webhook(params, uploads)  # Telegram: an empty url removes
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise _ApiError(400, "Bad Request: bad webhook: Failed to resolve host") from None
        host = parts.hostname or ""
        loopback = is_loopback_host(host)
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            # Telegram wants https; the stand-in takes http for loopback hosts (tests).
            raise _ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if not loopback:
            if (port or 443) not in _WEBHOOK_PORTS:
                raise _ApiError(
                    400,
                    "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 "
                    "or 8443",
                )
            # Never contact the internet: a public address is accepted and never called.
            LOGGER.warning("webhook %s is not on this machine: nothing will be delivered", host)
        secret = _param_str(params, "secret_token")
        if secret is not None and not _WEBHOOK_SECRET_RE.fullmatch(secret):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = _param_int(params, "max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise _ApiError(400, "Bad Request: bad webhook: max_connections must be 1-100")
        allowed = _param_json(params, "allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(str(kind) for kind in allowed) or None
        if _param_bool(params, "drop_pending_updates"):
            self._updates.clear()
        self.webhook = Webhook(
            url=url,
            secret_token=secret,
            allowed_updates=self._allowed_updates,
            max_connections=max_connections,
        )
        self._poll_generation += 1  # a long poll under way ends (409, as on Telegram)
        self._updates_pulse.notify()
        return True

    async def _delete_webhook(self, params: Params, uploads: Uploads) -> bool:
        self.webhook = None
        if _param_bool(params, "drop_pending_updates"):
            self._updates.clear()
        self._updates_pulse.notify()
        return True

    async def _get_webhook_info(self, params: Params, uploads: Uploads) -> JSONDict:
        hook = self.webhook
        info: JSONDict = {
            "url": hook.url if hook is not None else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = sorted(hook.allowed_updates)
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    async def _deliver_to_webhook(self) -> None:
        """While a webhook is set, POST each waiting update to it, in order, one at a time,
        with the secret header; an update the bot does not answer 2xx is sent again after a
        growing wait (as Telegram does), and kept until it is taken or the webhook removed.
        Only loopback URLs are called: the stand-in never reaches the internet."""
        delay = 0.05
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
            while not self._is_closing:
                hook = self.webhook
                update = self._next_webhook_update() if hook is not None else None
                if (
                    hook is None
                    or update is None
                    or not is_loopback_host(urlsplit(hook.url).hostname or "")
                ):
                    await self._updates_pulse.wait(1.0)
                    continue
                status = await self._post_update(client, hook, update)
                self.webhook_posts.append((int(update["update_id"]), status))
                self.stats[f"webhook:{status}"] += 1
                if 200 <= status < 300:
                    with contextlib.suppress(ValueError):
                        self._updates.remove(update)
                    delay = 0.05
                    self._state_pulse.notify()
                    continue
                hook.last_error_date = int(time.time())
                hook.last_error_message = (
                    f"Wrong response from the webhook: {status}" if status else "Connection refused"
                )
                self._state_pulse.notify()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._webhook_retry_max)

    def _next_webhook_update(self) -> JSONDict | None:
        """The oldest waiting update the webhook takes (others are dropped, as Telegram
        drops the kinds a bot did not ask for)."""
        while self._updates:
            update = self._updates[0]
            if self._update_allowed(update):
                return update
            self._updates.popleft()
        return None

    async def _post_update(
        self, client: aiohttp.ClientSession, hook: Webhook, update: JSONDict
    ) -> int:
        """POST one update; the HTTP status, or 0 when the webhook could not be reached."""
        headers = {"Content-Type": "application/json"}
        if hook.secret_token is not None:
            headers[WEBHOOK_SECRET_HEADER] = hook.secret_token
        try:
            async with client.post(hook.url, data=json.dumps(update), headers=headers) as answer:
                await answer.read()
                return answer.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            return 0

    def _update_allowed(self, update: JSONDict) -> bool:
        kind = next((key for key in update if key != "update_id"), "")
        if self._allowed_updates is None:
            return kind not in _DEFAULT_UPDATE_TYPES_EXCLUDED
        return kind in self._allowed_updates

    def _confirm_updates(self, offset: int) -> None:
        updates = self._updates
        if offset < 0:
            while len(updates) > -offset:
                updates.popleft()
            return
        while updates and int(updates[0]["update_id"]) < offset:
            updates.popleft()

    async def _get_updates(self, params: Params, uploads: Uploads) -> list[JSONDict]:
        offset = _param_int(params, "offset")
        limit = min(max(_param_int(params, "limit") or 100, 1), 100)
        timeout = max(_param_float(params, "timeout") or 0.0, 0.0)
        allowed = _param_json(params, "allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(str(kind) for kind in allowed) or None
        if offset is not None:
            self._confirm_updates(offset)

        if self.webhook is not None:
            raise _ApiError(409, WEBHOOK_CONFLICT)
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates_pulse.notify()  # an older long poll is terminated by this one
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._check_outage()
            if self.webhook is not None:
                raise _ApiError(409, WEBHOOK_CONFLICT)
            if generation != self._poll_generation:
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch: list[JSONDict] = []
            for update in self._updates:
                if self._update_allowed(update):
                    batch.append(update)
                    if len(batch) >= limit:
                        break
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._is_closing:
                return batch
            await self._updates_pulse.wait(remaining)

    async def _set_my_commands(self, params: Params, uploads: Uploads) -> bool:
        commands = _param_json(params, "commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: commands is empty")
        if len(commands) > 100:
            raise _ApiError(400, "Bad Request: too many commands specified")
        cleaned: list[dict[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _ApiError(400, "Bad Request: can't parse BotCommand")
            command = str(item.get("command", ""))
            description = str(item.get("description", ""))
            if not _COMMAND_RE.fullmatch(command):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": command, "description": description})
        key = self._commands_key(params)
        if cleaned:
            self.commands[key] = cleaned
        else:
            self.commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: Params, uploads: Uploads) -> list[dict[str, str]]:
        return list(self.commands.get(self._commands_key(params), []))

    async def _delete_my_commands(self, params: Params, uploads: Uploads) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _commands_key(self, params: Params) -> tuple[str, str]:
        scope = _param_json(params, "scope")
        scope_type = str(scope.get("type", "default")) if isinstance(scope, dict) else "default"
        language = _param_str(params, "language_code") or ""
        if language and not _LANGUAGE_RE.fullmatch(language):
            raise _ApiError(400, "Bad Request: invalid language code specified")
        return scope_type, language

    # ---------------------------------------------------------------- chats & members

    def _guess_chat_type(self, chat_id: int, requested: str) -> str:
        if chat_id < 0 and requested == "private":
            return "supergroup" if str(chat_id).startswith("-100") else "group"
        return requested

    def _user_side_chat(
        self,
        chat_id: int,
        chat_type: str,
        title: str | None,
        first_name: str,
        username: str | None,
    ) -> JSONDict:
        known = self._chats.get(chat_id)
        if known is not None and (chat_type == "private" or chat_type == known["type"]):
            if title and known["type"] != "private":
                known["title"] = title
            return known
        chat_type = self._guess_chat_type(chat_id, chat_type)
        self.add_chat(chat_id, chat_type, title=title)
        chat = self._chats[chat_id]
        if chat_type == "private":
            chat["first_name"] = first_name
            if username:
                chat["username"] = username
        return chat

    def _default_user_id(self, chat_id: int, user_id: int | None) -> int:
        if user_id is not None:
            return user_id
        return chat_id if chat_id > 0 else DEFAULT_GROUP_USER_ID

    def _remember_user(
        self, user_id: int, first_name: str, username: str | None, language_code: str | None
    ) -> JSONDict:
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return dict(user)

    def _known_user(self, user_id: int) -> JSONDict:
        """A copy of a user seen before, or a made-up one."""
        return dict(
            self._users.get(
                user_id, {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
            )
        )

    def _chat_id_of(self, raw: Any) -> int | None:
        """Turn a chat_id parameter (a number or an @username) into a chat id, if possible."""
        if isinstance(raw, str) and raw.startswith("@"):
            wanted = raw[1:].lower()
            for known in self._chats.values():
                if str(known.get("username", "")).lower() == wanted:
                    return int(known["id"])
            return None
        with contextlib.suppress(ValueError, TypeError):
            return int(raw)
        return None

    def _resolve_chat(self, params: Params, *, write: bool = False) -> JSONDict:
        """Find the target chat of a request, applying block/migrate faults.

        A write also fails while the bot is not allowed to write there (see
        :meth:`_check_bot_can_write`).
        """
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat_id = self._chat_id_of(raw)
        if chat_id is None:
            raise _ApiError(400, "Bad Request: chat not found")
        if write and chat_id in self._blocked:
            raise _ApiError(403, self._blocked_description(chat_id))
        if chat_id in self._migrated:
            raise _ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _ApiError(400, "Bad Request: chat not found")
        if write:
            self._check_bot_can_write(chat)
        return chat

    def _check_bot_can_write(self, chat: JSONDict) -> None:
        """403 while the bot is left/kicked, or in a channel where it is no administrator."""
        status = self._member_status(chat, self.bot_id)
        if chat["type"] == "channel":
            if status != "administrator":
                raise _ApiError(403, "Forbidden: bot is not a member of the channel chat")
        elif status in ("left", "kicked"):
            raise _ApiError(403, self._blocked_description(int(chat["id"])))

    def _blocked_description(self, chat_id: int) -> str:
        chat_type = self._chats.get(chat_id, {}).get("type") or (
            "private" if chat_id > 0 else self._guess_chat_type(chat_id, "private")
        )
        return {
            "private": "Forbidden: bot was blocked by the user",
            "group": "Forbidden: bot was kicked from the group chat",
            "supergroup": "Forbidden: bot was kicked from the supergroup chat",
            "channel": "Forbidden: bot is not a member of the channel chat",
        }[chat_type]

    async def _get_chat(self, params: Params, uploads: Uploads) -> JSONDict:
        chat = self._resolve_chat(params)
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _member_status(self, chat: JSONDict, user_id: int) -> str:
        chat_id = int(chat["id"])
        status = self._members.get(chat_id, {}).get(user_id)
        if status is not None:
            return status
        if user_id == self.bot_id:
            return "administrator" if chat["type"] == "channel" else "member"
        if chat["type"] == "private" and user_id == chat_id:
            return "member"
        return "left"

    def _member_dict(self, user_id: int, status: str, *, chat: JSONDict | None = None) -> JSONDict:
        user = dict(self._bot_user) if user_id == self.bot_id else self._known_user(user_id)
        member: JSONDict = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(can_be_edited=False, is_anonymous=False)
            member.update(dict.fromkeys(_ADMIN_RIGHTS, True))
            if chat is not None and chat["type"] == "channel":
                member.update(can_post_messages=True, can_edit_messages=True)
            if chat is not None and user_id == self.bot_id:
                member["can_pin_messages"] = self._bot_can_pin.get(int(chat["id"]), True)
        elif status == "restricted":
            member.update(is_member=True, until_date=0)
            member.update(dict.fromkeys(_RESTRICTED_RIGHTS, False))
        elif status == "kicked":
            member["until_date"] = 0
        return member

    async def _get_chat_member(self, params: Params, uploads: Uploads) -> JSONDict:
        chat = self._resolve_chat(params)
        user_id = _param_int(params, "user_id", required=True)
        assert user_id is not None
        return self._member_dict(user_id, self._member_status(chat, user_id), chat=chat)

    async def _get_chat_administrators(self, params: Params, uploads: Uploads) -> list[JSONDict]:
        chat = self._resolve_chat(params)
        if chat["type"] == "private":
            raise _ApiError(400, "Bad Request: there are no administrators in the private chat")
        roster = self._members.get(int(chat["id"]), {})
        order = {"creator": 0, "administrator": 1}
        admins = sorted(
            (uid for uid, status in roster.items() if status in order),
            key=lambda uid: order[roster[uid]],
        )
        return [self._member_dict(uid, roster[uid], chat=chat) for uid in admins]

    async def _answer_callback_query(self, params: Params, uploads: Uploads) -> bool:
        query_id = _param_str(params, "callback_query_id") or ""
        if query_id not in self._callback_queries or query_id in self.callback_answers:
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self.callback_answers[query_id] = {
            "text": _param_str(params, "text"),
            "show_alert": _param_bool(params, "show_alert"),
            "url": _param_str(params, "url"),
        }
        return True

    # ---------------------------------------------------------------- outgoing messages

    def _check_outage(self) -> None:
        if self._outage is not None:
            raise _ApiError(*self._outage)

    async def _before_send(self, *, counted_as: str = "") -> None:
        """Apply the configured delay and fail_next fault to a send*/edit* call (an abandoned
        call is counted in `abandoned` as "kept" or "dropped", plus `counted_as`)."""
        if self._delay > 0:
            arrived = time.monotonic()
            keep = self._keep_abandoned  # as set when the call arrived
            self.waiting_calls += 1
            try:
                while not self._is_closing:
                    remaining = arrived + self._delay - time.monotonic()
                    if remaining <= 0:
                        break
                    await self._delay_pulse.wait(remaining)  # set_delay may shorten the hang
            finally:
                self.waiting_calls -= 1
            request = _CURRENT_REQUEST.get()
            if request is not None and request.transport is None:  # the client hung up
                if not keep:
                    self.abandoned["dropped" + counted_as] += 1
                    raise _Abandoned
                self.abandoned["kept" + counted_as] += 1
        self._check_outage()
        if self._fail_count > 0:
            self._fail_count -= 1
            raise _ApiError(self._fail_status, self._fail_description)

    def _check_flood(self, chat_id: int, now: float) -> None:
        if not self.flood_limits:
            return
        sends = self._global_sends
        while sends and sends[0] <= now - 1.0:
            sends.popleft()
        if len(sends) >= GLOBAL_SENDS_PER_SECOND:
            self._raise_flood(sends[0] + 1.0 - now)
        if chat_id < 0:
            chat_sends = self._chat_sends.get(chat_id)
            if chat_sends is not None:
                while chat_sends and chat_sends[0] <= now - 60.0:
                    chat_sends.popleft()
                if len(chat_sends) >= GROUP_SENDS_PER_MINUTE:
                    self._raise_flood(chat_sends[0] + 60.0 - now)

    @staticmethod
    def _raise_flood(wait: float) -> None:
        retry_after = max(1, math.ceil(wait))
        raise _ApiError(
            429,
            f"Too Many Requests: retry after {retry_after}",
            {"retry_after": retry_after},
        )

    def _record_flood(self, chat_id: int, now: float) -> None:
        if not self.flood_limits:
            return
        self._global_sends.append(now)
        if chat_id < 0:
            self._chat_sends.setdefault(chat_id, collections.deque()).append(now)

    @staticmethod
    def _formatted(
        text: str | None, parse_mode: str | None, *, limit: int, caption: bool
    ) -> tuple[str, list[JSONDict]]:
        """Validate text or caption; return its plain text and entities."""
        text = text or ""
        mode = (parse_mode or "").lower()
        if mode == "html":
            try:
                plain, entities = parse_telegram_html_with_entities(text)
            except TelegramHTMLError as exc:
                raise _ApiError(400, exc.description) from None
        elif mode in ("", "markdown", "markdownv2"):
            plain, entities = text, []
        else:
            raise _ApiError(400, "Bad Request: unsupported parse_mode")
        if caption:
            if utf16_length(plain) > limit:
                raise _ApiError(400, "Bad Request: message caption is too long")
        else:
            if not plain.strip():
                raise _ApiError(400, "Bad Request: message text is empty")
            if utf16_length(plain) > limit:
                raise _ApiError(400, "Bad Request: message is too long")
        return plain, entities

    @staticmethod
    def _reply_markup(params: Params) -> JSONDict | None:
        markup = _param_json(params, "reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _ApiError(400, "Bad Request: can't parse inline keyboard button")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                    raise _ApiError(400, "Bad Request: BUTTON_TEXT_EMPTY")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not str(url).startswith(("http://", "https://", "tg://")):
                    raise _ApiError(400, "Bad Request: BUTTON_URL_INVALID")
                actions = set(button) - {"text", "style", "icon_custom_emoji_id"}
                if not actions:
                    raise _ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
        return markup

    @staticmethod
    def _preview_disabled(params: Params) -> bool:
        options = _param_json(params, "link_preview_options")
        if isinstance(options, dict) and options.get("is_disabled"):
            return True
        return _param_bool(params, "disable_web_page_preview")

    def _allocate_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _bot_message(self, chat: JSONDict, message_id: int, now: float) -> JSONDict:
        message: JSONDict = {"message_id": message_id, "date": int(now), "chat": dict(chat)}
        if chat["type"] == "channel":
            message["sender_chat"] = dict(chat)
        else:
            message["from"] = dict(self._bot_user)
        return message

    def _topic_message(
        self, chat: JSONDict, thread_id: int | None, *, user_side: bool = False
    ) -> JSONDict | None:
        """The creation message of the forum topic a message goes to, if it is a known topic.

        None outside forums, in General (no thread id) and in forums without any topic added
        (where every thread id is accepted).  An unknown thread of a forum with topics is a
        400 for the bot and a ValueError for a test acting as a user.
        """
        if thread_id is None or not chat.get("is_forum"):
            return None
        topics = self._topics.get(int(chat["id"]))
        if not topics:
            return None
        topic = topics.get(thread_id)
        if topic is None:
            if user_side:
                raise ValueError(
                    f"no topic {thread_id} in forum {chat['id']}: call add_topic first"
                )
            raise _ApiError(400, "Bad Request: message thread not found")
        return {**topic, "chat": dict(chat)}

    @staticmethod
    def _place_in_thread(
        message: JSONDict, chat: JSONDict, thread_id: int | None, topic: JSONDict | None
    ) -> None:
        """Add thread fields; a forum topic message replies to the topic's creation message."""
        if thread_id is None:
            return
        message["message_thread_id"] = thread_id
        if chat.get("is_forum"):
            message["is_topic_message"] = True
        if topic is not None:
            message["reply_to_message"] = topic

    def _deliver(
        self,
        method: str,
        params: Params,
        *,
        body: Callable[[JSONDict], None],
        raw_text: str,
        caption: str | None = None,
        plain: str,
        entities: list[JSONDict],
        file_bytes: bytes | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        chat: JSONDict,
        reply_markup: JSONDict | None,
    ) -> JSONDict:
        """Check rights, thread and flood limits, then store and record a new outgoing message."""
        chat_id = int(chat["id"])
        if self._member_status(chat, self.bot_id) == "restricted":
            wording = _SEND_RIGHTS_WORDING.get(method, "messages")
            raise _ApiError(400, f"Bad Request: not enough rights to send {wording} to the chat")
        thread_id = _param_int(params, "message_thread_id")
        topic = self._topic_message(chat, thread_id)
        now_mono = time.monotonic()
        self._check_flood(chat_id, now_mono)
        now = time.time()
        message_id = self._allocate_message_id(chat_id)
        message = self._bot_message(chat, message_id, now)
        self._place_in_thread(message, chat, thread_id, topic)
        body(message)
        if reply_markup is not None and "inline_keyboard" in reply_markup:
            message["reply_markup"] = reply_markup
        self._messages[(chat_id, message_id)] = message
        self._record_flood(chat_id, now_mono)
        self.sent.append(
            SentMessage(
                chat_id=chat_id,
                message_id=message_id,
                text=raw_text,
                parse_mode=_param_str(params, "parse_mode"),
                reply_markup=reply_markup,
                message_thread_id=thread_id,
                method=method,
                date=now,
                disable_web_page_preview=self._preview_disabled(params),
                file_bytes=file_bytes,
                caption=caption,
                file_name=file_name,
                mime_type=mime_type,
                plain_text=plain,
                entities=entities,
            )
        )
        return message

    async def _send_message(self, params: Params, uploads: Uploads) -> JSONDict:
        await self._before_send()
        chat = self._resolve_chat(params, write=True)
        raw_text = _param_str(params, "text") or ""
        if any(rejected in raw_text for rejected in self._rejected_texts):
            raise _ApiError(400, "Bad Request: message can't be sent")
        plain, entities = self._formatted(
            raw_text, _param_str(params, "parse_mode"), limit=MAX_MESSAGE_LENGTH, caption=False
        )
        reply_markup = self._reply_markup(params)
        preview = _param_json(params, "link_preview_options")

        def body(message: JSONDict) -> None:
            message["text"] = plain
            if entities:
                message["entities"] = entities
            if isinstance(preview, dict):
                message["link_preview_options"] = preview

        return self._deliver(
            "sendMessage",
            params,
            body=body,
            raw_text=raw_text,
            plain=plain,
            entities=entities,
            chat=chat,
            reply_markup=reply_markup,
        )

    def _media_input(
        self, params: Params, uploads: Uploads, field_name: str
    ) -> tuple[_StoredFile | None, bytes | None]:
        """Resolve a photo/document parameter: an upload, attach://, a file_id or a URL."""
        upload = uploads.get(field_name)
        value = _param_str(params, field_name)
        if upload is None and value and value.startswith("attach://"):
            upload = uploads.get(value[len("attach://") :])
        if upload is not None:
            name, data, mime_type = upload
            return self._store_file(data, file_name=name, mime_type=mime_type), data
        if not value:
            raise _ApiError(400, f"Bad Request: there is no {field_name} in the request")
        stored = self._files.get(value)
        if stored is not None:
            return stored, stored.data
        if value.startswith(("http://", "https://")):
            return None, None
        raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    async def _send_media(
        self, method: str, field_name: str, params: Params, uploads: Uploads
    ) -> JSONDict:
        await self._before_send()
        chat = self._resolve_chat(params, write=True)
        raw_caption = _param_str(params, "caption")
        plain, entities = self._formatted(
            raw_caption, _param_str(params, "parse_mode"), limit=MAX_CAPTION_LENGTH, caption=True
        )
        reply_markup = self._reply_markup(params)
        stored, data = self._media_input(params, uploads, field_name)
        if stored is None:  # sent by URL: Telegram would download it; we make up a file
            stored = self._store_file(b"", file_name=None, mime_type=None)

        def body(message: JSONDict) -> None:
            if field_name == "photo":
                message["photo"] = [
                    {
                        "file_id": stored.file_id,
                        "file_unique_id": stored.file_unique_id,
                        "width": 800,
                        "height": 600,
                        "file_size": len(stored.data),
                    }
                ]
            else:
                message["document"] = self._document_dict(stored)
            if raw_caption:
                message["caption"] = plain
                if entities:
                    message["caption_entities"] = entities

        return self._deliver(
            method,
            params,
            body=body,
            raw_text=raw_caption or "",
            caption=raw_caption,
            plain=plain,
            entities=entities,
            file_bytes=data,
            # A photo has no name on Telegram (what the library made up for the upload is lost).
            file_name=stored.file_name if field_name == "document" else None,
            mime_type=stored.mime_type if field_name == "document" else None,
            chat=chat,
            reply_markup=reply_markup,
        )

    async def _send_photo(self, params: Params, uploads: Uploads) -> JSONDict:
        return await self._send_media("sendPhoto", "photo", params, uploads)

    async def _send_document(self, params: Params, uploads: Uploads) -> JSONDict:
        return await self._send_media("sendDocument", "document", params, uploads)

    def _editable_message(self, params: Params) -> tuple[JSONDict, JSONDict]:
        chat = self._resolve_chat(params, write=True)
        message_id = _param_int(params, "message_id", required=True)
        message = self._messages.get((int(chat["id"]), message_id or 0))
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        sender = message.get("from") or {}
        # Channel admins may edit any post; elsewhere only the bot's own messages.
        if sender.get("id") != self.bot_id and chat["type"] != "channel":
            raise _ApiError(400, "Bad Request: message can't be edited")
        if (int(chat["id"]), int(message["message_id"])) in self._too_old:
            raise _ApiError(400, "Bad Request: message can't be edited")
        return chat, message

    def _record_edit(
        self,
        method: str,
        params: Params,
        chat: JSONDict,
        message: JSONDict,
        raw_text: str,
        reply_markup: JSONDict | None,
    ) -> None:
        chat_id = int(chat["id"])
        self._record_flood(chat_id, time.monotonic())
        message["edit_date"] = int(time.time())
        self.sent.append(
            SentMessage(
                chat_id=chat_id,
                message_id=int(message["message_id"]),
                text=raw_text,
                parse_mode=_param_str(params, "parse_mode"),
                reply_markup=reply_markup,
                message_thread_id=message.get("message_thread_id"),
                method=method,
                date=time.time(),
                disable_web_page_preview=self._preview_disabled(params),
                plain_text=str(message.get("text", message.get("caption", ""))),
                entities=list(message.get("entities", [])),
            )
        )

    async def _edit_message_text(self, params: Params, uploads: Uploads) -> JSONDict | bool:
        await self._before_send()
        if params.get("inline_message_id"):
            self._formatted(
                _param_str(params, "text"),
                _param_str(params, "parse_mode"),
                limit=MAX_MESSAGE_LENGTH,
                caption=False,
            )
            return True
        chat, message = self._editable_message(params)
        raw_text = _param_str(params, "text") or ""
        plain, entities = self._formatted(
            raw_text, _param_str(params, "parse_mode"), limit=MAX_MESSAGE_LENGTH, caption=False
        )
        if "text" not in message:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        reply_markup = self._reply_markup(params)
        inline = reply_markup if reply_markup and "inline_keyboard" in reply_markup else None
        if (
            message["text"] == plain
            and message.get("entities", []) == entities
            and message.get("reply_markup") == inline
        ):
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        self._check_flood(int(chat["id"]), time.monotonic())
        message["text"] = plain
        if entities:
            message["entities"] = entities
        else:
            message.pop("entities", None)
        if inline is not None:
            message["reply_markup"] = inline
        else:  # like Telegram: editing without reply_markup removes the inline keyboard
            message.pop("reply_markup", None)
        self._record_edit("editMessageText", params, chat, message, raw_text, reply_markup)
        return message

    async def _edit_message_reply_markup(self, params: Params, uploads: Uploads) -> JSONDict | bool:
        await self._before_send()
        if params.get("inline_message_id"):
            return True
        chat, message = self._editable_message(params)
        reply_markup = self._reply_markup(params)
        inline = reply_markup if reply_markup and "inline_keyboard" in reply_markup else None
        if message.get("reply_markup") == inline:
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        self._check_flood(int(chat["id"]), time.monotonic())
        if inline is not None:
            message["reply_markup"] = inline
        else:
            message.pop("reply_markup", None)
        raw = str(message.get("text", message.get("caption", "")))
        self._record_edit("editMessageReplyMarkup", params, chat, message, raw, reply_markup)
        return message

    async def _pin_chat_message(self, params: Params, uploads: Uploads) -> bool:
        chat = self._resolve_chat(params, write=True)
        chat_id = int(chat["id"])
        if chat["type"] != "private" and (
            self._member_status(chat, self.bot_id) != "administrator"
            or not self._bot_can_pin.get(chat_id, True)
        ):
            raise _ApiError(
                400, "Bad Request: not enough rights to manage pinned messages in the chat"
            )
        message_id = _param_int(params, "message_id", required=True)
        if (chat_id, message_id or 0) not in self._messages:
            raise _ApiError(400, "Bad Request: message to pin not found")
        self.pinned[chat_id] = message_id or 0
        self.pin_notifications[chat_id] = not _param_bool(params, "disable_notification")
        return True

    async def _delete_message(self, params: Params, uploads: Uploads) -> bool:
        chat = self._resolve_chat(params, write=True)
        message_id = _param_int(params, "message_id", required=True) or 0
        if self._messages.pop((int(chat["id"]), message_id), None) is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        self.deleted.append((int(chat["id"]), message_id))
        return True

    async def _send_chat_action(self, params: Params, uploads: Uploads) -> bool:
        await self._before_send(counted_as=" action")
        chat = self._resolve_chat(params, write=True)
        action = _param_str(params, "action") or ""
        if action not in _CHAT_ACTIONS:
            raise _ApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append((int(chat["id"]), action))
        return True

    # ---------------------------------------------------------------- files

    def _store_file(
        self, data: bytes, *, file_name: str | None, mime_type: str | None
    ) -> _StoredFile:
        number = len(self._files) + 1
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        stored = _StoredFile(
            file_id=f"BQACAgIAAxkBAAI{number:08d}",
            file_unique_id=f"AgAD{number:08d}",
            file_path=f"documents/file_{number}{suffix}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    @staticmethod
    def _document_dict(stored: _StoredFile) -> JSONDict:
        document: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        return document

    async def _get_file(self, params: Params, uploads: Uploads) -> JSONDict:
        stored = self._files.get(_param_str(params, "file_id") or "")
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_BYTES:
            raise _ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }
