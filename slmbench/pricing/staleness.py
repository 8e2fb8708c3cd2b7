"""Is the sheet row that priced a model still a fair guess of what it cost on the price date?

Two things make a price untrustworthy without making it wrong on the day it was read: the
figure is old (providers change prices every few months, so a row read long before the price
date may no longer hold), and the model is gone (a row whose status says it shut down, retired
or was deprecated before the price date prices calls that could not have been made at that
price, or at all).  Neither is an error: the run is priced, and the figure is shown, but the
user must be told once per model, in the run's output and in the report footer, which both
print the pricing warnings (:class:`~slmbench.pricing.run_costs.RunCoster`).

A row's ``status`` is free text written by whoever compiled the sheet ("deprecated; shutdown
2026-12-11", "retired 2026-11-30 (kept so that ...)"), so the dates are found by keyword: a
date that follows *shutdown*, *shut down*, *retire(s/d)*, *deprecated*, *deprecation*, *sunset*
or *end of life* within a few words.  Only the standard library is imported.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path

from slmbench.paths import REPO_ROOT
from slmbench.pricing.sheets import TokenPrice

#: a row read more than this many days before the price date is called stale
STALE_DAYS = 90

_END_RE = re.compile(
    r"(shut\s*-?\s*down|shuts\s+down|retire[sd]?|retirement|deprecat\w*|sunset\w*|"
    r"end[\s-]+of[\s-]+life|removed)\b[^;()0-9]{0,24}?(\d{4}-\d{2}-\d{2})",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Staleness:
    """Why one model's price may not hold on the price date (empty ``reasons``: it holds)."""

    model: str
    on: _dt.date
    reasons: tuple[str, ...]
    sheet_path: str

    def __bool__(self) -> bool:
        return bool(self.reasons)

    def warning(self) -> str:
        """One line for the run output and the report footer."""
        return (f"{self.model}: its price may not hold on {self.on.isoformat()}: "
                + "; ".join(self.reasons) + f" ({_shown(self.sheet_path)})")


def end_dates(status: str | None) -> list[tuple[str, _dt.date]]:
    """``(keyword, date)`` of every shutdown/retirement/deprecation date in a status text."""
    out = []
    for m in _END_RE.finditer(status or ""):
        try:
            out.append((m.group(1).lower(), _dt.date.fromisoformat(m.group(2))))
        except ValueError:  # 2026-13-45: not a date, so not a shutdown date either
            continue
    return out


def staleness(model: str, price: TokenPrice, on: _dt.date,
              stale_days: int = STALE_DAYS) -> Staleness:
    """What makes ``price`` (the row in effect for ``model`` on ``on``) doubtful on ``on``."""
    reasons = []
    age = (on - price.retrieved).days
    if age > stale_days:
        reasons.append(f"its sheet was retrieved {age} days before (more than {stale_days}); "
                       "re-check the provider's page")
    ended = [(word, day) for word, day in end_dates(price.status) if day < on]
    if ended:
        word, day = max(ended, key=lambda wd: wd[1])
        reasons.append(f"its row says {word} {day.isoformat()}, before that date "
                       f"(status: {price.status})")
    return Staleness(model, on, tuple(reasons), price.sheet_path)


def staleness_warning(model: str, price: TokenPrice, on: _dt.date) -> str | None:
    """The one warning line for ``model``, or ``None`` when its price is fresh and live."""
    found = staleness(model, price, on)
    return found.warning() if found else None


def _shown(path: str) -> str:
    """Bundled sheets as ``pricing/...`` (the same on every machine); a user's as given."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
