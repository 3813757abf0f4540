"""Ctrl-C and SIGTERM at random moments of a short run: does every one stop it, with the right code and one true line?

Each trial copies a previous complete output (--out) and that run's checkpoints, starts
``python -m jaxhw.classify --source embedded --epochs 2 --seed 1 --overwrite`` on them, and sends SIGINT or SIGTERM
at a moment drawn uniformly over the life of an uninterrupted run (measured first: start-up, imports,
compilation, training, writing, exit). A trial counts as right when the process
- ended with 130 (SIGINT) or 143 (SIGTERM),
- printed exactly one ``error:`` line and no traceback or "Exception ignored",
- left --out either as the previous output or as the complete new one (and nothing staged beside it), with the
  line saying which ("is as it was before this run" or "holds this run's complete output"),
- left checkpoints that all verify (every array checksum and record checksum), the line naming the newest,
- released its locks (an empty lock file: the next run has no lock of a dead process to take over).
A signal that comes before Python has run jaxhw's first line (the interpreter's own start-up, tens of
milliseconds) is counted apart: nothing in jaxhw can act on it. Prints the counts and appends them to RESULTS.md.

    PYTHONPATH=. python benchmarks/signals.py                  # 20 of each, a few minutes
    PYTHONPATH=. python benchmarks/signals.py --trials 5 --seed 3
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 143}
CHECKS = ("exit code", "one error line, no traceback", "output whole", "line true about the output",
          "checkpoints verify", "locks released")


def command(folder: pathlib.Path, cache: pathlib.Path, seed: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "jaxhw.classify", "--source", "embedded", "--epochs", "2", "--batch-size", "512",
            "--compile-cache", str(cache), "--no-tensorboard", "--seed", str(seed), "--out", str(folder / "out"),
            "--checkpoint-dir", str(folder / "ck"), *extra]


def snapshot(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def checkpoints_verify(directory: pathlib.Path) -> tuple[bool, list[int]]:
    """(every checkpoint restores into the run's state and matches its checksums, the epochs found), by the
    check ``--resume`` makes."""
    import optax
    import orbax.checkpoint as ocp

    from jaxhw.data.images import load_train_test
    from jaxhw.experiments.classification import build_classifier
    from jaxhw.training.checkpoint import CheckpointStore, Unusable
    from jaxhw.training.state import create_train_state

    train, _ = load_train_test("mnist", "embedded")
    like = create_train_state(build_classifier("mlp", 10), optax.adam(1e-3), train.images[:1], seed=1)
    store = CheckpointStore(directory, resume=True, log=lambda line: None)
    try:
        steps = store.steps()
        for step in steps:
            meta = store.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
            store.description = meta["description"]  # the run's own: only the checksums are checked
            store._verified(step, like)
    except (Unusable, KeyError, TypeError):
        return False, steps
    finally:
        store.close()
    return True, steps


def trial(base: pathlib.Path, cache: pathlib.Path, number: int, delay: float, previous: dict,
          previous_checkpoints: dict) -> dict:
    """One run signalled after ``delay`` s: what each check found."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="trial-", dir=base))
    shutil.copytree(base / "previous" / "out", folder / "out")
    shutil.copytree(base / "previous" / "ck", folder / "ck")
    process = subprocess.Popen(command(folder, cache, 1, "--overwrite"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(number)
    ended_first = process.returncode is not None  # send_signal sends nothing to a process that has ended
    _, err = process.communicate(timeout=300)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    line = errors[0] if errors else ""
    out = folder / "out"
    now = snapshot(out) if out.is_dir() else {}
    new = json.loads(now["metrics.json"]) if "metrics.json" in now else {}
    is_previous, is_new = now == previous, new.get("config", {}).get("seed") == 1 and len(new.get("epochs", [])) == 2
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith((".out.staging", ".out.old"))]
    says_previous, says_new = "out is as it was before this run" in line, "out holds this run's complete output" in line
    untouched = previous_checkpoints == snapshot(folder / "ck")  # --overwrite had not yet replaced them
    verified, steps = checkpoints_verify(folder / "ck")
    newest = f"checkpoints up to epoch {steps[-1]} are in" if steps else "holds no checkpoint yet"
    if untouched:
        newest = "the earlier run's checkpoints in"
    found = {
        "exit code": process.returncode == EXPECTED[number],
        "one error line, no traceback": len(errors) == 1 and "Traceback" not in err and "Exception ignored" not in err,
        "output whole": (is_previous or is_new) and not leftovers,
        "line true about the output": ((is_previous and (says_previous or str(out) not in line))
                                       or (is_new and says_new)),
        "checkpoints verify": verified and (newest in line or str(folder / "ck") not in line),
        "before jaxhw ran": process.returncode == -number,  # the signal's default action: no handler of jaxhw's yet
        "locks released": all(lock.stat().st_size == 0 for lock in folder.glob(".*.lock")),
        "after the swap": says_new,
        "ended first": ended_first, "delay": delay, "code": process.returncode, "line": line, "stderr": err[-2000:],
    }
    shutil.rmtree(folder)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="signals of each kind (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the moments drawn")
    parser.add_argument("--no-write", action="store_true", help="print the counts only")
    args = parser.parse_args()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    base = pathlib.Path(tempfile.mkdtemp(prefix="jaxhw-signals-"))
    cache = base / "cache"
    (base / "previous").mkdir()
    subprocess.run(command(base / "previous", cache, 0), check=True, capture_output=True)  # fills the cache
    previous, previous_checkpoints = snapshot(base / "previous" / "out"), snapshot(base / "previous" / "ck")
    lives = []
    for _ in range(2):  # the life of a trial's run, uninterrupted
        shutil.copytree(base / "previous", base / "measured")
        started = time.monotonic()
        subprocess.run(command(base / "measured", cache, 1, "--overwrite"), check=True, capture_output=True)
        lives.append(time.monotonic() - started)
        shutil.rmtree(base / "measured")
    life = min(lives)
    draw = random.Random(args.seed)
    results = {signal.SIGINT: [], signal.SIGTERM: []}
    ended_first = collections.Counter()
    index = 0
    while (waiting := [number for number, runs in results.items() if len(runs) < args.trials]):
        number, delay, index = draw.choice(waiting), draw.uniform(0, life), index + 1
        found = trial(base, cache, number, delay, previous, previous_checkpoints)
        if found["ended first"]:  # the run was quicker than the one measured: another moment is drawn
            ended_first[number] += 1
            print(f"{index:2d} {signal.Signals(number).name} at {delay:.2f} s: the run had ended")
            continue
        results[number].append(found)
        failed = [check for check in CHECKS if not found[check]]
        print(f"{index:2d} {signal.Signals(number).name} at {delay:.2f} s: exit {found['code']}"
              + (f"; FAILED {', '.join(failed)}: {found['line']}\n{found['stderr'][-1500:]}" if failed else ""),
              flush=True)
    shutil.rmtree(base, ignore_errors=True)
    report = table(results, ended_first, life, args)
    print(report)
    if not args.no_write:
        with RESULTS.open("a") as file:
            file.write("\n" + report)


def table(results: dict, ended_first: collections.Counter, life: float, args: argparse.Namespace) -> str:
    """The counts as a Markdown section (of the signals that came while the run lived)."""
    rows = ["| check | " + " | ".join(signal.Signals(n).name for n in results) + " |",
            "|---|" + "---|" * len(results)]
    for check in CHECKS:
        rows.append(f"| {check} | " + " | ".join(f"{sum(r[check] for r in runs)} of {len(runs)}"
                                                 for runs in results.values()) + " |")
    rows.append("| (sent after the run had ended: drawn again) | " + " | ".join(
        str(ended_first[number]) for number in results) + " |")
    rows.append("| of them after the output was swapped in | " + " | ".join(
        f"{sum(r['after the swap'] for r in runs)}" for runs in results.values()) + " |")
    rows.append("| of them before jaxhw's first line ran (the signal's default action) | " + " | ".join(
        f"{sum(r['before jaxhw ran'] for r in runs)}" for runs in results.values()) + " |")
    rows.append("| all checks | " + " | ".join(f"{sum(all(r[c] for c in CHECKS) for r in runs)} of {len(runs)}"
                                              for runs in results.values()) + " |")
    return (f"## Signals at random moments (benchmarks/signals.py --trials {args.trials} --seed {args.seed})\n\n"
            f"`python -m jaxhw.classify --source embedded --epochs 2 --overwrite` on a previous output and its "
            f"checkpoints, a warm compile cache; an uninterrupted run lives {life:.2f} s, and each signal is sent at "
            f"a moment drawn uniformly over that.\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
