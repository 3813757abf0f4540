"""Progress that reads: a line printed while a bar is drawn starts on a line of its own, fit's bar is named by
what it trains and leaves no line behind under the main job's stage bar, and the stage bar's ETA weighs the
stages by their cost. Output goes to a fake terminal (a StringIO that says it is one)."""
import contextlib
import io
import re
import sys

import numpy as np
import optax
import pytest
from tqdm import tqdm

from jaxhw.common import print_above_bars
from jaxhw.configs import HOMEWORK_FULL
from jaxhw.homework import StageBar, stage_costs
from jaxhw.models.mlp import MLP
from jaxhw.training import create_train_state, fit


class Terminal(io.StringIO):
    """What a terminal receives: progress bars draw on it as on a tty."""

    def isatty(self) -> bool:
        return True


@pytest.fixture()
def terminal() -> Terminal:
    """stderr for the test's body (pytest swaps sys.stderr back between setup and call)."""
    return Terminal()


def lines_seen(screen: Terminal) -> list[str]:
    """The lines a terminal shows at the end: a carriage return goes back to the line's start, a newline to the
    next line's start, ESC [ A (how tqdm climbs back from a nested bar) up one line; text overwrites."""
    rows, row, column = [[]], 0, 0
    for token in re.findall(r"\x1b\[A|.|\n", screen.getvalue()):
        if token == "\x1b[A":
            row = max(row - 1, 0)
        elif token == "\r":
            column = 0
        elif token == "\n":
            row, column = row + 1, 0
            rows += [[] for _ in range(row + 1 - len(rows))]
        else:
            line = rows[row]
            line += [" "] * (column + 1 - len(line))
            line[column] = token
            column += 1
    return ["".join(line).rstrip() for line in rows]


def test_a_line_printed_while_a_bar_is_drawn_starts_a_line_of_its_own(terminal):
    with contextlib.redirect_stderr(terminal), tqdm(total=3, desc="training", file=sys.stderr) as bar:
        bar.update(1)
        print_above_bars("jaxhw: mnist from embedded")
        bar.update(1)
    text = terminal.getvalue()
    start = text.index("jaxhw: mnist from embedded")
    assert text[start - 1] in "\r\n" and text[start + len("jaxhw: mnist from embedded")] == "\n"
    assert "jaxhw: mnist from embedded" in lines_seen(terminal)


def tiny_run(description: str, progress: bool = True):
    rng = np.random.default_rng(0)
    data = {"x": rng.integers(0, 256, (32, 28, 28, 1), dtype=np.uint8), "y": rng.integers(0, 10, 32)}
    state = create_train_state(MLP(), optax.adam(1e-3), data["x"][:1], 0)
    return fit(state, data, epochs=2, batch_size=16, progress=progress, description=description)


def test_fit_names_its_bar_and_leaves_it_alone_but_not_under_the_stage_bar(terminal):
    with contextlib.redirect_stderr(terminal):
        tiny_run("mlp on tiny digits")
    alone = [line for line in lines_seen(terminal) if line]
    assert alone and alone[-1].startswith("mlp on tiny digits: 100%")  # a command's only bar stays
    terminal.seek(0)
    terminal.truncate()
    with contextlib.redirect_stderr(terminal), StageBar(progress=True) as stages:
        stages.plan({"only": [1.0]})
        stages.start("only", "problem 4: MLP and CNN (1/1)")
        tiny_run("cnn on tiny digits")
        stages.finish("only")
    shown = [line for line in lines_seen(terminal) if line]
    assert "cnn on tiny digits: " in terminal.getvalue()
    assert not any(line.startswith("cnn on tiny digits") for line in shown), shown  # removed when done
    assert shown == [shown[0]] and shown[0].startswith("problem 4: MLP and CNN (1/1): 100%")


def test_the_stage_bar_moves_by_cost_not_by_stage_count(terminal):
    with contextlib.redirect_stderr(terminal), StageBar(progress=True) as stages:
        stages.plan({"data": [0.0], "small": [1.0], "large": [1.0, 2.0]})
        for key in ("data", "small"):
            stages.start(key, f"{key} ")
            stages.finish(key)
        after_small = terminal.getvalue()
        stages.start("large", "large ")
        stages.advance()  # its first program: 1 of its 3
        after_first_program = terminal.getvalue()
        stages.finish("large")
    percent = [int(p) for p in re.findall(r"(\d+)%", after_small)]
    assert percent[-1] == 25  # two stages of three are done, but a quarter of the expected cost
    assert [int(p) for p in re.findall(r"(\d+)%", after_first_program)][-1] == 50


def test_full_budget_weighs_problem_5_at_about_three_quarters_on_the_embedded_digits():
    # The main job on 2 cores (benchmarks/RESULTS.md): problem 5 took 216.7 s of 294.3 s of stages (74%).
    costs = {stage: sum(parts) for stage, parts in stage_costs(HOMEWORK_FULL, 4000).items()}
    assert 0.6 < costs["problem5"] / sum(costs.values()) < 0.85
    assert costs["problem4"] > costs["problem2"]  # the CNN, not the MLP, is what problem 4 costs
