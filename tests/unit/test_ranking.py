"""The ranking's pure parts: features, cold start, the model's direction, the plan."""

from __future__ import annotations

from bot.ranking import MIN_MARKS, Example, features, plan, train
from bot.tracker import safe_cell


def _example(text: str, saved: bool, not_for_me: bool = False) -> Example:
    return Example(features("acme_jobs", text, {"work_mode": "remote"}), saved, not_for_me)


def test_features_name_the_source_tags_and_folded_words_bounded() -> None:
    found = features("Acme_Jobs", "Développeur PYTHON à Lyon " + "mot " * 500, {"city": "Lyon"})
    assert {"src:acme_jobs", "city:lyon", "w:developpeur", "w:python", "w:lyon"} <= found
    assert len(features("a", " ".join(f"word{i}" for i in range(1000)), None)) <= 1 + 120


def test_a_chat_with_fewer_than_three_saves_keeps_today_s_order() -> None:
    history = [_example("Python remote", True)] * (MIN_MARKS - 1) + [_example("Sales", False)]
    assert train(history) is None
    assert plan([None, None, None], usual=None).order == [0, 1, 2]


def test_the_model_ranks_what_the_chat_saved_above_what_it_left_or_refused() -> None:
    history = [_example(f"Remote Python developer {i}", True) for i in range(3)]
    history += [_example(f"Java sales manager {i}", False) for i in range(6)]
    history += [_example("Retail store manager", False, not_for_me=True)]
    model = train(history)
    assert model is not None
    python = model.score(_example("Remote Python developer, Django", False).features)
    sales = model.score(_example("Sales manager, Lyon", False).features)
    retail = model.score(_example("Retail store job", False).features)
    assert python > model.usual > max(sales, retail)


def test_the_plan_tries_the_best_first_and_holds_those_below_the_usual_each_once() -> None:
    chosen = plan([0.5, 3.0, -1.0, 3.0, 2.0], usual=1.0)
    assert chosen.order == [1, 3, 4] and chosen.below == [0, 2]
    assert sorted(chosen.order + chosen.below) == [0, 1, 2, 3, 4]


def test_a_csv_cell_that_a_spreadsheet_would_run_stays_text() -> None:
    for cell in ("=1+1", "+33 6", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(cell) == "'" + cell
    assert safe_cell("Développeur Python") == "Développeur Python"
    # Behind blanks a spreadsheet may trim on import, the formula would still run.
    for cell in (" =1+1", "\n=cmd|' /C calc'!A0", "\u00a0@SUM(A1)", "\u200b\u200b =2", " \t-3"):
        assert safe_cell(cell) == "'" + cell
    assert safe_cell("  Python, remote") == "  Python, remote"


def test_the_csv_survives_a_lone_surrogate_and_keeps_quotes_and_newlines_in_their_cell() -> None:
    """Should a lone surrogate ever reach a cell (the offers' text columns cannot store one, but
    their tags are JSON, which can), the export must still be written (UTF-8 cannot hold one);
    and a quote or a newline must not split a row."""
    import csv
    import io
    from datetime import UTC, datetime

    from bot.tracker import applications_csv
    from storage.applications import Tracked
    from storage.models import ApplicationStatus

    when = datetime(2026, 12, 1, tzinfo=UTC)
    row = Tracked(
        1,
        1,
        'Acme "Jobs"\n=2+2',
        'Senior "dev"\r\n=HYPERLINK("http://evil")',
        "https://x.com/a/1",
        {"apply_url": "https://acme.example/apply?\ud83d"},
        ApplicationStatus.APPLIED,
        when,
        when,
    )
    rows = list(csv.reader(io.StringIO(applications_csv([row]).decode("utf-8-sig"))))
    assert len(rows) == 2 and len(rows[1]) == 5
    assert rows[1][1] == 'Acme "Jobs"\n=2+2'
    assert rows[1][2] == 'Senior "dev" =HYPERLINK("http://evil")'
    assert rows[1][3] == "https://acme.example/apply??"  # the surrogate became "?"


def test_a_chat_s_model_is_reused_until_its_saves_change_or_it_ages_and_few_are_kept() -> None:
    """Training costs about half a second for a chat with a long history: the sender must not
    redo it for every batch (a stranger's three saves would stall every chat's sends)."""
    from datetime import UTC, datetime

    from bot.ranking import MODEL_TTL, ModelCache

    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    model = train([_example("Python remote", True)] * MIN_MARKS + [_example("Sales", False)])
    cache = ModelCache(size=2)
    assert cache.get(1, (3, now), now) == (False, None)
    cache.put(1, (3, now), now, model)
    assert cache.get(1, (3, now), now + MODEL_TTL / 2) == (True, model)
    assert cache.get(1, (4, now), now)[0] is False  # a new save: trained again
    assert cache.get(1, (3, now), now + MODEL_TTL)[0] is False  # aged: trained again
    cache.put(2, "b", now, None)  # a cold start is remembered too
    assert cache.get(2, "b", now) == (True, None)
    cache.put(3, "c", now, None)
    assert len(cache) == 2 and cache.get(1, (3, now), now)[0] is False  # least recent dropped
    cache.put(4, "d", now + MODEL_TTL, None)  # the others are past their TTL: forgotten
    assert len(cache) == 1
