"""/healthz's rule for the background loops: a loop with no sign of life for too long."""

from __future__ import annotations

from bot.health import LoopState, stalled


def loop(name: str = "sender", **times: float | None) -> LoopState:
    return LoopState(
        name=name,
        created_at=times.get("created_at") or 0.0,
        started_at=times.get("started_at"),
        finished_at=times.get("finished_at"),
        progress_at=times.get("progress_at"),
    )


def test_loops_that_ticked_recently_are_healthy() -> None:
    loops = [loop(started_at=990, finished_at=995), loop("feed poller", started_at=950)]
    assert stalled(loops, now=1000, stale_after=60) is None


def test_a_loop_that_never_ran_counts_from_its_creation() -> None:
    assert stalled([loop(created_at=950)], now=1000, stale_after=60) is None
    assert stalled([loop(created_at=900)], now=1000, stale_after=60) == (
        "the sender has not ticked for 100 s"
    )


def test_a_hung_run_is_stale_unless_it_makes_progress() -> None:
    hung = loop(started_at=800, finished_at=700)
    assert stalled([hung], now=1000, stale_after=60) == "the sender has not ticked for 200 s"
    busy = loop(started_at=800, finished_at=700, progress_at=990)  # a long burst, sending
    assert stalled([busy], now=1000, stale_after=60) is None


def test_the_first_stale_loop_is_named() -> None:
    loops = [loop(finished_at=999), loop("X poller", finished_at=100), loop("feed poller")]
    assert stalled(loops, now=1000, stale_after=60) == "the X poller has not ticked for 900 s"
