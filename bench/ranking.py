"""Ranking (issue #17): 30 simulated days of a person who saves only remote Python offers,
among a mix of offers from eight sources, with ranking off and on.

    python -m bench.ranking            # limits 5 and 10, seeds 1-5
    python -m bench.ranking --seeds 3

The decisions are the sender's own functions (`bot.ranking.features/train/plan`, the daily
limit of `bot.policy.hold_reason`); what is simulated is the world around them: offers arrive
between 08:00 and 22:00 and are read every 15 minutes; each read's offers are "of the moment";
the day's pushes stop at the limit and the rest waits for the 19:00 digest (after 19:00, the
next day's); the person sees every push at once and every digest at 19:00, and saves each
remote Python offer seen (and nothing else: no 👎, the hardest case for the model). The model
is retrained from the chat's history before each read, as the sender loads it per batch.

Measured: the share of instant pushes that were wanted (target: ranking on ≥ 2× off), and the
offers delivered in all, pushed or in a digest (target: never fewer with ranking on).
"""

from __future__ import annotations

import argparse
import random
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from bot.policy import ChatPolicy, hold_reason
from bot.ranking import Example, features, plan, train

DAYS = 30
PER_DAY = 40
READ_EVERY = timedelta(minutes=15)
DIGEST_AT = time(19, 0)

