"""Job clubs end to end: groups, supergroups, channels and forum topics, with Telegram's own
rights (`getChatMember`) deciding who may change a club's watch; SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.sandbox.telegram_api import SentMessage
from storage.models import Chat
from tests.e2e.harness import Stack, eventually, eventually_async, polls_pass, x_reads

SOFTWARE = (
    "🚀 We're hiring a Backend Developer (Python) in Lyon – CDI, hybrid 2 days a week. "
    "Apply: https://jobs.acme.example/backend-42"
)
HR = "Nous recrutons un(e) chargé(e) de recrutement en CDI à Paris. Postulez sur notre site !"


@dataclass
class Club:
    """A group or supergroup, and people writing in it."""

    stack: Stack
    chat_id: int
    chat_type: str = "supergroup"

    def say(self, user_id: int, text: str, **extra: object) -> None:
        self.stack.tg.send_message(
            self.chat_id,
            text,
            user_id=user_id,
            chat_type=self.chat_type,
            chat_title="Paris job club",
            first_name=f"User{user_id}",
            **extra,  # type: ignore[arg-type]
        )

    def received(self) -> list[SentMessage]:
        return self.stack.tg.messages_for(self.chat_id)

    async def ask(self, user_id: int, text: str, **extra: object) -> SentMessage:
        before = len(self.received())
        self.say(user_id, text, **extra)
        await eventually(lambda: len(self.received()) > before, 15, f"a reply to {text!r}")
        return self.received()[before]


ADMIN, MEMBER = 801, 802


async def _false(value: Awaitable[bool | None]) -> bool:
    return await value is False


def club(stack: Stack, chat_id: int = -1001000000001, *, forum: bool = False) -> Club:
    stack.tg.add_chat(chat_id, "supergroup", title="Paris job club", is_forum=forum)
    stack.tg.set_member_status(chat_id, ADMIN, "administrator")
    stack.tg.set_member_status(chat_id, MEMBER, "member")
    return Club(stack, chat_id)


async def test_in_a_supergroup_only_administrators_change_the_watch(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    group = club(stack)
    refused = await group.ask(MEMBER, "/follow software")
    assert "Only this group's administrators" in refused.plain_text
    assert "nothing yet" in (await group.ask(MEMBER, "/list")).plain_text
    assert "Tap a category" in (await group.ask(MEMBER, "/categories")).plain_text
    accepted = await group.ask(ADMIN, "/follow@jobrelay_bot software")
    assert "Now following the category Software" in accepted.plain_text
    # An anonymous administrator writes as the group itself.
    anonymous = await group.ask(0, "/follow @acme_jobs", anonymous_admin=True)
    assert "Now following @acme_jobs" in anonymous.plain_text
    listing = (await group.ask(MEMBER, "/list")).plain_text
    assert "@acme_jobs" in listing and "Software" in listing
    assert "Only this group's administrators" in (await group.ask(MEMBER, "/filter off")).plain_text
    assert "Only this group's administrators" in (await group.ask(MEMBER, "/digest")).plain_text
    await x_reads(stack.x, "acme_jobs", count=1)  # the first poll: what comes next is new
    before = len(group.received())
    stack.x.add_post("acme_jobs", SOFTWARE)
    await eventually(lambda: len(group.received()) > before, 15, "the offer in the group")
    pushed = group.received()[before]
    # Once, though followed twice (account and category), with the club's ⭐ ✅ 👎 (which
    # only its administrators' presses change).
    await stack.quiet("acme_jobs")
    assert len(group.received()) == before + 1
    assert SOFTWARE in pushed.plain_text
    assert pushed.reply_markup is not None


async def test_a_channel_is_managed_from_a_private_chat_by_its_administrators(
    stack: Stack,
) -> None:
    stack.x.add_user("acme_jobs")
    channel = -1001000000002
    stack.tg.add_chat(channel, "channel", title="Paris jobs", username="parisjobsclub")
    stack.tg.set_bot_status(channel, "administrator")
    other = -1001000000003
    stack.tg.add_chat(other, "channel", title="Other", username="otherclub")
    stack.tg.set_bot_status(other, "left")
    await stack.bot.start()
    coach, member = stack.user(), stack.user()
    for chat_id in (channel, other):
        stack.tg.set_member_status(chat_id, coach.user_id, "administrator")
    stack.tg.set_member_status(channel, member.user_id, "member")
    refused = await member.ask("/follow @acme_jobs in @parisjobsclub")
    assert "Only administrators of @parisjobsclub" in refused
    done = await coach.ask("/follow @acme_jobs in @parisjobsclub")
    assert done.startswith("@parisjobsclub · ✅ Now following @acme_jobs"), done
    assert "@acme_jobs" in await coach.ask(f"/list in {channel}")
    assert "nothing yet" in await coach.ask("/list")  # the coach's own watch is untouched
    # Bad input: a clear reply, nothing changes.
    assert "I cannot find @nosuchchannel" in await coach.ask("/follow software in @nosuchchannel")
    assert "After in, name a channel" in await coach.ask("/follow software in")
    assert "After in, name a channel" in await coach.ask("/follow software in #club")
    assert "I am not an administrator of @otherclub" in await coach.ask(
        "/follow software in @otherclub"
    )
    assert "After in, name a channel" in await coach.ask("/follow software in london")
    assert "Buttons cannot manage another chat" in await coach.ask("/settings in @parisjobsclub")
    listing = await coach.ask("/list in @parisjobsclub")
    assert "Software" not in listing and "@acme_jobs" in listing
    # A command that changes nothing does not say it changed nothing.
    refused = await coach.ask("/list in @otherclub")
    assert "I am not an administrator of @otherclub" in refused
    assert "Nothing was changed" not in refused
    assert "Nothing was changed" not in await coach.ask("/settings in @parisjobsclub")
    assert "Nothing was changed" in await coach.ask("/follow software in @otherclub")
    # A post in the channel addressed to the bot is not a command.
    stack.tg.send_message(channel, "/follow software", chat_type="channel")
    await x_reads(stack.x, "acme_jobs", count=1)  # and the first poll
    stack.x.add_post("acme_jobs", SOFTWARE)
    await eventually(lambda: len(stack.tg.messages_for(channel)) >= 1, 15, "the offer")
    await stack.quiet("acme_jobs")
    posted = stack.tg.messages_for(channel)
    assert len(posted) == 1 and SOFTWARE in posted[0].plain_text


async def test_a_subscription_made_in_a_topic_posts_into_that_topic(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    stack.boards("acme_jobs")
    await stack.bot.start()
    forum = club(stack, -1001000000004, forum=True)
    stack.tg.add_topic(forum.chat_id, 77, "Offres dev")
    stack.tg.add_topic(forum.chat_id, 78, "Offres RH")
    reply = await forum.ask(ADMIN, "/follow software", message_thread_id=77)
    assert reply.message_thread_id == 77
    await forum.ask(ADMIN, "/follow hr", message_thread_id=78)
    await forum.ask(ADMIN, "/follow @acme_jobs", message_thread_id=77)
    listing = (await forum.ask(MEMBER, "/list")).plain_text
    assert "@acme_jobs — 💬 Offres dev" in listing
    assert "Software — 💬 Offres dev" in listing and "HR" in listing and "Offres RH" in listing
    await x_reads(stack.x, "acme_jobs", count=1)
    before = len(forum.received())
    stack.x.add_post("acme_jobs", SOFTWARE)
    stack.x.add_post("acme_jobs", HR)

    def by_topic() -> dict[int | None, str]:
        texts: dict[int | None, str] = {}
        for message in forum.received()[before:]:
            texts[message.message_thread_id] = (
                texts.get(message.message_thread_id, "") + message.plain_text
            )
        return texts

    # "Offres dev" gets both offers (it follows @acme_jobs and software), each once; "Offres
    # RH" the HR offer only (it follows hr).
    await eventually(
        lambda: HR in by_topic().get(77, "") and HR in by_topic().get(78, ""), 20, "both topics"
    )
    await stack.quiet("acme_jobs")
    topics = by_topic()
    assert set(topics) == {77, 78}
    assert topics[77].count(SOFTWARE) == 1 and topics[77].count(HR) == 1
    assert topics[78].count(HR) == 1 and SOFTWARE not in topics[78]
    # "/unfollow all" in a topic empties that topic only.
    done = await forum.ask(ADMIN, "/unfollow all", message_thread_id=78)
    assert "removed: 0 accounts or feeds, 1 category" in done.plain_text
    listing = (await forum.ask(MEMBER, "/list")).plain_text
    assert "Offres RH" not in listing and "@acme_jobs — 💬 Offres dev" in listing


async def test_an_account_back_in_a_search_group_catches_up_without_rereading_the_others(
    stack: Stack,
) -> None:
    """@acme_jobs and @lyon_jobs are read by one search. The club that alone follows
    @lyon_jobs removes the bot: @lyon_jobs leaves the search. Added back, @lyon_jobs is behind
    the group's cursor: one more search reads it from its own cursor (the offer posted during
    the absence arrives), and no post of @acme_jobs is returned, and billed, twice."""
    for account in ("acme_jobs", "lyon_jobs"):
        stack.x.add_user(account)
    await stack.bot.start()
    user = await stack.follower("acme_jobs")
    group = Club(stack, -4002, "group")
    stack.tg.add_chat(group.chat_id, "group", title="Lyon job club")
    stack.tg.set_member_status(group.chat_id, ADMIN, "administrator")
    assert "Now following" in (await group.ask(ADMIN, "/follow @lyon_jobs")).plain_text
    await x_reads(stack.x, "lyon_jobs", count=1)
    stack.tg.set_bot_status(group.chat_id, "left")
    await eventually_async(
        lambda: _false(stack.db.chat_active(group.chat_id)), 15, "the bot to know it was removed"
    )
    left = len(stack.x.requests)

    def searched_without_lyon() -> bool:
        queries = [r.params.get("query") for r in stack.x.requests[left:]]
        return any(q is not None and "from:lyon_jobs" not in q for q in queries)

    await eventually(
        searched_without_lyon,
        15,
        "a search without @lyon_jobs",
    )
    stack.x.add_post("lyon_jobs", HR)
    for n in range(3):  # read (each in its own poll) while @lyon_jobs is out of the search
        stack.x.add_post("acme_jobs", f"Offer {n} of acme")
        await user.wait_for(2 + n)
    stack.tg.set_bot_status(group.chat_id, "member")
    await eventually(
        lambda: any(HR in m.plain_text for m in group.received()), 15, "the offer of the absence"
    )
    stack.x.add_post("acme_jobs", "Offer 3 of acme")
    stack.x.add_post("lyon_jobs", SOFTWARE)
    await user.wait_for(5)
    await eventually(
        lambda: any(SOFTWARE in m.plain_text for m in group.received()), 15, "the next offer"
    )
    await stack.quiet("acme_jobs", "lyon_jobs")
    assert stack.x.posts_returned == 6  # each of the six posts returned once
    assert len(user.received()) == 5
    queries = {r.params["query"] for r in stack.x.requests if r.path.endswith("/search/recent")}
    assert "(from:acme_jobs OR from:lyon_jobs) -is:retweet -is:reply" in queries


async def test_removed_then_added_back_and_upgraded_groups(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    group = Club(stack, -4001, "group")
    stack.tg.add_chat(group.chat_id, "group", title="Paris job club")
    stack.tg.set_member_status(group.chat_id, ADMIN, "administrator")
    assert "Now following" in (await group.ask(ADMIN, "/follow @acme_jobs")).plain_text
    await x_reads(stack.x, "acme_jobs", count=1)
    stack.tg.set_bot_status(group.chat_id, "left")
    await eventually_async(
        lambda: _false(stack.db.chat_active(group.chat_id)), 15, "the bot to know it was removed"
    )
    removed = time.time()
    stack.x.add_post("acme_jobs", HR)
    # An account whose only follower is gone is not read at all: there is no event to wait
    # for, only polls that do not happen.
    await polls_pass(3)
    assert not any(
        "from:acme_jobs" in r.params.get("query", "")
        for r in stack.x.requests
        if r.at > removed + 0.5
    )
    assert len(group.received()) == 1  # nothing sent while removed
    # Added back: the watch resumes where it stopped (the account was not read meanwhile, so
    # the offer posted during the absence comes now), merged with the next one.
    stack.tg.set_bot_status(group.chat_id, "member")
    stack.x.add_post("acme_jobs", SOFTWARE)

    def both() -> bool:
        text = " ".join(m.plain_text for m in group.received()[1:])
        return SOFTWARE in text and HR in text

    await eventually(both, 15, "the offers after re-adding")
    # The group becomes a supergroup: Telegram says so in both chats.
    new_id = -1001000000005
    stack.tg.migrate(group.chat_id, new_id)
    stack.tg.enqueue_update(
        {
            "message": {
                "message_id": 999,
                "date": 1,
                "chat": {"id": group.chat_id, "type": "group", "title": "Paris job club"},
                "from": {"id": ADMIN, "is_bot": False, "first_name": "Admin"},
                "migrate_to_chat_id": new_id,
            }
        }
    )
    upgraded = Club(stack, new_id)

    async def moved() -> bool:
        return "@acme_jobs" in (await upgraded.ask(ADMIN, "/list")).plain_text

    await eventually_async(moved, 15, "the watch moved to the supergroup")
    stack.x.add_post("acme_jobs", SOFTWARE.replace("Lyon", "Nantes"))
    await eventually(lambda: len(upgraded.received()) >= 2, 70, "the offer in the supergroup")
    assert "Nantes" in upgraded.received()[1].plain_text


async def test_bad_input_in_a_group_changes_nothing(stack: Stack) -> None:
    await stack.bot.start()
    group = club(stack, -1001000000006)
    reply = await group.ask(ADMIN, "/follow software in @parisjobsclub")
    assert "works in a private chat with me" in reply.plain_text
    assert "nothing yet" in (await group.ask(ADMIN, "/list")).plain_text


async def test_one_groups_anonymous_administrator_does_not_spend_anothers_limits(
    stack: Stack,
) -> None:
    # Every anonymous administrator writes as Telegram's one GroupAnonymousBot account: the
    # limits count per group (the chat they write as), not for them all together.
    for handle in ("acct_a", "acct_b"):
        stack.x.add_user(handle)
    stack.bot.env["COMMANDS_PER_MINUTE"] = "3"
    stack.bot.env["X_LOOKUPS_PER_USER_PER_DAY"] = "1"
    await stack.bot.start()
    hostile, other = club(stack), club(stack, -1001000000002)
    assert (
        "Now following @acct_a"
        in (await hostile.ask(0, "/follow @acct_a", anonymous_admin=True)).plain_text
    )
    for _ in range(3):
        await hostile.ask(0, "/list", anonymous_admin=True)
    reply = await other.ask(0, "/follow @acct_b", anonymous_admin=True)
    assert "Now following @acct_b" in reply.plain_text, reply.plain_text


async def _chat_row(stack: Stack, chat_id: int) -> tuple[str | None, str, datetime]:
    """The chat's title, language and when its row was last written."""
    async with stack.db.engine.connect() as connection:
        row = (
            await connection.execute(
                select(Chat.title, Chat.language, Chat.updated_at).where(Chat.id == chat_id)
            )
        ).one()
    return row[0], row[1], row[2]


