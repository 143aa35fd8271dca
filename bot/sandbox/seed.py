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
}

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
    text = rng.choice(OFFERS[handle])
    reference = rng.randint(100, 999)
    text = f"{text} (ref. {reference})"
    x.add_post(handle, text)
    return handle, text
