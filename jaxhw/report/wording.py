"""How the report words its numbers (formatters), and the pieces every question's section is built from."""
from __future__ import annotations

import math
from typing import Any

from jaxhw.report.document import Bullets, Note, Paragraph, Quote, Section
from jaxhw.report.questions import GRADES, QUESTIONS, STUDENT

GRADE_KINDS = {"correct": "ok", "partly correct": "correction", "wrong": "correction", "not answered": "info"}


def four_decimals(x: float) -> str:
    """0.91629 -> "0.9163"."""
    return f"{x:.4f}"


def percent(x: float) -> str:
    """0.953 -> "95.3%"."""
    return f"{100 * x:.1f}%"


def scientific(x: float) -> str:
    """0.000123 -> "1.2e-04"."""
    return f"{x:.1e}"


def number(x: Any) -> str:
    """A float as the report prints it: inf/NaN spelt out, small values in scientific notation."""
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    if isinstance(x, float) and x != 0 and abs(x) < 1e-3:
        return scientific(x)
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def unchanged(x: float) -> str:
    """A change that may be exactly zero: "0 (unchanged)" then, else the number."""
    return "0 (unchanged)" if x == 0 else number(x)


def epochs_text(count: int) -> str:
    """1 -> "1 epoch", 10 -> "10 epochs"."""
    return f"{count} epoch{'s' if count != 1 else ''}"


def section(anchor: str, title: str, key: str | None = None, blocks: list | None = None, level: int = 3) -> Section:
    """A question's section: its anchor, title, the question's text (by key) and its blocks."""
    question = QUESTIONS.get(key, "") if key else ""
    return Section(anchor, title, question, blocks or [], level)


def student(key: str) -> Quote:
    """The student's answer to a question, quoted."""
    return Quote(STUDENT[key])


def timing_row(stage: dict) -> list[str]:
    """A stage's title, wall and CPU seconds as a table row."""
    return [stage["title"], f"{stage['wall_seconds']:.1f}", f"{stage['cpu_seconds']:.1f}"]


def with_interval(found: dict | float, digits: int = 3, low: float | None = None, high: float | None = None) -> str:
    """A mean with its 95% interval, "0.914 [0.850, 0.978]"; a single seed has none: "0.914 (one seed)".

    ``found`` is a jaxhw.intervals.mean_interval dict, or a mean with ``low`` and ``high`` given apart."""
    if isinstance(found, dict):
        mean, low, high = found["mean"], found.get("low"), found.get("high")
    else:
        mean = found
    text = f"{mean:.{digits}f}"
    return text + (f" [{low:.{digits}f}, {high:.{digits}f}]" if low is not None else " (one seed)")


def ci_field(record: dict, name: str, digits: int = 3) -> str:
    """A metric and its ``<name>_ci95`` field of a metrics record, as ``with_interval`` writes them."""
    interval = record.get(f"{name}_ci95")
    return with_interval(record[name], digits, *(interval or (None, None)))


def seeds_text(seeds: list[int]) -> str:
    """[0, 1, 2, 3, 4] -> "5 seeds (0-4)"; [3] -> "1 seed (3)"."""
    span = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({span})"


def grade_note(key: str) -> Note:
    """The grade of the student's answer to a question, its reason, and what was missing."""
    grade, reason, missing = GRADES[key]
    text = f"**{grade}.** {reason}" + ("" if missing == "Nothing." else f" Missing: {missing}")
    return Note(text, GRADE_KINDS[grade], "Grade")


def question(anchor: str, title: str, key: str, answer: str, evidence: list) -> Section:
    """A question's section in the order a grader reads it: the answer, the evidence, the student's answer, the
    grade."""
    return section(anchor, title, key, [Paragraph(f"**Answer.** {answer}"), *evidence, student(key), grade_note(key)])


def remember(anchor: str, bullets: list[str]) -> Section:
    """The problem's "what to remember": three bullets at most, from the computed numbers."""
    return Section(anchor, "What to remember", "", [Bullets(bullets[:3])], 3)
