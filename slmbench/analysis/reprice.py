"""Re-price a stored run: new sheets or another date, same rows, no model call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from slmbench.analysis.summary import build_summary, pricing_from_manifest
from slmbench.pricing.run_costs import PricingOptions
from slmbench.store import open_run
from slmbench.store.manifest import now_iso


def reprice_run(path: str | Path, pricing: PricingOptions) -> dict[str, Any]:
    """Rebuild the summary with ``pricing``, write it, and record the repricing in the manifest."""
    run = open_run(path)
    manifest = run.read_manifest()
    # what the user did not set this time stays as the run was priced before
    given = {k: v for k, v in asdict(pricing).items() if v not in (None, ())}
    pricing = replace(pricing_from_manifest(manifest), **given)
    summary = build_summary(run, pricing)
    run.write_summary(summary)
    manifest.setdefault("repriced", []).append({"at": now_iso(), **summary["pricing"]})
    manifest["pricing"] = summary["pricing"]
    run.write_manifest(manifest)
    return summary


def repriced_summaries(paths: Sequence[str | Path], *, price_mode: str | None = None,
                       volume_per_day: float | None = None) -> list[dict[str, Any]]:
    """The summaries of stored runs priced again with another price mode or volume, as
    ``report`` shows them; nothing is written (``reprice`` writes)."""
    from slmbench.pricing.run_costs import price_mode as check_mode

    check_mode(price_mode)  # a bad mode fails before any run is read
    out = []
    for path in paths:
        run = open_run(path)
        pricing = pricing_from_manifest(run.read_manifest())
        given = {k: v for k, v in (("price_mode", price_mode),
                                   ("volume_per_day", volume_per_day)) if v is not None}
        out.append(build_summary(run, replace(pricing, **given)))
    return out
