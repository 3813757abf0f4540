"""What TensorBoard events add to a command: the writer's import (in a fresh process that has already loaded
what a command has, numpy and jax) and the time to write one run's events (classify, --seeds 3) and the full
report's (every training of HOMEWORK_FULL), each the median of --reps fresh processes.

    PYTHONPATH=. python benchmarks/tensorboard_events.py --reps 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

# Runs in a child: the modules a 1-epoch classify has loaded, then the writer's import, timed.
IMPORT = """
import time, jax, numpy, flax, optax
import jaxhw.report.outputs
started = time.perf_counter()
from jaxhw.report import tensorboard_events
tensorboard_events._tensorboardx()
print(time.perf_counter() - started, 'torch' in __import__('sys').modules)
"""

# Runs in a child: histories shaped as the commands' (made up numbers), written as events, timed.
WRITE = """
import pathlib, sys, time
from jaxhw.configs import HOMEWORK_FULL
from jaxhw.report.tensorboard_events import EventRun, write_events
epochs, seeds, runs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
history = [(e, {"train_loss": 1.0 / e, "train_accuracy": 0.9, "test_loss": 1.1 / e, "test_accuracy": 0.8,
                "seconds": 0.5}) for e in range(1, epochs + 1)]
hparams = HOMEWORK_FULL.classify("mlp").record() | {"data": "embedded:mnist_5k"}
made = [EventRun(f"run_{r}/seed_{s}", {**hparams, "seed": s}, history) for r in range(runs) for s in range(seeds)]
write_events(made[:1], pathlib.Path(sys.argv[4]) / "warm")  # tensorboardX loaded before the clock starts
started = time.perf_counter()
write_events(made, pathlib.Path(sys.argv[4]) / "timed")
print(time.perf_counter() - started)
"""


def median_of(code: str, reps: int, *args: str) -> tuple[float, list[str]]:
    """The median of the first number each of ``reps`` children prints, and the rest of the first one's line."""
    found, rest = [], []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as folder:
            line = subprocess.run([sys.executable, "-c", code, *args, folder], capture_output=True, text=True,
                                  check=True).stdout.split()
        found.append(float(line[0]))
        rest = line[1:]
    return statistics.median(found), rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    imported, torch_loaded = median_of(IMPORT, args.reps)
    # classify --seeds 3, 10 epochs: 3 runs; the full report: 1C 2 x 5, problem 2, 3E, 4 (MLP, CNN) 5 each,
    # problem 5 five tasks x six models x five seeds: 190 runs of 10-15 epochs.
    one_run, _ = median_of(WRITE, args.reps, "10", "3", "1")
    report, _ = median_of(WRITE, args.reps, "15", "5", "38")
    print(json.dumps({"writer_import_seconds": round(imported, 4), "torch_imported": torch_loaded == ["True"],
                      "classify_seeds3_10_epochs_seconds": round(one_run, 4),
                      "full_report_190_runs_seconds": round(report, 4)}, indent=1))


if __name__ == "__main__":
    main()
