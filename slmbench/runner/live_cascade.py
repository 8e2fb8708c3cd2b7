"""``run --cascade SMALL,LARGE --threshold t``: the small model answers every item, the large
model is called only on the items the small one escalates.

Both models' rows are stored under their own names in the one run folder (the large model's
rows cover the escalated items only), and the manifest records the cascade. The cascade's
figures are then computed from those rows by the same code as the offline simulation
(:func:`slmbench.analysis.cascade.live_cascade_entries`), with the same escalation rule
(:func:`slmbench.scoring.escalation.escalates`) that picked the items here, so a live cascade
equals its simulation on the same rows by construction and ``report`` can recompute it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slmbench.errors import InputError

if TYPE_CHECKING:
    from slmbench.records import ResultRow


@dataclass(frozen=True)
class CascadeSpec:
    small: str  # model ids as given on the command line
    large: str
    threshold: float = 0.85
    escalate_invalid: bool = True


def parse_cascade(text: str, threshold: float | None = None, escalate_invalid: bool = True
                  ) -> CascadeSpec:
    """``SMALL,LARGE`` → :class:`CascadeSpec` (model ids never hold a comma)."""
    from slmbench.analysis.cascade import DEFAULT_THRESHOLD, check_threshold

    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(parts):
        raise InputError("expected SMALL,LARGE: two model ids separated by a comma",
                         field="--cascade", value=text)
    if parts[0] == parts[1]:
        raise InputError("the small and the large model are the same", field="--cascade",
                         value=text)
    t = DEFAULT_THRESHOLD if threshold is None else check_threshold(threshold)
    return CascadeSpec(parts[0], parts[1], t, escalate_invalid)


def manifest_entry(spec: CascadeSpec, small_name: str, large_name: str) -> dict[str, Any]:
    return {"small": small_name, "large": large_name, "threshold": spec.threshold,
            "escalate_invalid": spec.escalate_invalid}


def escalated_ids(rows: list[ResultRow], task: str, small_name: str,
                  spec: CascadeSpec) -> set[str]:
    """Item ids of ``task`` the small model's stored rows send to the large model."""
    from slmbench.scoring.escalation import escalates

    return {str(r["item_id"]) for r in rows
            if r["task"] == task and r["model"] == small_name
            and escalates(r, spec.threshold, spec.escalate_invalid)}
