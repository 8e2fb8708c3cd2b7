"""What the trained baselines share: their settings check, the calibration check, and how an
answer is timed (wall and CPU time, so both price on the same basis)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from slmbench.errors import InputError
from slmbench.tasks.kinds.calibration import CALIBRATORS

CALIBRATION = tuple(CALIBRATORS)


def check_baseline_settings(baseline: str, settings: dict[str, Any], defaults: dict[str, Any],
                            optional: Sequence[str]) -> None:
    """Unknown settings and a bad ``calibrate`` are one line naming the setting."""
    known = [*defaults, *optional]
    unknown = set(settings) - set(known)
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(f"unknown setting for baseline:{baseline} (known: {', '.join(known)})",
                         field="--model", value=f"{key}={settings[key]}")
    if "calibrate" in settings and settings["calibrate"] not in CALIBRATION:
        raise InputError(f"calibrate must be one of {', '.join(CALIBRATION)}", field="--model",
                         value=f"calibrate={settings['calibrate']}")


def check_calibration(task: Any, settings: dict[str, Any]) -> None:
    """``calibrate`` is done by the single-label classifier of the kinds' base; a kind that
    trains its own (several labels per item) does not calibrate it."""
    from slmbench.tasks.kinds import get_kind

    kind = get_kind(task.spec.kind)
    if settings.get("calibrate") and not kind.calibrates:
        raise InputError(f"calibrate does not apply to kind '{kind.name}'", field="--model",
                         value=f"calibrate={settings['calibrate']}")


def timed_prediction(predict: Callable[[str], tuple[str, float | None]], text: str) -> Any:
    """The classifier's answer as a completion, with its wall and CPU time (the CPU seconds
    price a dedicated machine's busy time)."""
    from slmbench.models.base import Completion

    start, cpu = time.perf_counter(), time.process_time()
    label, confidence = predict(text)
    return Completion(text=label, latency_s=time.perf_counter() - start,
                      confidence=confidence, confidence_source="classifier-proba",
                      cpu_s=time.process_time() - cpu)
