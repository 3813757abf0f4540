"""``python -m jaxhw.timeseries``: homework problem 5 measured. MLP, 1-D CNNs, LSTM, GRU and a Transformer on
the 50x8 time-series tasks over several seeds; prints the accuracy table and the homework's claims with
verdicts, writes results.json and results.png."""
from __future__ import annotations

import argparse
import sys

from jaxhw import cli
from jaxhw.configs import SEQUENCE_MODELS, TASKS, TIMESERIES_QUICK, TimeseriesConfig


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    full, quick = TimeseriesConfig(), TIMESERIES_QUICK
    parser = argparse.ArgumentParser(prog="python -m jaxhw.timeseries", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: tasks {','.join(quick.tasks)}, {quick.num_train} samples, {quick.seeds} "
                             f"seed, {quick.epochs} epochs (explicit options still apply)")
    parser.add_argument("--seeds", type=cli.positive_int, default=None,
                        help=f"number of seeds, counted from --seed (default {full.seeds}, {quick.seeds} with --quick)")
    parser.add_argument("--tasks", type=_names, default=None, help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--models", type=_names, default=None,
                        help=f"comma-separated subset of {','.join(SEQUENCE_MODELS)}")
    parser.add_argument("--num-train", type=cli.positive_int, default=None,
                        help=f"training samples per synthetic task (default {full.num_train}, {quick.num_train} "
                             "with --quick)")
    parser.add_argument("--epochs", type=cli.positive_int, default=None,
                        help=f"epochs (default {full.epochs}, {quick.epochs} with --quick)")
    parser.add_argument("--batch-size", type=cli.positive_int, default=None, help=f"default {full.batch_size}")
    parser.add_argument("--lr", type=cli.positive_float, default=None, help=f"Adam learning rate (default {full.lr})")
    cli.add_common_args(parser, TimeseriesConfig, default_out="runs/timeseries")
    return parser.parse_args(argv)


@cli.run_cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    base = TIMESERIES_QUICK if args.quick else TimeseriesConfig()
    given = {name: getattr(args, name) for name in ("seeds", "tasks", "models", "num_train", "epochs", "batch_size",
                                                     "lr", "seed") if getattr(args, name) is not None}
    config = base.replace(**given)
    out = cli.start(args)
    from jaxhw.experiments.timeseries import compare_sequence_models
    from jaxhw.report.outputs import write_timeseries

    results = compare_sequence_models(config)
    with cli.output(out) as folder:
        write_timeseries(results, folder, tensorboard=not args.no_tensorboard)
    print("\ntest accuracy, mean [95% interval] over seeds\n" + results["table"] + "\n")
    for claim in results["claims"]:
        evidence = "; ".join(f"{label} {found['mean']:.3f} {found['ci95'] or ''} ({found['verdict']})"
                             for label, found in claim["evidence"].items())
        print(f"[{claim['verdict']}] {claim['claim']} -- {claim['test']}: {evidence or 'not run'}")
    print(f"\n{results['total_seconds']:.0f} s; wrote {out}/results.json, results.png{cli.tensorboard_folder(args)}")


if __name__ == "__main__":
    sys.exit(main())
