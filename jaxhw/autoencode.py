"""``python -m jaxhw.autoencode``: train the homework's MNIST autoencoder and write metrics and figures."""
from __future__ import annotations

import argparse
import sys

from jaxhw import cli
from jaxhw.configs import AUTOENCODERS, WEIGHT_INITS, AutoencodeConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jaxhw.autoencode", description=__doc__)
    cli.add_data_args(parser, AutoencodeConfig)
    parser.add_argument("--model", default=AutoencodeConfig.model,
                        help=f"one of {', '.join(AUTOENCODERS)}: dense is the homework's 784-128-64-latent "
                             f"(default {AutoencodeConfig.model})")
    parser.add_argument("--latent", type=cli.positive_int, default=AutoencodeConfig.latent,
                        help=f"code size (default {AutoencodeConfig.latent})")
    parser.add_argument("--noise", type=float, default=AutoencodeConfig.noise,
                        help="denoising: std of Gaussian noise added to training inputs only "
                             f"(default {AutoencodeConfig.noise})")
    parser.add_argument("--weight-init", default=AutoencodeConfig.weight_init,
                        help=f"one of {', '.join(WEIGHT_INITS)} (torch: PyTorch's default init; "
                             f"default {AutoencodeConfig.weight_init})")
    cli.add_training_args(parser, AutoencodeConfig)
    cli.add_run_args(parser, AutoencodeConfig)
    cli.add_common_args(parser, AutoencodeConfig, default_out="runs/autoencode")
    return parser.parse_args(argv)


@cli.run_cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = cli.config_from(AutoencodeConfig, args)
    out = cli.start(args)
    from jaxhw.experiments.autoencoding import train_autoencoder
    from jaxhw.report.outputs import write_autoencoding

    run = train_autoencoder(config)
    if out is None:  # a process of a group other than process 0: it trained, process 0 writes
        return
    with cli.output(out) as folder:
        write_autoencoding(run, folder, tensorboard=not args.no_tensorboard)
    over = f" (mean [95% interval] over {len(run.metrics['seeds'])} seeds)" if len(run.metrics["seeds"]) > 1 else ""
    print(f"test MSE {cli.with_interval(run.metrics, 'test_mse')}{over}, {run.metrics['seconds_per_epoch']:.2f} "
          f"s/epoch; wrote {out}/metrics.json, {', '.join(run.metrics['figures'])}{cli.tensorboard_folder(args)}")


if __name__ == "__main__":
    sys.exit(main())
