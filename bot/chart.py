"""The /stats chart: offers per day, pushed vs held, and beside it the week's funnel (received
→ saved → applied → interviews), as a PNG (matplotlib's object API, no pyplot, so it is safe
to draw off the event loop)."""

from __future__ import annotations

import io

from bot.i18n import Translator
from bot.weekly import WeekStats

PUSHED_COLOUR = "#2a7ae2"
HELD_COLOUR = "#f0a202"
FUNNEL_COLOUR = "#3c9d5d"


def week_chart_png(t: Translator, stats: WeekStats) -> bytes:
    """A bar chart of the last 7 days (pushed and held side by side), and the funnel."""
    # Imported on first use: matplotlib is a third of the bot's start-up time.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    labels = [d.day.strftime("%d/%m") for d in stats.days]
    positions = list(range(len(labels)))
    figure = Figure(figsize=(9.6, 3.6), dpi=100)
    axes, funnel = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
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
    steps = [
        t.plain("Received"),
        t.plain("Saved offers"),
        t.plain("Applied"),
        t.plain("Interviews"),
    ]
    counts = stats.funnel_steps()
    bars = funnel.barh(steps[::-1], counts[::-1], color=FUNNEL_COLOUR)
    funnel.bar_label(bars, padding=3)
    funnel.set_title(t.plain("From offer to application"))
    funnel.xaxis.set_major_locator(MaxNLocator(integer=True))
    funnel.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
