"""The /stats chart: offers per day, pushed vs held, as a PNG (matplotlib's object API, no
pyplot, so it is safe to draw off the event loop)."""

from __future__ import annotations

import io

from bot.i18n import Translator
from bot.weekly import WeekStats

PUSHED_COLOUR = "#2a7ae2"
HELD_COLOUR = "#f0a202"


def week_chart_png(t: Translator, stats: WeekStats) -> bytes:
    """A bar chart of the last 7 days (pushed and held side by side)."""
    # Imported on first use: matplotlib is a third of the bot's start-up time.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    labels = [d.day.strftime("%d/%m") for d in stats.days]
    positions = list(range(len(labels)))
    figure = Figure(figsize=(6.4, 3.6), dpi=100)
    axes = figure.subplots()
    width = 0.4
    axes.bar(
        [p - width / 2 for p in positions],
        [d.pushed for d in stats.days],
        width,
        label=t.plain("Pushed"),
        color=PUSHED_COLOUR,
    )
    axes.bar(
        [p + width / 2 for p in positions],
        [d.held for d in stats.days],
        width,
        label=t.plain("Held for a digest"),
        color=HELD_COLOUR,
    )
    axes.set_xticks(positions, labels)
    axes.set_title(t.plain("Offers per day, last 7 days"))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
