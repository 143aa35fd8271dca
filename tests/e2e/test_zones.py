"""Time zones end to end: /timezone takes only real Area/City zones, and a chat whose stored
zone cannot be loaded (written before that check, or by hand) never stops the other chats'
pushes, digests and weekly summaries; its own offers wait until its zone is fixed."""

from __future__ import annotations

import contextlib
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import select, text

from storage.models import Delivery, DeliveryStatus
from tests.e2e.harness import eventually, x_reads
from tests.e2e.live import PARIS, Live, LiveUser, live_bot, recent_paris

BROKEN_ZONE = "No/Such_Zone"


async def _follower(live: Live, language: str = "en") -> LiveUser:
    with contextlib.suppress(ValueError):  # already on the X stand-in
        live.x.add_user("acme_jobs")
    user = live.user(language)
    await user.ask("/follow @acme_jobs")
    return user


def _offers(user: LiveUser) -> list[str]:
    return [t for t in user.texts() if t.startswith("@acme_jobs")]


def _digests(user: LiveUser) -> list[str]:
    return [t for t in user.texts() if t.startswith(("Your digest", "Votre récapitulatif"))]


def _monday_morning() -> datetime:
    """08:00 in Paris on the latest Monday at least two days back."""
    monday = recent_paris(time(8, 0))
    while monday.astimezone(PARIS).weekday() != 0:
        monday -= timedelta(days=1)
    return monday


async def _set_zone(live: Live, chat_id: int, zone: str) -> None:
    async with live.db.engine.begin() as connection:
        await connection.execute(
            text("UPDATE chats SET timezone = :zone WHERE id = :chat"),
            {"zone": zone, "chat": chat_id},
        )


async def _statuses(live: Live, chat_id: int) -> list[DeliveryStatus]:
    async with live.db.engine.connect() as connection:
        rows = await connection.scalars(
            select(Delivery.status)
            .where(Delivery.chat_id == chat_id, Delivery.offer_id.is_not(None))
            .order_by(Delivery.id)
        )
        return [DeliveryStatus(status) for status in rows]


async def test_a_chat_whose_zone_cannot_be_loaded_stops_no_other_chat(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    monday = _monday_morning()
    async with live_bot(database_url, monday) as live:
        healthy = await _follower(live)
        broken = await _follower(live)
        await x_reads(live.x, "acme_jobs", count=1)  # the first poll sets the cursor
        await healthy.ask("/limit 2")
        await broken.ask("/limit 0")
        live.x.add_post("acme_jobs", "Offer 0")
        await eventually(lambda: len(_offers(healthy)) == 1, 15, "the first push")
        await live.quiet("acme_jobs")
        assert await _statuses(live, broken.chat_id) == [DeliveryStatus.HELD]
        # A zone stored before /timezone checked them, or by hand, that this host cannot load.
        await _set_zone(live, broken.chat_id, BROKEN_ZONE)

        # The sender claims both chats' rows in one batch: the healthy chat still gets its push.
        live.x.add_post("acme_jobs", "Offer 1")
        await eventually(lambda: len(_offers(healthy)) == 2, 15, "a push beside the broken chat")
        live.x.add_post("acme_jobs", "Offer 2")  # over the healthy chat's limit: held
        await x_reads(live.x, "acme_jobs", count=2)
        await eventually(
            lambda: f"chat {broken.chat_id}" in caplog.text and BROKEN_ZONE in caplog.text,
            15,
            "a log line naming the broken chat and its zone",
        )

        # Monday 09:00: the healthy chat's weekly summary.
        live.advance_to(monday + timedelta(hours=1))
        await eventually(
            lambda: any("Your week with jobrelay" in t for t in healthy.texts()),
            15,
            "the healthy chat's weekly summary",
        )
        # 19:00: the healthy chat's digest of its held offer.
        live.advance_to(monday + timedelta(hours=11))
        await eventually(lambda: len(_digests(healthy)) == 1, 15, "the healthy chat's digest")
        assert "Offer 2" in _digests(healthy)[0]
        await live.ticks()
        assert _offers(broken) == [] and _digests(broken) == []
        assert not any("Your week" in t for t in broken.texts())
        # Nothing of the broken chat was lost: its new offers wait to be tried again.
        assert await _statuses(live, broken.chat_id) == [
            DeliveryStatus.HELD,
            DeliveryStatus.PENDING,
            DeliveryStatus.PENDING,
        ]

        # Once its zone is set again, everything it missed comes.
        assert "Time zone set to Europe/Paris" in await broken.ask("/timezone Europe/Paris")
        live.advance_to(monday + timedelta(days=1, hours=2))
        await live.quiet("acme_jobs")
        live.advance_to(monday + timedelta(days=1, hours=11))
        await eventually(
            lambda: all(any(f"Offer {i}" in d for d in _digests(broken)) for i in range(3)),
            15,
            "the broken chat's offers once its zone is fixed",
        )
        assert len(_offers(healthy)) == 2 and len(_digests(healthy)) == 1


async def test_timezone_takes_only_area_city_zones(database_url: str) -> None:
    async with live_bot(database_url, recent_paris(time(10, 0))) as live:
        user = await _follower(live)
        for word in (
            "localtime",
            "posixrules",
            "Factory",
            "../../../../etc/passwd",
            "posix/Europe/Paris",
            "right/Europe/Paris",
            "Europe/../Asia/Tokyo",
            "Europe/Paris" + "/x" * 40,
            "a" * 300,
        ):
            reply = await user.ask(f"/timezone {word}")
            assert "Europe/Paris" in reply and "Nothing was changed" in reply, word
            assert "Area/City" in reply, word
        assert "Time zone: Europe/Paris" in await user.ask("/settings")
        french = await _follower(live, "fr")
        refused = await french.ask("/timezone localtime")
        assert "Zone/Ville" in refused and "Rien n'a été modifié" in refused, refused
        assert "Time zone set to America/Argentina/Buenos_Aires" in await user.ask(
            "/timezone america/argentina/buenos_aires"
        )
        assert "Time zone set to UTC" in await user.ask("/timezone utc")
