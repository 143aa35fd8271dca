"""Every command and every bad input gets a clear reply, in the user's language; the bot keeps
serving and nothing is half-saved."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.harness import Stack, User, eventually


async def test_start_help_and_the_command_menu_in_both_languages(stack: Stack) -> None:
    await stack.bot.start()
    english, french = stack.user("en"), stack.user("fr-FR")
    assert "I watch recruiters'" in await english.ask("/start")
    assert "Je surveille pour vous" in await french.ask("/start")
    assert "/follow @handle" in await english.ask("/help")
    assert "/follow @compte" in await french.ask("/help")
    menus = {
        language: [c["command"] for c in commands]
        for (_scope, language), commands in stack.tg.commands.items()
    }
    assert menus[""] == menus["fr"]
    assert menus[""][:3] == ["follow", "unfollow", "list"]
    assert {
        "settings",
        "digest",
        "limit",
        "quiet",
        "pause",
        "resume",
        "stats",
        "timezone",
        "forget",
        "help",
        "start",
    } <= set(menus[""])
    descriptions = {
        language: commands[0]["description"]
        for (_scope, language), commands in stack.tg.commands.items()
    }
    assert descriptions[""].startswith("Follow X accounts")
    assert descriptions["fr"].startswith("Suivre des comptes X")


async def test_follow_unfollow_and_list(stack: Stack) -> None:
    for handle in ("acme_jobs", "Paris_Recrute", "devjobs_fr"):
        stack.x.add_user(handle)
    await stack.bot.start()
    user = stack.user()
    assert "You follow nothing yet" in await user.ask("/list")
    reply = await user.ask("/follow paris_recrute")
    assert "paris_recrute is not a job category. For an X account, write it with its @" in reply
    assert "You follow nothing yet" in await user.ask("/list")
    reply = await user.ask("/follow @acme_jobs @paris_recrute https://x.com/devjobs_fr")
    assert "Now following @acme_jobs, @Paris_Recrute, @devjobs_fr" in reply
    assert "You already follow @acme_jobs" in await user.ask("/follow @ACME_JOBS")
    listing = await user.ask("/list")
    assert listing.splitlines() == [
        "You follow 3 accounts:",
        "• @acme_jobs",
        "• @devjobs_fr",
        "• @Paris_Recrute",
    ]
    reply = await user.ask("/unfollow @paris_recrute @nobody")
    assert "Stopped following @Paris_Recrute" in reply
    assert "You were not following @nobody" in reply
    assert "You no longer follow anything (removed: 2 accounts or feeds, 0 categories)" in (
        await user.ask("/unfollow all")
    )
    assert "You were not following anything" in await user.ask("/unfollow all")
    assert "You follow nothing yet" in await user.ask("/list")


async def test_each_refusal_of_follow_says_once_what_the_word_looks_like(stack: Stack) -> None:
    await stack.bot.start()
    user = stack.user()
    reply = await user.ask("/follow @@@")
    assert reply.splitlines() == [
        "@@@ is not an X handle: a handle has 1 to 15 letters, digits or underscores, "
        "like @acme_jobs.",
        "Nothing was changed.",
    ]
    reply = await user.ask("/follow ftp://jobs.example.com/feed")
    assert reply.splitlines() == [
        "ftp://jobs.example.com/feed: only http:// and https:// feeds can be followed.",
        "Nothing was changed.",
    ]
    # Plain words are categories, whatever their length or symbols.
    for word in ("abcdefghijklmnopq", "💼", "software$$"):
        reply = await user.ask(f"/follow {word}")
        assert reply.startswith(f"{word} is not a job category. /categories lists"), reply
        assert "X handle" not in reply and reply.count("Nothing was changed.") == 1
    # A long word is shortened with "…", never silently.
    reply = await user.ask("/follow " + "a" * 300)
    assert "a" * 39 + "… is not a job category" in reply
    assert len(reply) < 200
    reply = await user.ask("/follow @" + "b" * 300)
    assert "@" + "b" * 38 + "… is not an X handle" in reply
    # What a stranger types is shown as typed: never read as HTML, never breaking the reply.
    reply = await user.ask("/follow <b>&amp; @R&D")
    assert "<b>&amp; is not a job category" in reply
    assert "@R&D is not an X handle" in reply
    assert "Something went wrong" not in reply
    assert "You follow nothing yet" in await user.ask("/list")


async def test_hundreds_of_bad_feed_addresses_get_one_short_refusal(stack: Stack) -> None:
    """One line per bad address was one message of 4,096 characters turned into a dozen."""
    await stack.bot.start()
    user = stack.user()
    command = "/follow " + " ".join(f"ftp://a{i}" for i in range(350))
    assert len(command) <= 4096  # what Telegram lets a person send
    before = len(user.received())
    user.say(command)
    user.say("/list")
    # A chat's updates are answered in order: every part of the refusal comes before this.
    await eventually(
        lambda: any("You follow nothing yet" in text for text in user.texts()[before:]),
        30,
        "the answer to /list",
    )
    refusal = user.texts()[before:-1]
    assert len(refusal) == 1, [len(text) for text in refusal]
    lines = refusal[0].splitlines()
    assert lines[0] == "ftp://a0: only http:// and https:// feeds can be followed."
    assert lines[-2:] == ["… (+345)", "Nothing was changed."]
    assert len(lines) == 7


async def test_unfollowing_hundreds_of_things_not_followed_gets_a_reply_that_fits(
    stack: Stack,
) -> None:
    """One message of at most 4,096 characters naming 400 addresses: each is shown with its
    https:// in the reply, which would make one line twice as long as the message."""
    await stack.bot.start()
    user = stack.user()
    addresses = " ".join(f"a{i}.io/x" for i in range(400))
    handles = " ".join(f"@h{i}" for i in range(650))
    for command in (f"/unfollow {addresses}", f"/unfollow {handles}"):
        assert len(command) <= 4096  # what Telegram lets a person send
        reply = await user.ask(command)
        assert "Something went wrong" not in reply, reply[:200]
        assert reply.startswith("You were not following "), reply[:200]
        assert "… (+" in reply and len(reply) < 1000
    assert "You follow nothing yet" in await user.ask("/list")