async def test_a_group_s_conversation_writes_its_chat_row_only_when_something_changed(
    stack: Stack,
) -> None:
    """Every message in a group where the bot is an administrator reaches it: each one wrote
    the chat's row, and on SQLite every write waits for the one writer."""
    await stack.bot.start()
    group = club(stack)
    await group.ask(MEMBER, "/list")
    title, _, written = await _chat_row(stack, group.chat_id)
    assert title == "Paris job club"
    for i in range(5):
        group.say(MEMBER, f"Anyone going to the meetup {i}?")
    await group.ask(ADMIN, "/list")  # a chat's updates are handled in order
    assert await _chat_row(stack, group.chat_id) == (title, "en", written)
    # A new title is noted (with the time of that write).
    before = len(group.received())
    stack.tg.send_message(
        group.chat_id, "/list", user_id=MEMBER, chat_type="supergroup", chat_title="Lyon jobs"
    )
    await eventually(lambda: len(group.received()) > before, 15, "a reply to /list")
    title, _, rewritten = await _chat_row(stack, group.chat_id)
    assert title == "Lyon jobs" and rewritten > written
    # A person's chat: written again when their language changes, not at every message.
    user = stack.user()
    await user.ask("/list")
    _, language, written = await _chat_row(stack, user.chat_id)
    await user.ask("/help")
    assert await _chat_row(stack, user.chat_id) == (None, language, written)
    user.language = "fr"
    await user.ask("/list")
    _, language, rewritten = await _chat_row(stack, user.chat_id)
    assert language == "fr" and rewritten > written
