"""``python -m jaxhw.classify``: train the homework's image classifier and write metrics and curves."""
from __future__ import annotations

import argparse
import sys

from jaxhw import cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jaxhw.classify", description=__doc__)
    cli.add_data_args(parser)
    parser.add_argument("--model", default="mlp", help="mlp (the homework's) or cnn (default mlp)")
    cli.add_training_args(parser)
    cli.add_run_args(parser)
    cli.add_common_args(parser, default_out="runs/classify")
    return parser.parse_args(argv)


@cli.run_cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = cli.start(args)
    from jaxhw.experiments.classification import train_classifier

    result = train_classifier(args.dataset, args.source, args.data_dir, args.model, args.epochs, args.batch_size,
                              args.lr, args.seed, out, devices=args.devices, checkpoint_dir=args.checkpoint_dir,
                              resume=args.resume, keep_checkpoints=args.keep_checkpoints)
    print(f"test accuracy {result['test_accuracy']:.4f} in eval mode "
          f"({result['test_accuracy_train_mode']:.4f} if model.eval() is forgotten: train mode), test loss {result['test_loss']:.4f}, "
          f"{result['seconds_per_epoch']:.2f} s/epoch; wrote {out}/metrics.json and learning_curves.png")


if __name__ == "__main__":
    sys.exit(main())
