"""How the report words its numbers (formatters), and the pieces every question's section is built from."""
from __future__ import annotations

import math
from typing import Any

from jaxhw.report.document import Quote, Section
from jaxhw.report.questions import QUESTIONS, STUDENT


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
