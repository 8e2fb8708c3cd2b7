"""A gate's result written out: the terminal lines and a JUnit XML report.

Which checks pass is decided in :mod:`slmbench.analysis.gate` from stored rows; here each check
becomes a line and a JUnit testcase, so a CI log and its XML report say the same thing.
"""

from __future__ import annotations

from pathlib import Path

from slmbench.analysis.gate import Check, GateResult


def check_line(check: Check) -> str:
    return f"{check.status.upper():4}  {check.name:12}  {check.task} × {check.model}: " \
           f"{check.message}"


def gate_lines(result: GateResult) -> list[str]:
    """The gate's terminal output: the runs, the notes, one line per check, then the verdict."""
    out = [f"gate: current {result.current} vs baseline {result.baseline}"]
    out += [f"note  {n}" for n in result.notes]
    out += [check_line(c) for c in result.checks]
    n_fail = len(result.failures)
    out.append(f"gate: {'passed' if result.passed else 'FAILED'}: "
               f"{len(result.checks) - n_fail} of {len(result.checks)} checks hold"
               + (f", {n_fail} regression(s)" if n_fail else ""))
    return out


# ---------------------------------------------------------------------------------------------
# JUnit


def write_junit(result: GateResult, path: str | Path) -> Path:
    """One testcase per check; a regression is a ``<failure>`` holding the figures."""
    import xml.etree.ElementTree as ET

    path = Path(path)
    suites = ET.Element("testsuites", name="slmbench gate")
    suite = ET.SubElement(suites, "testsuite", {
        "name": "slmbench gate", "tests": str(len(result.checks)),
        "failures": str(len(result.failures)), "errors": "0",
        "skipped": str(sum(c.status == "skip" for c in result.checks))})
    props = ET.SubElement(suite, "properties")
    for name, value in (("current", result.current), ("baseline", result.baseline),
                        ("max_accuracy_drop_pp", result.thresholds.max_accuracy_drop_pp),
                        ("max_cost_increase", result.thresholds.max_cost_increase),
                        ("min_accuracy", result.thresholds.min_accuracy),
                        ("alpha", result.thresholds.alpha)):
        ET.SubElement(props, "property", name=name, value=str(value))
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"slmbench.gate.{check.name}",
                             name=f"{check.task} × {check.model}")
        figures = "\n".join(f"{k} = {v}" for k, v in check.figures.items())
        if check.status == "fail":
            failure = ET.SubElement(case, "failure", message=check.message, type="regression")
            failure.text = figures
        elif check.status == "skip":
            ET.SubElement(case, "skipped", message=check.message)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = check.message + "\n" + figures
    if result.notes:
        err = ET.SubElement(suite, "system-out")
        err.text = "\n".join(result.notes)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path
