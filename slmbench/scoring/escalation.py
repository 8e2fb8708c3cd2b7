"""When a cascade hands an item from the small model to the large one.

One rule, used both by the live cascade (``run --cascade``: which items the large model is
called on) and by the offline simulation (``slmbench cascade``), so that the two agree item by
item and a live cascade's figures equal its simulation on the same rows.
"""

from __future__ import annotations

from typing import Any


def unusable(row: dict[str, Any]) -> bool:
    """An answer a validator would reject: unparseable/unknown label, or a failed call."""
    return bool(row.get("invalid")) or bool(row.get("error"))


def escalates(row: dict[str, Any], threshold: float | None, escalate_invalid: bool = True
              ) -> bool:
    """True when the small model's row goes to the large model.

    ``threshold=None`` is the validation-only fallback: escalate exactly the unusable answers.
    Otherwise a confidence below the threshold, or none at all (``null``: the backend gives no
    confidence, so nothing vouches for the answer), escalates; with ``escalate_invalid`` an
    unusable answer escalates whatever its confidence.
    """
    if threshold is None:
        return unusable(row)
    conf = row.get("confidence")
    return conf is None or conf < threshold or (escalate_invalid and unusable(row))
