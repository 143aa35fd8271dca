"""Recruiter accounts and job offers the sandbox's X stand-in starts with and keeps posting."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

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


def post_random_offer(x: XStandIn, rng: random.Random) -> tuple[str, str]:
    """Post one more offer from a random account, as a recruiter would; returns (handle, text)."""
    handle = rng.choice(sorted(ACCOUNTS))
    news = NEWS.get(handle)
    text = rng.choice(news if news and rng.random() < 0.25 else OFFERS[handle])
    reference = rng.randint(100, 999)
    text = f"{text} (ref. {reference})"
    x.add_post(handle, text)
    return handle, text
