"""Recruiter accounts and job offers the sandbox's X stand-in starts with and keeps posting."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from bot.sandbox.feeds_api import FeedStandIn
from bot.sandbox.x_api import XStandIn

ACCOUNTS: dict[str, str] = {
    "acme_jobs": "Acme Jobs",
    "paris_recrute": "Paris Recrute",
    "devjobs_fr": "DevJobs FR",
    "studio_design": "Studio Design Jobs",
    "rh_talents": "RH Talents",
    "emploi_board": "Emploi Board",
}

# A job board: polled for category followers (`/follow software`) without being followed.
BOARDS = ["emploi_board"]

OFFERS: dict[str, list[str]] = {
    "acme_jobs": [
        "We're hiring a Senior Python Developer (remote, full-time). Apply: https://acme.example/jobs/1",
        "Acme is looking for a Product Designer in Lyon, CDI. Details & apply: https://acme.example/jobs/2",
        "New role: Data Analyst <SQL & dashboards>, hybrid in Paris. https://acme.example/jobs/3",
        "Internship: 6-month frontend internship (React) starting in March. https://acme.example/jobs/4",
    ],
    "paris_recrute": [
        "Offre CDI : chargé(e) de communication H/F, Paris 11e. Candidature : https://pr.example/o/81",
        "Nous recrutons un(e) développeur·se web full-stack, télétravail partiel. https://pr.example/o/82",
        "Stage RH de 6 mois, recrutement & onboarding, à Nanterre. https://pr.example/o/83",
        "Alternance : assistant(e) marketing digital, rentrée de septembre. https://pr.example/o/84",
    ],
    "devjobs_fr": [
        "CDI développeur Go/Kubernetes, Toulouse ou full remote, 55-65k€. https://devjobs.example/2231",
        "Freelance : mission de 3 mois en Rust (embarqué), Grenoble. https://devjobs.example/2232",
        "Lead dev backend Python/Django, Nantes, hybride 2j/semaine. https://devjobs.example/2233",
    ],
    "studio_design": [
        "Graphiste junior (print & digital) en CDD 6 mois, Bordeaux. https://studio.example/j/7",
        "We're hiring a UX researcher, part-time, remote within EU. https://studio.example/j/8",
    ],
    "rh_talents": [
        "Chargé(e) de recrutement IT en CDI, Lille. Envoyez votre CV : https://rh.example/p/55",
        "HR Business Partner (English speaking), Paris, hybrid. https://rh.example/p/56",
    ],
    "emploi_board": [
        "[JOB] Développeur React (F/H) – CDI – Lyon – hybride. Postulez : https://board.example/1",
        "UX/UI Designer – freelance 3 mois – 100% remote. https://board.example/2",
        "Chargé·e de recrutement – CDD 6 mois – Rennes. Postulez : https://board.example/3",
        "Community manager (H/F) en alternance à Nantes. https://board.example/4",
    ],
}

# What recruiters post besides offers: category followers never get these.
NEWS: dict[str, list[str]] = {
    "acme_jobs": [
        "Big news: Acme just opened a new office in Lyon 🎉 Thanks to the whole team!",
        "Join us at our webinar on Thursday: how to write a CV that recruiters read.",
    ],
    "emploi_board": [
        "Salon de l'emploi de Nantes le 14 mars : venez rencontrer nos recruteurs !",
        "Pas de recrutement chez nous cet été, mais suivez-nous pour la rentrée 😉",
    ],
}


def seed(x: XStandIn, *, now: datetime | None = None) -> None:
    """Create the accounts with a few days of past offers (older than any follow)."""
    now = now or datetime.now(UTC)
    for handle, name in ACCOUNTS.items():
        x.add_user(handle, name=name)
        for age, text in enumerate(reversed(OFFERS[handle]), start=1):
            x.add_post(handle, text, created_at=now - timedelta(hours=6 * age))


def post_random_post(x: XStandIn, rng: random.Random) -> tuple[str, str]:
    """Post one more thing from a random account, as a recruiter would: mostly offers, now and
    then news or an event (NEWS); returns (handle, text)."""
    handle = rng.choice(sorted(ACCOUNTS))
    news = NEWS.get(handle)
    text = rng.choice(news if news and rng.random() < 0.25 else OFFERS[handle])
    reference = rng.randint(100, 999)
    text = f"{text} (ref. {reference})"
    x.add_post(handle, text)
    return handle, text


# Feeds beside X: a job board's RSS feed, a Mastodon and a Bluesky recruiter.
FEED_HOST = "emploi.example"
FEED_PATH = "/offres.xml"
MASTODON_INSTANCE = "mastodon.example"
MASTODON_USER = "recrutement"
BLUESKY_HANDLE = "jobs.bsky.social"
FEED_ADDRESSES = [
    f"https://{FEED_HOST}{FEED_PATH}",
    f"@{MASTODON_USER}@{MASTODON_INSTANCE}",
    BLUESKY_HANDLE,
]
FEED_OFFERS = [
    ("Développeur·se PHP/Symfony (H/F)", "<p>CDI à <b>Rennes</b>, télétravail 2 j/sem.</p>"),
    ("Chargé(e) de communication", "<p>CDD 6 mois, Marseille &amp; déplacements.</p>"),
    ("Data engineer", "<p>Full remote, Spark &amp; Airflow, 50-60k€.</p>"),
]


def seed_feeds(feeds: FeedStandIn, *, now: datetime | None = None) -> None:
    """A job board's feed, a Mastodon and a Bluesky account, each with past offers."""
    now = now or datetime.now(UTC)
    feeds.mastodon_max_age = 0  # the sandbox polls every few seconds
    feeds.add_feed(FEED_HOST, FEED_PATH, fmt="rss2", title="Emploi Example — offres")
    for age, (title, body) in enumerate(FEED_OFFERS, start=1):
        feeds.add_entry(
            FEED_HOST,
            FEED_PATH,
            title=title,
            html=body,
            link=f"https://{FEED_HOST}/offre/{age}",
            published=now - timedelta(hours=5 * age),
        )
    feeds.add_mastodon_account(MASTODON_INSTANCE, MASTODON_USER, display_name="Recrutement Lyon")
    feeds.mastodon_post(
        MASTODON_INSTANCE,
        MASTODON_USER,
        "Nous recrutons un(e) assistant(e) RH en alternance à Lyon #emploi #RH",
        published=now - timedelta(hours=3),
    )
    feeds.add_bluesky_account(BLUESKY_HANDLE, display_name="Jobs on Bluesky")
    feeds.bluesky_post(
        BLUESKY_HANDLE,
        "We're hiring a frontend developer (React), remote within EU. Apply: https://jobs.example/7",
        published=now - timedelta(hours=2),
    )


def post_random_feed_entry(feeds: FeedStandIn, rng: random.Random) -> tuple[str, str]:
    """Publish one more offer on one of the feeds; returns (where, text)."""
    reference = rng.randint(100, 999)
    where = rng.choice(FEED_ADDRESSES)
    title, body = rng.choice(FEED_OFFERS)
    if where == BLUESKY_HANDLE:
        text = f"Hiring: {title}, apply now (ref. {reference})"
        feeds.bluesky_post(BLUESKY_HANDLE, text)
    elif where.startswith("@"):
        text = f"On recrute : {title} (réf. {reference}) #emploi"
        feeds.mastodon_post(MASTODON_INSTANCE, MASTODON_USER, text)
    else:
        text = f"{title} (réf. {reference})"
        feeds.add_entry(
            FEED_HOST,
            FEED_PATH,
            title=text,
            html=body,
            link=f"https://{FEED_HOST}/offre/{reference}",
        )
    return where, text
