"""The documented default calendar: bounds of well-known time range labels at an ``as_of`` date.

All bounds are half-open ``[start, end)`` ISO dates and depend only on two dates (never the wall
clock): ``as_of``, the close of the last complete period, and ``to_date``, the end of the
"to date" and rolling windows (default: ``as_of``). Calendar labels:

- ``last_month``: the calendar month before the one containing ``as_of``.
- ``quarter_to_date``: first day of ``to_date``'s calendar quarter .. ``to_date``.
- ``last_7_days``: ``to_date - 7 days`` .. ``to_date``.

Fiscal labels (``calendar: fiscal``): the fiscal year starts on the first Monday on or after
1 January and is split into 4-week periods (fiscal months) starting on Monday; the 13th period
runs until the next fiscal year starts (4 or 5 weeks).

- ``last_fiscal_month``: the fiscal month before the one containing ``as_of``.
- ``fiscal_ytd``: start of the fiscal year containing ``to_date`` .. ``to_date``.

Unbounded labels (``all_time``) have no bounds: a query over them has no time predicate.

**The published calendar.** A policy that sets no ``as_of`` gets the bounds the published
policystrata 1.x compiler emits (COMPAT.md §2): ``as_of`` 2026-06-01 and ``to_date``
2026-06-24, with ``last_7_days`` in the ``America/Los_Angeles`` time zone:

>>> for label, (start, end, cal) in default_time_ranges(PUBLISHED_AS_OF, PUBLISHED_TO_DATE).items():
...     print(label, start, end, cal, PUBLISHED_TIMEZONES.get(label, "-"))
last_month 2026-05-01 2026-06-01 calendar -
last_fiscal_month 2026-04-27 2026-05-25 fiscal -
fiscal_ytd 2026-01-05 2026-06-24 fiscal -
quarter_to_date 2026-04-01 2026-06-24 calendar -
last_7_days 2026-06-17 2026-06-24 calendar America/Los_Angeles

A policy that sets ``as_of`` anchors every label at it:

>>> import datetime as dt
>>> for label, (start, end, cal) in default_time_ranges(dt.date(2026, 6, 1)).items():
...     print(label, start, end, cal)
last_month 2026-05-01 2026-06-01 calendar
last_fiscal_month 2026-04-27 2026-05-25 fiscal
fiscal_ytd 2026-01-05 2026-06-01 fiscal
quarter_to_date 2026-04-01 2026-06-01 calendar
last_7_days 2026-05-25 2026-06-01 calendar
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

DEFAULT_LABELS = ("last_month", "last_fiscal_month", "fiscal_ytd", "quarter_to_date", "last_7_days")
#: Labels without bounds (no time predicate).
UNBOUNDED_LABELS = ("all_time",)
#: The published calendar's anchors and time zones (a policy without ``as_of``).
PUBLISHED_AS_OF = dt.date(2026, 6, 1)
PUBLISHED_TO_DATE = dt.date(2026, 6, 24)
PUBLISHED_TIMEZONES = {"last_7_days": "America/Los_Angeles"}


def fiscal_year_start(year: int) -> dt.date:
    """First Monday on or after 1 January of ``year``."""
    jan1 = dt.date(year, 1, 1)
    return jan1 + dt.timedelta(days=(7 - jan1.weekday()) % 7)


def fiscal_months(as_of: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The 13 fiscal months of the fiscal year containing ``as_of`` and of the year before."""
    out: list[tuple[dt.date, dt.date]] = []
    for year in (as_of.year - 2, as_of.year - 1, as_of.year, as_of.year + 1):
        start, nxt = fiscal_year_start(year), fiscal_year_start(year + 1)
        for i in range(13):
            s = start + dt.timedelta(weeks=4 * i)
            e = nxt if i == 12 else s + dt.timedelta(weeks=4)
            out.append((s, e))
    return out


def default_time_ranges(
    as_of: dt.date, to_date: dt.date | None = None
) -> dict[str, tuple[str, str, str]]:
    """Label -> (start, end, calendar) for every bounded label of the default calendar (a fresh
    dict; computed once per pair of dates: the reference stack asks for every request)."""
    return dict(_default_time_ranges(as_of, to_date or as_of))


@lru_cache(maxsize=64)
def _default_time_ranges(as_of: dt.date, to_date: dt.date) -> dict[str, tuple[str, str, str]]:
    first = as_of.replace(day=1)
    prev_first = (first - dt.timedelta(days=1)).replace(day=1)
    months = fiscal_months(as_of)
    current = next(i for i, (s, e) in enumerate(months) if s <= as_of < e)
    fm_start, fm_end = months[current - 1]
    fy_start = fiscal_year_start(to_date.year)
    if to_date < fy_start:
        fy_start = fiscal_year_start(to_date.year - 1)
    q_first = dt.date(to_date.year, 3 * ((to_date.month - 1) // 3) + 1, 1)
    end = to_date.isoformat()
    return {
        "last_month": (prev_first.isoformat(), first.isoformat(), "calendar"),
        "last_fiscal_month": (fm_start.isoformat(), fm_end.isoformat(), "fiscal"),
        "fiscal_ytd": (fy_start.isoformat(), end, "fiscal"),
        "quarter_to_date": (q_first.isoformat(), end, "calendar"),
        "last_7_days": ((to_date - dt.timedelta(days=7)).isoformat(), end, "calendar"),
    }
