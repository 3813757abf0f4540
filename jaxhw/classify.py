"""``python -m jaxhw.classify``: train the homework's image classifier and write metrics and curves."""
from __future__ import annotations

import argparse
import sys

from jaxhw import cli
from jaxhw.configs import CLASSIFIERS, ClassifyConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jaxhw.classify", description=__doc__)
    cli.add_data_args(parser, ClassifyConfig)
    parser.add_argument("--model", default=ClassifyConfig.model,
                        help=f"one of {', '.join(CLASSIFIERS)} (default {ClassifyConfig.model}, the homework's)")
    cli.add_training_args(parser, ClassifyConfig)
    cli.add_run_args(parser, ClassifyConfig)
    cli.add_common_args(parser, ClassifyConfig, default_out="runs/classify")
    return parser.parse_args(argv)


@cli.run_cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = cli.config_from(ClassifyConfig, args)
    out = cli.start(args)
    from jaxhw.experiments.classification import train_classifier
    from jaxhw.report.outputs import write_classification

    run = train_classifier(config)
    if out is None:  # a process of a group other than process 0: it trained, process 0 writes
        return
    with cli.output(out) as folder:
        write_classification(run, folder, tensorboard=not args.no_tensorboard)
    metrics = run.metrics
    over = f" (mean [95% interval] over {len(metrics['seeds'])} seeds)" if len(metrics["seeds"]) > 1 else ""
    print(f"test accuracy {cli.with_interval(metrics, 'test_accuracy')} in eval mode"
          f" ({cli.with_interval(metrics, 'test_accuracy_train_mode')} if model.eval() is forgotten: train mode), "
          f"test loss {cli.with_interval(metrics, 'test_loss')}{over}, {metrics['seconds_per_epoch']:.2f} s/epoch; "
          f"wrote {out}/metrics.json, learning_curves.png{cli.tensorboard_folder(args)}")


if __name__ == "__main__":
    sys.exit(main())
