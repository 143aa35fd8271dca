"""The CPU one chat's ranking costs the sender (hostile review of issue #17): training on the
longest history the sender reads (storage.ranking: 500 received + 200 saved offers) of offers
as long as a source may make them (4,000 characters of distinct words), against reusing the
chat's model from bot.ranking.ModelCache.

    python -m bench.ranking_cost
"""

from __future__ import annotations

import random
import statistics
import string
import time
from datetime import UTC, datetime
from typing import Any

from bot.delivery import _train
from bot.ranking import ModelCache
from bot.sources.base import MAX_TEXT
from storage.ranking import HISTORY_RECEIVED, HISTORY_SAVED


def _history(seed: int) -> list[tuple[str, str, dict[str, Any] | None, bool, bool]]:
    rnd = random.Random(seed)

    def text() -> str:
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < MAX_TEXT:
            words.append("".join(rnd.choices(string.ascii_lowercase, k=8)))
        return " ".join(words)[:MAX_TEXT]

    tags: dict[str, Any] = {"categories": ["software"], "work_mode": "remote", "city": "Lyon"}
    return [
        (f"source{i % 40}", text(), tags, i < HISTORY_SAVED, i % 5 == 0)
        for i in range(HISTORY_RECEIVED + HISTORY_SAVED)
    ]


def main() -> None:
    """Print the median of five trainings and of five cache hits."""
    past = _history(1)
    trainings = []
    for _ in range(5):
        start = time.perf_counter()
        model = _train(past)
        trainings.append(time.perf_counter() - start)
    cache = ModelCache()
    now = datetime(2026, 12, 3, tzinfo=UTC)
    cache.put(1, (HISTORY_SAVED, now), now, model)
    hits = []
    for _ in range(5):
        start = time.perf_counter()
        cache.get(1, (HISTORY_SAVED, now), now)
        hits.append(time.perf_counter() - start)
    print(f"history: {len(past)} offers of {MAX_TEXT} characters")
    print(f"training (features + train), median of 5: {statistics.median(trainings) * 1000:.0f} ms")
    print(f"cached model, median of 5: {statistics.median(hits) * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
