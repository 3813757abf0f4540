"""How the report words its numbers (formatters), and the pieces every question's section is built from."""
from __future__ import annotations

import math
from typing import Any

from jaxhw.intervals import COVERS
from jaxhw.report.document import Note, Paragraph, Quote, Section
from jaxhw.report.questions import GRADES, QUESTIONS, STUDENT

GRADE_KINDS = {"correct": "ok", "partly correct": "correction", "wrong": "correction", "not answered": "info",
               "not graded": "info"}


def four_decimals(x: float) -> str:
    """0.91629 -> "0.9163"."""
    return f"{x:.4f}"


def percent(x: float) -> str:
    """0.953 -> "95.3%"."""
    return f"{100 * x:.1f}%"


def minus(x: float, digits: int = 3) -> str:
    """-1.1111 -> "−1.111", with the typographic minus the formulas around it use."""
    return f"{x:.{digits}f}".replace("-", "−")


def scientific(x: float) -> str:
    """0.000123 -> "1.2e-04"."""
    return f"{x:.1e}"


def number(x: Any) -> str:
    """A float as the report prints it: inf/NaN spelt out, small values in scientific notation."""
    if x is None:
        return "-"
    if isinstance(x, str):  # a non-finite value as strict JSON records it beside a null ("nan", "inf")
        return x
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
    if low is None:
        return text + " (one seed)"
    if low == high:
        return text + " (every seed alike)"
    return text + f" [{low:.{digits}f}, {high:.{digits}f}]"


def ci_field(record: dict, name: str, digits: int = 3) -> str:
    """A metric and its ``<name>_ci95`` field of a metrics record, as ``with_interval`` writes them."""
    interval = record.get(f"{name}_ci95")
    return with_interval(record[name], digits, *(interval or (None, None)))


def over_seeds(caption: str) -> str:
    """A table's caption with what its intervals cover and what they leave out."""
    return f"{caption}; {COVERS}"


def seeds_text(seeds: list[int]) -> str:
    """[0, 1, 2, 3, 4] -> "5 seeds (0-4)"; [3] -> "1 seed (3)"."""
    span = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({span})"


def grade_note(key: str) -> Note:
    """The grade of the student's answer, with what it covers and what it misses."""
    grade = GRADES[key]
    parts = []
    if grade.covers:
        parts.append(f"Covers: {'; '.join(grade.covers)}.")
    if grade.misses:
        parts.append(f"Misses: {'; '.join(grade.misses)}.")
    return Note(" ".join(parts) or grade.reason, GRADE_KINDS[grade.grade], f"Grade: {grade.grade}")


def verdict_words(verdict: str, claim: str) -> str:
    """A verdict as the end of a sentence about a measured difference: ": <claim>" where the interval shows it,
    "; the seeds do not show that <claim>" where it cannot decide, "; the opposite of <claim> holds" where it
    shows the opposite."""
    return {"supported": f": {claim}", "refuted": f"; the opposite of '{claim}' holds"}.get(
        verdict, f"; the seeds do not show that {claim}")


def key_question(anchor: str, title: str, key: str, answer: str, numbers: str, evidence: str,
                 jax: str = "") -> Section:
    """A question of the key in the order a grader reads it: the answer (three sentences at most), its JAX
    counterpart in one line where the question is about PyTorch, the numbers that prove it, the student's answer,
    its grade, and a link to the evidence."""
    blocks = [Paragraph(f"**Answer.** {answer}")]
    if jax:
        blocks.append(Paragraph(f"*JAX:* {jax}"))
    link = f"[evidence](#{evidence})"
    blocks.append(Paragraph(f"**Numbers.** {numbers} ({link})." if numbers else f"See the {link}."))
    blocks += [Quote(STUDENT[key]), grade_note(key)]
    return Section(anchor, title, "", blocks, 3)


def evidence_section(anchor: str, key: str, blocks: list, title: str = "") -> Section:
    """A question's evidence, under the homework's question: tables, figures and method notes, collapsed in the
    HTML page."""
    return Section(anchor, title or f"{key}: evidence", QUESTIONS.get(key, ""), blocks, 3, collapsible=True)