# (stack, the words offers of it use, its categories)
STACKS = {
    "python": (["Python", "Django", "FastAPI", "Python/Django"], ["software", "web"]),
    "java": (["Java", "Spring Boot", "Kotlin"], ["software"]),
    "php": (["PHP", "Symfony", "Laravel"], ["web", "software"]),
    "js": (["React", "Node.js", "TypeScript", "Vue.js"], ["web", "software"]),
    "data": (["SQL", "Power BI", "dbt", "Snowflake"], ["software"]),
    "design": (["Figma", "UX", "UI"], ["design"]),
    "marketing": (["SEO", "social media", "content"], ["communication"]),
    "sales": (["B2B sales", "account management"], []),
    "hr": (["recruitment", "payroll"], ["hr"]),
}
ROLES = {
    "python": ["Backend developer", "Développeur·se backend", "Data engineer", "Software engineer"],
    "java": ["Backend developer", "Développeur Java", "Software engineer"],
    "php": ["Web developer", "Développeur·se web", "Lead developer"],
    "js": ["Frontend developer", "Fullstack developer", "Développeur·se front"],
    "data": ["Data analyst", "Analytics engineer", "BI developer"],
    "design": ["Product designer", "UX designer", "Designer UI"],
    "marketing": ["Marketing manager", "Chargé·e de communication", "Content writer"],
    "sales": ["Account executive", "Business developer", "Commercial·e"],
    "hr": ["HR business partner", "Chargé·e de recrutement", "Payroll officer"],
}
MODES = {
    "remote": ["remote", "full remote", "télétravail complet"],
    "hybrid": ["hybrid", "hybride"],
}
CITIES = ["Paris", "Lyon", "Nantes", "Lille", "Bordeaux", "Toulouse", "Rennes", "Marseille"]
CONTRACTS = ["cdi", "cdd", "freelance", "internship"]
COMPANIES = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne",
    "Soylent", "Vandelay", "Wonka", "Aperture", "Massive", "Oscorp", "Duff",
]  # fmt: skip
TEMPLATES = [
    "{company} recrute : {role} ({words}) · {city} · {mode} · {contract}",
    "We're hiring a {role} with {words} experience in {city}, {mode}. {contract}. Apply now!",
    "[Job] {role} — {words} — {company}, {city} ({mode})",
    "Offre : {role} {words} chez {company}, {city}, {mode}, {contract}. Postulez !",
    "{company} is looking for a {role}: {words}, {mode}, {city}. #hiring",
]
# Eight sources, each with its own mix of stacks (weights) and share of remote offers.
SOURCES = {
    "pyjobs_fr": ({"python": 5, "data": 2, "js": 1}, 0.35),
    "remote_board": ({"js": 3, "python": 2, "design": 2, "marketing": 1}, 0.8),
    "lyon_tech": ({"java": 3, "php": 2, "js": 2, "python": 1}, 0.15),
    "paris_jobs": ({"sales": 3, "marketing": 2, "hr": 2, "js": 1, "python": 1}, 0.1),
    "design_hub": ({"design": 5, "marketing": 1}, 0.3),
    "startups_fr": ({"js": 2, "python": 2, "sales": 2, "data": 1}, 0.3),
    "java_corp": ({"java": 4, "data": 1}, 0.05),
    "rh_emploi": ({"hr": 4, "sales": 2}, 0.1),
}
SOURCE_WEIGHTS = {
    "pyjobs_fr": 3, "remote_board": 4, "lyon_tech": 6, "paris_jobs": 7, "design_hub": 4,
    "startups_fr": 5, "java_corp": 4, "rh_emploi": 4,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Offer:
    """One simulated offer."""

    at: datetime
    author: str
    text: str
    tags: dict[str, object]
    wanted: bool


def make_offers(rng: random.Random, start: datetime) -> list[Offer]:
    """30 days of offers, oldest first."""
    offers = []
    names = list(SOURCE_WEIGHTS)
    for day in range(DAYS):
        for _ in range(PER_DAY):
            author = rng.choices(names, weights=[SOURCE_WEIGHTS[n] for n in names])[0]
            mix, remote_share = SOURCES[author]
            stack = rng.choices(list(mix), weights=list(mix.values()))[0]
            mode = (
                "remote"
                if rng.random() < remote_share
                else rng.choice(["hybrid", "on_site", "on_site"])
            )
            words, categories = STACKS[stack]
            city = rng.choice(CITIES)
            contract = rng.choice(CONTRACTS)
            text = rng.choice(TEMPLATES).format(
                company=rng.choice(COMPANIES),
                role=rng.choice(ROLES[stack]),
                words=" / ".join(rng.sample(words, k=min(2, len(words)))),
                city=city,
                mode=rng.choice(MODES[mode]) if mode in MODES else "on site",
                contract=contract.upper(),
            )
            minute = rng.randrange(8 * 60, 22 * 60)
            at = start + timedelta(days=day, minutes=minute)
            tags: dict[str, object] = {
                "categories": categories,
                "contracts": [contract],
                "city": city,
            }
            if mode == "remote":
                tags["work_mode"] = "remote"
            elif mode == "hybrid":
                tags["work_mode"] = "hybrid"
            offers.append(
                Offer(at, author, text, tags, wanted=stack == "python" and mode == "remote")
            )
    return sorted(offers, key=lambda o: o.at)


@dataclass
class Result:
    """What one simulated month gave."""

    pushed: int = 0
    pushed_wanted: int = 0
    digested: int = 0
    wanted: int = 0
    wanted_seen_at_once: int = 0

    @property
    def share(self) -> float:
        """Share of instant pushes that were wanted."""
        return self.pushed_wanted / self.pushed if self.pushed else 0.0

    @property
    def delivered(self) -> int:
        return self.pushed + self.digested


def simulate(offers: list[Offer], *, limit: int, ranking: bool, start: datetime) -> Result:
    """One month for one chat (UTC, quiet hours off, daily digest at 19:00)."""
    policy = ChatPolicy(timezone="UTC", daily_limit=limit)
    result = Result(wanted=sum(o.wanted for o in offers))
    history: list[Example] = []
    held: list[Offer] = []
    pushed_today = 0
    day = start.date()
    index = 0
    moment = start
    end = start + timedelta(days=DAYS + 1)
    digest_done: set[object] = set()
    while moment < end:
        if moment.date() != day:
            day, pushed_today = moment.date(), 0
        if moment.time() >= DIGEST_AT and day not in digest_done:
            digest_done.add(day)
            for offer in held:  # seen in the digest: saved if wanted
                history.append(
                    Example(features(offer.author, offer.text, offer.tags), offer.wanted)
                )
            result.digested += len(held)
            held = []
        batch = []
        while index < len(offers) and offers[index].at <= moment:
            batch.append(offers[index])
            index += 1
        if batch:
            model = train(history) if ranking else None
            feats = [features(o.author, o.text, o.tags) for o in batch]
            scores = [model.score(f) for f in feats] if model else [None] * len(batch)
            chosen = plan(scores, usual=model.usual if model else None)
            held += [batch[i] for i in chosen.below]
            for i in chosen.order:
                offer = batch[i]
                if hold_reason(policy, moment, pushed_today) is not None:
                    held.append(offer)
                    continue
                pushed_today += 1
                result.pushed += 1
                result.pushed_wanted += offer.wanted
                result.wanted_seen_at_once += offer.wanted
                history.append(Example(feats[i], offer.wanted))
        moment += READ_EVERY
    result.digested += len(held)  # the last digest, after the month
    return result


def main() -> None:
    """Run the month for each seed and limit, ranking off and on; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--limits", type=int, nargs="+", default=[5, 10])
    args = parser.parse_args()
    start = datetime(2026, 11, 2, tzinfo=UTC)
    print(
        "| daily limit | ranking | instant pushes | wanted among them | share wanted | "
        "delivered in all | wanted offers pushed at once |"
    )
    print("|---|---|---|---|---|---|---|")
    for limit in args.limits:
        shares: dict[bool, list[float]] = {False: [], True: []}
        for ranking in (False, True):
            total = Result()
            for seed in range(1, args.seeds + 1):
                offers = make_offers(random.Random(seed), start)
                one = simulate(offers, limit=limit, ranking=ranking, start=start)
                shares[ranking].append(one.share)
                total.pushed += one.pushed
                total.pushed_wanted += one.pushed_wanted
                total.digested += one.digested
                total.wanted += one.wanted
                total.wanted_seen_at_once += one.wanted_seen_at_once
            print(
                f"| {limit} | {'on' if ranking else 'off'} | {total.pushed} | "
                f"{total.pushed_wanted} | {total.share:.1%} | {total.delivered} | "
                f"{total.wanted_seen_at_once} of {total.wanted} |"
            )
        ratios = [on / off for off, on in zip(shares[False], shares[True], strict=True) if off]
        mean = statistics.mean(shares[True]) / statistics.mean(shares[False])
        print(
            f"| {limit} | on ÷ off | | | {mean:.2f}× "
            f"(per seed {min(ratios):.2f}×–{max(ratios):.2f}×) | | |"
        )


if __name__ == "__main__":
    main()
