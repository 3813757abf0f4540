"""``python -m jaxhw.timeseries``: homework problem 5 measured. MLP, 1-D CNNs, LSTM, GRU and a Transformer on
the 50x8 time-series tasks over several seeds; prints the accuracy table and the homework's claims with
verdicts, writes results.json and results.png."""
from __future__ import annotations

import argparse
import sys

from jaxhw import cli

DEFAULT_SEEDS, DEFAULT_EPOCHS = 3, 15


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from jaxhw.data.sequences import TASKS
    from jaxhw.models.sequence import SEQUENCE_MODELS

    parser = argparse.ArgumentParser(prog="python -m jaxhw.timeseries", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: task order, 200 samples, 1 seed, 2 epochs "
                             "(explicit --seeds/--epochs/--tasks still apply)")
    parser.add_argument("--seeds", type=cli.positive_int, default=None,
                        help=f"number of seeds, counted from --seed (default {DEFAULT_SEEDS}, 1 with --quick)")
    parser.add_argument("--tasks", type=_names, default=None, help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--models", type=_names, default=None,
                        help=f"comma-separated subset of {','.join(SEQUENCE_MODELS)}")
    parser.add_argument("--num-train", type=cli.positive_int, default=None,
                        help="training samples per synthetic task (default 1000, 200 with --quick)")
    cli.add_training_args(parser, epochs=DEFAULT_EPOCHS, batch_size=25, lr=2e-3)
    parser.set_defaults(epochs=None)  # None: DEFAULT_EPOCHS, or 2 with --quick
    cli.add_common_args(parser, default_out="runs/timeseries")
    return parser.parse_args(argv)


@cli.run_cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = cli.start(args)
    from jaxhw.data.sequences import TASKS
    from jaxhw.experiments.timeseries import QUICK, compare_sequence_models
    from jaxhw.models.sequence import SEQUENCE_MODELS

    quick = QUICK if args.quick else {}
    seeds = args.seeds or (1 if args.quick else DEFAULT_SEEDS)
    num_train = args.num_train or quick.get("num_train", 1000)
    results = compare_sequence_models(
        tasks=args.tasks or quick.get("tasks", TASKS), models=args.models or tuple(SEQUENCE_MODELS),
        seeds=range(args.seed, args.seed + seeds), epochs=args.epochs or quick.get("epochs", DEFAULT_EPOCHS),
        lr=args.lr, batch_size=args.batch_size, num_train=num_train, num_test=quick.get("num_test", 1000),
        out=out)
    print("\ntest accuracy, mean ± std over seeds\n" + results["table"] + "\n")
    for claim in results["claims"]:
        numbers = ", ".join(f"{k} {v}" for k, v in claim["numbers"].items())
        print(f"[{claim['verdict']}] {claim['claim']}: {numbers}")
    print(f"\n{results['total_seconds']:.0f} s; wrote {out}/results.json and results.png")


if __name__ == "__main__":
    sys.exit(main())