@pytest.mark.parametrize("language", ["en", "fr"])
async def test_a_filter_word_with_a_symbol_gets_a_helpful_refusal(
    stack: Stack, language: str
) -> None:
    await stack.bot.start()
    user = stack.user(language)
    for command in ("/filter +c++", "/filter -c#"):
        reply = await user.ask(command)
        assert "Something went wrong" not in reply and "Quelque chose" not in reply, reply
        assert "(c++, c#)" in reply, reply  # says what is accepted
        assert "R&D" in reply  # the & is shown, as Telegram shows an escaped &amp;


async def test_bad_follow_commands_get_clear_replies_and_change_nothing(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    stack.x.add_user("gone_account")
    stack.x.suspend_user("gone_account")
    await stack.bot.start()
    user = stack.user()
    assert "Tell me what to follow" in await user.ask("/follow")
    reply = await user.ask("/follow @acme_jobs @bad-handle")
    assert "@bad-handle is not an X handle" in reply
    assert "1 to 15 letters, digits or underscores" in reply
    assert "Nothing was changed" in reply
    many = " ".join(f"@user{i}" for i in range(51))
    reply = await user.ask(f"/follow {many}")
    assert "That is 51 accounts; /follow takes at most 50" in reply
    assert "Nothing was changed" in reply
    reply = await user.ask("/follow @no_such_user @gone_account")
    assert "No X account is named @no_such_user" in reply
    assert "@gone_account is suspended, private or unavailable on X" in reply
    assert "You follow nothing yet" in await user.ask("/list")
    assert "Tell me what to stop following" in await user.ask("/unfollow")
    assert "<b> is not a job category" in await user.ask("/unfollow <b>")  # shown as typed
    assert "I don't know that command" in await user.ask("/frobnicate")
    assert "I only understand commands" in await user.ask("hello?")
    # Still serving, and the handle that was fine can be followed now.
    assert "Now following @acme_jobs" in await user.ask("/follow @acme_jobs")


async def test_a_forged_feedback_button_is_answered_and_nothing_else(stack: Stack) -> None:
    """Callback data comes from the client: a modified one can send any 64 bytes. An offer
    number that is no number must not make the bot apologise in the chat (in a group, any
    member may press under an offer)."""
    await stack.bot.start()
    user = stack.user()
    await user.ask("/help")
    message = user.received()[-1]
    forged = ["fb:i:²", "fb:n:" + "9" * 40, "fb:i:3000000000", "fb:i:٣", "fb:n:-1"]
    for data in forged:
        stack.tg.press_button(user.chat_id, message.message_id, data, user_id=user.user_id)
    # A chat's updates are handled in order: the presses were answered before this reply.
    assert "You follow nothing yet" in await user.ask("/list")
    assert stack.tg.stats["answerCallbackQuery"] == len(forged)


async def test_french_replies(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = stack.user("fr")
    assert "Vous suivez maintenant @acme_jobs" in await user.ask("/follow @acme_jobs")
    assert "n'est pas un identifiant X" in await user.ask("/follow @a-b")
    assert "Vous suivez 1 compte :" in await user.ask("/list")
    assert "Aucun compte X ne s'appelle @personne" in await user.ask("/follow @personne")
    assert "Vous ne suivez plus @acme_jobs" in await user.ask("/unfollow @acme_jobs")


async def test_answers_come_in_the_order_the_commands_were_sent(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    stack.x.set_delay(0.5)  # a slow X lookup must not let /list overtake /follow
    await stack.bot.start()
    user = stack.user()
    user.say("/follow @acme_jobs")
    user.say("/list")
    texts = await user.wait_for(2)
    assert "Now following" in texts[0]
    assert "You follow 1 account" in texts[1]


async def test_without_x_credentials_follow_says_x_is_not_configured(stack: Stack) -> None:
    del stack.bot.env["X_BEARER_TOKEN"]
    await stack.bot.start()
    user = stack.user()
    reply = await user.ask("/follow @acme_jobs")
    assert "this bot has no X API access configured" in reply
    assert "You follow nothing yet" in await user.ask("/list")
    assert stack.x.request_count() == 0


async def test_x_down_while_following_says_to_try_again(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = stack.user()
    stack.x.fail_next(503, count=1)
    assert "X could not be reached to check @acme_jobs" in await user.ask("/follow @acme_jobs")
    assert "You follow nothing yet" in await user.ask("/list")
    assert "Now following @acme_jobs" in await user.ask("/follow @acme_jobs")


async def test_channel_posts_are_ignored(stack: Stack) -> None:
    await stack.bot.start()
    stack.tg.add_chat(-1007001, "channel", title="Jobs channel")
    stack.tg.send_message(-1007001, "/follow @acme_jobs", chat_type="channel")
    user = stack.user()
    await user.ask("/help")  # the bot is reading updates
    # An ignored post leaves no trace to wait for, and its handler runs beside /help's (each
    # chat in order, chats in parallel): half a second more for it to have done nothing.
    await asyncio.sleep(0.5)
    assert stack.tg.messages_for(-1007001) == []


async def test_a_user_who_unblocks_the_bot_gets_what_was_held(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower()
    stack.tg.block(user.chat_id)
    stack.x.add_post("acme_jobs", "Offer while blocked")
    await eventually(lambda: stack.tg.stats["sendMessage:403"] == 1, 15, "the blocked attempt")
    stack.tg.unblock(user.chat_id)
    user.say("/start")
    texts = await user.wait_for(3)
    assert any("Offer while blocked" in t for t in texts[1:])


async def test_operator_status_is_only_for_admin_user_ids(stack: Stack) -> None:
    stack.bot.env["ADMIN_USER_IDS"] = "9001, 9002"
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = stack.user()
    await user.ask("/follow @acme_jobs")
    assert "I don't know that command" in await user.ask("/admin status")
    operator = User(stack, 9001, "en")
    report = await operator.ask("/admin status")
    assert "Chats: 2 active, 0 inactive" in report
    assert "Accounts: 1, 0 failing, 0 gone from X" in report
    assert "Queued: nothing" in report
    assert "/admin status" in await operator.ask("/admin reboot")
    assert "État de jobrelay" in await User(stack, 9002, "fr").ask("/admin")


async def test_a_protected_account_cannot_be_followed(stack: Stack) -> None:
    stack.x.add_user("private_club", protected=True)
    await stack.bot.start()
    user = stack.user()
    reply = await user.ask("/follow @private_club")
    assert "@private_club is suspended, private or unavailable on X" in reply
    assert "You follow nothing yet" in await user.ask("/list")


async def test_a_flood_of_commands_gets_one_slow_down_and_others_are_still_served(
    stack: Stack,
) -> None:
    stack.bot.env["COMMANDS_PER_MINUTE"] = "10"
    await stack.bot.start()
    flooder, other = stack.user(), stack.user()
    for _ in range(200):
        flooder.say("/list")
    # Another person is answered during the flood (the flood waits in its own chat's queue).
    assert "You follow nothing yet" in await other.ask("/list")
    await eventually(
        lambda: any("Slow down" in t for t in flooder.texts()), 30, "the slow-down reply"
    )
    await stack.db.idle()
    await asyncio.sleep(1)  # an absence: nothing more may come
    texts = flooder.texts()
    assert sum("Slow down" in t for t in texts) == 1
    assert sum("You follow nothing yet" in t for t in texts) <= 10
    assert len(texts) <= 11


async def test_a_chat_follows_at_most_max_follows_per_chat(stack: Stack) -> None:
    for handle in ("acct_a", "acct_b", "acct_c", "acct_d"):
        stack.x.add_user(handle)
    stack.bot.env["MAX_FOLLOWS_PER_CHAT"] = "3"
    await stack.bot.start()
    user = stack.user()
    assert "Now following @acct_a, @acct_b" in await user.ask("/follow @acct_a @acct_b")
    lookups = stack.x.request_count("/2/users/by/username")
    reply = await user.ask("/follow @acct_a @acct_c @acct_d")
    assert "at most 3 X accounts and feeds; this one follows 2, and these would add 2" in reply
    assert stack.x.request_count("/2/users/by/username") == lookups  # refused before X is asked
    assert "Now following @acct_c" in await user.ask("/follow @acct_a @acct_c")  # fits


async def test_x_lookups_are_capped_per_person_and_a_missing_handle_costs_once(
    stack: Stack,
) -> None:
    stack.x.add_user("real_one")
    stack.bot.env["X_LOOKUPS_PER_USER_PER_DAY"] = "2"
    await stack.bot.start()
    user, other = stack.user(), stack.user()
    lookups = "/2/users/by/username"
    reply = await user.ask("/follow @nope_one @nope_two @real_one")
    assert "No X account is named @nope_one, @nope_two" in reply
    assert "@real_one not checked: one person may have at most 2 new X accounts" in reply
    assert stack.x.request_count(lookups) == 2
    # A handle X said does not exist is remembered: asking again costs nothing.
    assert "No X account is named @nope_one" in await user.ask("/follow @nope_one")
    assert stack.x.request_count(lookups) == 2
    assert "not checked" in await user.ask("/follow @real_one")  # still today's quota
    assert stack.x.request_count(lookups) == 2
    # Another person has their own.
    assert "Now following @real_one" in await other.ask("/follow @real_one")
    assert stack.x.request_count(lookups) == 3
    # Once known, following it costs no lookup, quota or not.
    assert "Now following @real_one" in await user.ask("/follow @real_one")


async def test_edited_and_forwarded_commands_are_not_run(stack: Stack) -> None:
    """Commands come only from new messages their sender wrote: editing a days-old `/pause 3d`
    does not pause again, and a forwarded `/unfollow all` is not run as whoever forwarded it
    (a private chat is told once why; a group hears nothing)."""
    await stack.bot.start()
    user = stack.user()
    assert "Now following the category Software" in await user.ask("/follow software")
    pause = user.say("/pause 3d")
    assert "Paused until" in (await user.wait_for(2))[-1]
    assert "Welcome back" in await user.ask("/resume")
    before = len(user.received())
    stack.tg.edit_message(user.chat_id, pause["message_id"], "/pause 2d")
    assert "You were not paused" in await user.ask("/resume")
    assert len(user.received()) == before + 1  # nothing answered the edit
    stranger = stack.user()
    reply = await user.ask("/unfollow all", forwarded_from=stranger.user_id)
    assert "Forwarded commands are not run" in reply
    assert "Software" in await user.ask("/list")
    french = stack.user("fr")
    reply = await french.ask("/follow software", forwarded_from=stranger.user_id)
    assert "Les commandes transférées ne sont pas exécutées" in reply
    # In a group, an administrator's forwarded command is ignored without a word.
    group = -1001000000077
    stack.tg.add_chat(group, "supergroup", title="Club")
    stack.tg.set_member_status(group, user.user_id, "administrator")
    stack.tg.send_message(
        group,
        "/follow software",
        user_id=user.user_id,
        chat_type="supergroup",
        forwarded_from=stranger.user_id,
    )
    stack.tg.send_message(group, "/list", user_id=user.user_id, chat_type="supergroup")
    await eventually(lambda: len(stack.tg.messages_for(group)) >= 1, 15, "the group's /list")
    texts = [m.plain_text for m in stack.tg.messages_for(group)]
    assert len(texts) == 1 and "You follow nothing yet" in texts[0], texts


async def _replies_before_list(user: User, command: str, **extra: object) -> list[str]:
    """What the bot answered to `command` (sent with `extra`): every message before its answer
    to the /list sent right after (a chat's updates are answered in order)."""
    before = len(user.received())
    user.say(command, **extra)
    user.say("/list")
    await eventually(
        lambda: any(text.startswith("You follow") for text in user.texts()[before:]),
        60,
        "the answer to /list",
    )
    return user.texts()[before:-1]


async def test_every_per_item_report_of_follow_and_import_is_capped(stack: Stack) -> None:
    """Fifty feeds that cannot be followed were fifty lines (several messages for a /follow of
    4 KB, a dozen for an /import): a report explains at most 5 problems, then counts the rest,
    and names at most 20 accounts in a line."""
    stack.bot.env.update(MAX_FOLLOWS_PER_CHAT="1000", X_LOOKUPS_PER_USER_PER_DAY="1000")
    await stack.bot.start()
    user = stack.user()
    feeds = [
        f"http://10.0.0.1/offres/flux-des-offres-d-emploi-numero-{i:04d}.xml" for i in range(50)
    ]
    command = "/follow " + " ".join(feeds)
    assert len(command) <= 4096  # what Telegram lets a person send
    replies = await _replies_before_list(user, command)
    assert len(replies) == 1, [len(text) for text in replies]
    lines = replies[0].splitlines()
    assert sum("private or local network" in line for line in lines) == 5, lines
    assert lines[-2:] == ["… (+45)", "Nothing was changed."], lines
    assert len(lines) == 7

    outlines = b"".join(
        b'<outline type="rss" xmlUrl="http://10.0.0.2/a-feed-behind-a-firewall-%04d.xml"/>' % i
        for i in range(120)
    )
    outlines += b"".join(b'<outline url="https://x.com/nobody_%05d"/>' % i for i in range(80))
    opml = b'<?xml version="1.0"?><opml version="2.0"><head/><body>%s</body></opml>' % outlines
    replies = await _replies_before_list(user, "/import", document=("many.opml", opml))
    assert len(replies) == 1, [len(text) for text in replies]
    lines = replies[0].splitlines()
    assert sum("private or local network" in line for line in lines) == 5, lines
    assert "… (+115)" in lines
    missing = next(line for line in lines if line.startswith("❓ No X account is named"))
    assert missing.count("@nobody_") == 20 and "… (+60)" in missing, missing
    assert len(lines) <= 9, lines


async def test_a_command_does_not_run_when_noting_its_chat_failed(stack: Stack) -> None:
    """The database refuses to store one chat (a trigger, as a full disk or a constraint would):
    noting the chat before the command fails, the person gets one apology, and the command does
    not run on what was left undone (a /follow without the chat's row failed again on a foreign
    key and apologised twice). Other chats are served."""
    import sqlite3

    import asyncpg
    from sqlalchemy.engine import make_url

    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user, other = stack.user(), stack.user()
    if stack.database_url.startswith("sqlite"):
        connection = sqlite3.connect(stack.database_url.removeprefix("sqlite:///"), timeout=10)
        connection.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON chats WHEN NEW.id = {user.chat_id} "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        connection.commit()
        connection.close()
    else:
        dsn = make_url(stack.database_url).set(drivername="postgresql").render_as_string(False)
        pg = await asyncpg.connect(dsn)
        await pg.execute(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.id = {user.chat_id} THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        await pg.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON chats FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
        await pg.close()
    assert "Something went wrong" in await user.ask("/follow @acme_jobs")
    assert "Now following @acme_jobs" in await other.ask("/follow @acme_jobs")
    await stack.db.idle()
    assert len(user.received()) == 1  # one apology, not two
    log = stack.bot.log
    assert log.count("unhandled error while processing an update") == 1
    assert "ForeignKeyViolation" not in log and "FOREIGN KEY constraint failed" not in log
    stack.tracebacks_checked = True  # the one traceback is the refused insert's
