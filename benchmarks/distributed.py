"""The cost of the collectives between processes: 1 process with 2 devices against 2 processes with 1 device each.

Both train the same model on the same data with the same numbers (tests/test_distributed.py); the difference is
where the gradient sum of every step travels: between two devices of one process (a memory copy) or between two
processes over gloo (TCP on localhost here, the network between hosts on a cluster). Each configuration runs
``python -m jaxhw.classify`` whole, alternating A B A B, and the figure is its ``seconds_per_epoch`` (the median
epoch after the first, so compilation is left out), with the steps per second and the gradient bytes each step
sends. Prints the table and writes it to benchmarks/RESULTS_distributed.md.

    PYTHONPATH=. python benchmarks/distributed.py                 # MLP and CNN, Fashion-MNIST if present
    PYTHONPATH=. python benchmarks/distributed.py --models mlp --epochs 3 --reps 1 --source embedded
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS_distributed.md"
FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")
PARAMETERS = {"mlp": 50_890, "cnn": 207_018}  # float32 gradients summed every step


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def run(setup: str, model: str, args: argparse.Namespace, folder: pathlib.Path) -> dict:
    """One whole run of the command in ``setup`` ("1x2": one process, two devices; "2x1": two processes)."""
    out = folder / f"{setup}-{model}"
    command = [sys.executable, "-m", "jaxhw.classify", "--model", model, "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--compile-cache", str(folder / "cache"), *args.data]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    if setup == "1x2":
        processes = [subprocess.Popen(command + ["--out", str(out)], env={
            **env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, stderr=subprocess.PIPE, text=True)]
    else:
        port = free_port()
        processes = [subprocess.Popen(command + ["--out", str(out) if index == 0 else str(out) + "-other",
                                                 "--coordinator-address", f"localhost:{port}", "--num-processes",
                                                 "2", "--process-id", str(index)],
                                      env={**env, "XLA_FLAGS": ""}, stderr=subprocess.PIPE, text=True)
                     for index in range(2)]
    errors = [process.communicate()[1] for process in processes]
    if any(process.returncode for process in processes):
        raise SystemExit(f"{setup} {model} failed:\n" + "\n".join(error[-2000:] for error in errors))
    metrics = json.loads((out / "metrics.json").read_text())
    return {"seconds_per_epoch": metrics["seconds_per_epoch"], "first_epoch": metrics["first_epoch_seconds"],
            "wall": time.perf_counter() - started, "test_loss": metrics["test_loss"],
            "train_examples": metrics["train_examples"], "load": os.getloadavg()[0]}


def table(results: dict, args: argparse.Namespace) -> list[str]:
    rows = ["| model | setup | train examples | steps per epoch | gradient bytes per step | median epoch 2..N (s) "
            "| steps per second | 2 processes / 1 process (same rep) | first epoch (s) | whole run (s) | test loss |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, by_setup in results.items():
        ratios = [two["seconds_per_epoch"] / one["seconds_per_epoch"]
                  for one, two in zip(by_setup["1x2"], by_setup["2x1"])]
        for setup, label in (("1x2", "1 process x 2 devices"), ("2x1", "2 processes x 1 device (gloo)")):
            runs = by_setup[setup]
            examples = runs[0]["train_examples"]
            steps = -(-examples // args.batch_size)
            epoch = statistics.median(r["seconds_per_epoch"] for r in runs)
            ratio = "1 (reference)" if setup == "1x2" else f"{statistics.median(ratios):.2f}x"
            rows.append(f"| {model} | {label} | {examples} | {steps} | {PARAMETERS[model] * 4 / 1024:.0f} KiB | "
                        f"{epoch:.3f} | {steps / epoch:.0f} | {ratio} | "
                        f"{statistics.median(r['first_epoch'] for r in runs):.2f} | "
                        f"{statistics.median(r['wall'] for r in runs):.1f} | {runs[-1]['test_loss']:.6f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--source", choices=("auto", "embedded", "fashion"), default="auto",
                        help="fashion: Fashion-MNIST from /usr/share/datasets (60,000 examples); embedded: the 4,000 "
                             "digits in the package; auto: fashion where present")
    args = parser.parse_args()
    fashion = args.source == "fashion" or (args.source == "auto" and FASHION.is_dir())
    args.data = (["--dataset", "fashion_mnist", "--source", "idx", "--data-dir", str(FASHION)] if fashion
                 else ["--source", "embedded"])
    results: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for model in args.models.split(","):
            results[model] = {"1x2": [], "2x1": []}
            for rep in range(args.reps):
                for setup in ("1x2", "2x1"):
                    result = run(setup, model, args, pathlib.Path(folder) / f"rep{rep}")
                    results[model][setup].append(result)
                    print(f"{model} {setup} rep {rep + 1}: {result['seconds_per_epoch']:.3f} s/epoch, load "
                          f"{result['load']:.1f}", flush=True)
    rows = table(results, args)
    loads = [r["load"] for by_setup in results.values() for runs in by_setup.values() for r in runs]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    text = "\n".join([
        "# Several processes: what the collectives cost",
        "",
        f"Written by `benchmarks/distributed.py` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} "
        "UTC. The same training as 1 process with 2 (simulated) CPU devices and as 2 processes with 1 device each, "
        "joined over localhost with gloo; the numbers are the same (the test loss column), the time per epoch is "
        "not. Medians over the repetitions; the ratio is taken between runs of the same repetition.",
        "",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"{platform.system()} {platform.release()}",
        f"- load average (1 min) after each run: {', '.join(f'{load:.1f}' for load in loads)} (the machine is shared;"
        " read the ratios)",
        f"- data: {'Fashion-MNIST (IDX)' if fashion else 'the embedded digits'}; batch {args.batch_size}, "
        f"{args.epochs} epochs, {args.reps} repetitions; jaxhw commit {commit.strip()}",
        f"- command: `{' '.join(['PYTHONPATH=. python benchmarks/distributed.py', *sys.argv[1:]])}`",
        "",
        *rows,
        "",
        "Every step of the 2-process run sends the gradients of the step (4 bytes per parameter) through gloo's "
        "all-reduce and waits for the other process; one process with 2 devices adds the two halves in memory. "
        "On 2 cores both processes also share the cores with gloo's threads. See docs/distributed.md for what to "
        "expect from a real network.",
        "",
    ])
    RESULTS.write_text(text)
    print("\n".join(rows))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
