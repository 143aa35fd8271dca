"""Categories end to end: following a kind of job, filters, one story from two accounts, job
boards, and the replies to bad input, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.e2e.harness import Stack, eventually, x_reads

SOFTWARE = (
    "🚀 We're hiring a Backend Developer (Python) in Lyon – CDI, hybrid 2 days a week. "
    "Apply: https://jobs.acme.example/backend-42"
)
HR = "Nous recrutons un(e) chargé(e) de recrutement en CDI à Paris. Postulez sur notre site !"
NEWS = "Big news: we just opened our new office in Lyon 🎉 Thanks to the whole team!"
INTERNSHIP = (
    "Stage développeur Python (6 mois) à Lyon, postulez : https://jobs.acme.example/stage-7"
)


async def test_a_category_follower_gets_the_software_offer_only(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    stack.boards("acme_jobs")
    await stack.bot.start()
    by_account = await stack.follower("acme_jobs")
    by_category = stack.user()
    reply = await by_category.ask("/follow software")
    assert "Now following the category Software" in reply
    for text in (SOFTWARE, HR, NEWS):
        stack.x.add_post("acme_jobs", text)
    texts = await by_account.wait_for(4)  # the /follow reply, then three posts
    assert [t.split("\n")[2] for t in texts[1:]] == [SOFTWARE, HR, NEWS]
    pushed = (await by_category.wait_for(2))[1]
    assert SOFTWARE in pushed
    # The tags a job seeker scans first, and the apply link.
    assert "Permanent (CDI) · Hybrid · 📍 Lyon" in pushed
    assert "🏷 Software" in pushed
    message = by_category.received()[1]
    assert '<a href="https://jobs.acme.example/backend-42">👉 Apply</a>' in message.text
    await stack.quiet("acme_jobs")  # more polls: neither the HR offer nor the news comes
    assert len(by_category.received()) == 2
    assert "Software" in await by_category.ask("/list")


async def test_a_filter_keeps_internships_out(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    await stack.bot.start()
    user = await stack.follower("acme_jobs")
    reply = await user.ask("/filter +python -stage")
    assert "Filter saved" in reply and "+python" in reply and "-stage" in reply
    assert "Filter: +python -stage" in await user.ask("/list")
    stack.x.add_post("acme_jobs", INTERNSHIP)
    stack.x.add_post("acme_jobs", SOFTWARE)
    stack.x.add_post("acme_jobs", HR)  # no "python": left out too
    texts = await user.wait_for(4)
    await stack.quiet("acme_jobs")
    assert len(user.received()) == 4
    assert SOFTWARE in texts[3]
    assert "removed" in await user.ask("/filter off")
    stack.x.add_post("acme_jobs", HR)
    assert HR in (await user.wait_for(6))[5]


async def test_one_offer_posted_by_two_accounts_arrives_once_naming_both(stack: Stack) -> None:
    stack.x.add_user("acme_jobs")
    stack.x.add_user("lyon_jobs")
    stack.boards("acme_jobs", "lyon_jobs")
    await stack.bot.start()
    user = stack.user()
    assert "Now following @acme_jobs, @lyon_jobs" in await user.ask("/follow @acme_jobs @lyon_jobs")
    fan = stack.user()
    await fan.ask("/follow software")
    await x_reads(stack.x, "acme_jobs", "lyon_jobs", count=1)  # what comes next is new
    # Both posts are there before the next poll reads them (a poll between the two would
    # rightly send the first alone): posted while the bot is stopped, read in one cycle.
    await stack.bot.stop()
    stack.x.add_post("acme_jobs", SOFTWARE)
    stack.x.add_post(
        "lyon_jobs",
        SOFTWARE.replace("https://jobs.acme.example/backend-42", "https://t.co/Ab12")
        + " #job #Lyon",
    )
    await stack.bot.start()
    for person in (user, fan):
        text = (await person.wait_for(2))[1]
        assert text.startswith("@acme_jobs · also posted by @lyon_jobs"), text
    await stack.quiet("acme_jobs", "lyon_jobs")
    assert len(user.received()) == 2
    assert len(fan.received()) == 2


async def test_job_boards_feed_category_followers_without_anyone_following_them(
    stack: Stack,
) -> None:
    stack.x.add_user("emploi_board")
    boards = stack.workdir / "boards.toml"
    boards.write_text('accounts = ["@emploi_board"]\n', encoding="utf-8")
    stack.bot.env["BOARDS_FILE"] = str(boards)
    await stack.bot.start()
    user = stack.user("fr")
    assert "Vous suivez maintenant la catégorie RH" in await user.ask("/follow rh")
    # The board's first poll: only what is posted from now on.
    await x_reads(stack.x, "emploi_board", count=1)
    stack.x.add_post("emploi_board", HR)
    stack.x.add_post("emploi_board", SOFTWARE)
    text = (await user.wait_for(2))[1]
    assert HR in text
    assert "CDI · 📍 Paris" in text
    await stack.quiet("emploi_board")
    assert len(user.received()) == 2


async def test_a_boards_file_with_a_byte_order_mark_is_read_and_known_boards_cost_no_lookup(
    stack: Stack,
) -> None:
    """Some editors save UTF-8 with a byte-order mark; and a restart reads the boards the
    database knows instead of looking each one up again (X bills every lookup)."""
    stack.x.add_user("emploi_board")
    boards = stack.workdir / "boards.toml"
    boards.write_text('accounts = ["@emploi_board"]\n', encoding="utf-8-sig")
    assert boards.read_bytes().startswith(b"\xef\xbb\xbf")
    stack.bot.env["BOARDS_FILE"] = str(boards)
    await stack.bot.start()
    await eventually(lambda: "job boards: 1 account(s)" in stack.bot.log, 15, "the board saved")
    assert stack.x.request_count("/2/users/by/username") == 1
    await stack.bot.stop()
    await stack.bot.start()
    user = stack.user("fr")
    assert "Vous suivez maintenant la catégorie RH" in await user.ask("/follow rh")
    await x_reads(stack.x, "emploi_board", count=1)
    stack.x.add_post("emploi_board", HR)
    assert HR in (await user.wait_for(2))[1]
    assert stack.x.request_count("/2/users/by/username") == 1


async def test_a_stranger_s_own_source_never_reaches_category_followers(stack: Stack) -> None:
    """The bot is public: following your own account (or feed) and posting an offer-shaped
    text with a link of your choice must not reach every follower of `software`. Only curated
    sources (job boards) feed the categories; an operator curates with /admin board."""
    for handle in ("emploi_board", "spammer_jobs"):
        stack.x.add_user(handle)
    stack.boards("emploi_board")
    operator = stack.user()
    stack.bot.env["ADMIN_USER_IDS"] = str(operator.user_id)
    await stack.bot.start()
    spammer = await stack.follower("spammer_jobs")
    seeker = stack.user()
    await seeker.ask("/follow software")
    await x_reads(stack.x, "emploi_board", count=1)
    spam = SOFTWARE.replace("https://jobs.acme.example/backend-42", "https://evil.example/x")
    stack.x.add_post("spammer_jobs", spam)
    await spammer.wait_for(2)  # its own follower gets it, as an account's follower should
    stack.x.add_post("emploi_board", SOFTWARE)
    text = (await seeker.wait_for(2))[1]
    assert text.startswith("@emploi_board") and "evil.example" not in text
    await stack.quiet("emploi_board", "spammer_jobs")
    assert len(seeker.received()) == 2  # the board's offer, never the stranger's
    # The operator sees who is followed without being curated, and decides.
    listing = await operator.ask("/admin board list")
    assert "1 job board:" in listing and "@emploi_board (BOARDS_FILE)" in listing
    candidates = await operator.ask("/admin board candidates")
    assert "@spammer_jobs · 1 followers; 1 posts, 100% offers" in candidates, candidates
    assert "is now a job board" in await operator.ask("/admin board add @spammer_jobs")
    assert "already a job board" in await operator.ask("/admin board add @spammer_jobs")
    stack.x.add_post(
        "spammer_jobs",
        "We are hiring a Frontend Engineer (TypeScript, React) in Nantes, CDI, remote-friendly. "
        "Apply: https://jobs.example/frontend-7",
    )
    await eventually(lambda: len(seeker.received()) == 3, 15, "the curated account's offer")
    assert "no longer a job board" in await operator.ask("/admin board remove @spammer_jobs")
    assert "no such X account or feed" in await operator.ask("/admin board remove @nobody_here")
    # Nobody else may curate: to them /admin does not exist.
    assert "I don't know that command" in await seeker.ask("/admin board add @spammer_jobs")


async def test_categories_buttons_follow_and_unfollow(stack: Stack) -> None:
    await stack.bot.start()
    user = stack.user("fr")
    await user.ask("/categories")
    message = user.received()[-1]
    assert message.reply_markup is not None
    buttons = [b for row in message.reply_markup["inline_keyboard"] for b in row]
    design = next(b for b in buttons if b["callback_data"] == "ct:design:0")  # no topic
    assert design["text"] == "Design (graphisme)"
    stack.tg.press_button(
        user.chat_id, message.message_id, "ct:design:0", user_id=user.user_id, language_code="fr"
    )
    await eventually(lambda: bool(stack.tg.callback_answers), 15, "the button's answer")

    def ticked() -> bool:
        keyboards = [m.reply_markup for m in stack.tg.messages_for(user.chat_id) if m.reply_markup]
        labels = [b["text"] for row in keyboards[-1]["inline_keyboard"] for b in row]
        return "✅ Design (graphisme)" in labels

    # The keyboard is edited in place, after the answer: the category is ticked. (Waited for
    # before /list, or the edit could be taken for /list's reply.)
    await eventually(ticked, 15, "the keyboard edited with the category ticked")
    assert "Design (graphisme)" in await user.ask("/list")
    assert "Vous ne suivez plus Design (graphisme)" in await user.ask("/unfollow graphisme")


async def test_bad_category_and_filter_input_gets_clear_replies_and_changes_nothing(
    stack: Stack,
) -> None:
    await stack.bot.start()
    user = stack.user()
    assert "Filter saved" in await user.ask("/filter +python")
    reply = await user.ask("/follow nosuchcategory")
    assert "nosuchcategory is not a job category." in reply
    assert "For an X account, write it with its @: @nosuchcategory" in reply
    assert "/categories lists the categories you can follow.\nNothing was changed." in reply
    assert reply.count("Nothing was changed") == 1
    assert stack.x.request_count("/2/users/by/username") == 0  # no X lookup on a guess
    reply = await user.ask("/follow software$$")
    # A plain word is always read as a category, whatever its symbols.
    assert "software$$ is not a job category. /categories lists" in reply
    assert "X handle" not in reply and reply.count("Nothing was changed") == 1
    many = " ".join(f"+word{i}" for i in range(21))
    reply = await user.ask(f"/filter {many}")
    assert "That is more than 20 words. Nothing was changed." in reply
    assert "/filter +python +remote -stage" in reply  # says what is accepted
    reply = await user.ask("/filter +")
    assert "A + or - needs a word right after it" in reply
    assert "Your filter: +python" in await user.ask("/filter")
    assert "You follow nothing yet" in await user.ask("/list")


async def test_a_filter_word_is_measured_as_it_is_stored(stack: Stack) -> None:
    """`İ` is two characters once lowered (`i̇`): forty of them were 80 characters, past the
    column PostgreSQL checks (and an apology there). Lengths are checked after lowering."""
    await stack.bot.start()
    user = stack.user()
    reply = await user.ask("/filter +" + "İ" * 40)
    assert "Something went wrong" not in reply, reply
    assert "at most 40 characters" in reply and "Nothing was changed." in reply, reply
    assert "You have no filter" in await user.ask("/filter")
    assert "Filter saved: +" + "i̇" * 20 in await user.ask("/filter +" + "İ" * 20)
    assert "Your filter: +" + "i̇" * 20 in await user.ask("/filter")
