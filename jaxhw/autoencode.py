"""``python -m jaxhw.autoencode``: train the homework's MNIST autoencoder and write metrics and figures."""
from __future__ import annotations

import argparse
import sys

from jaxhw import cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jaxhw.autoencode", description=__doc__)
    cli.add_data_args(parser)
    parser.add_argument("--model", default="dense", help="dense (784-128-64-latent, the homework's) or conv "
                                                         "(default dense)")
    parser.add_argument("--latent", type=cli.positive_int, default=2, help="code size (default 2)")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="denoising: std of Gaussian noise added to training inputs only (default 0.0)")
    parser.add_argument("--weight-init", default="flax", help="flax or torch (PyTorch's default init); default flax")
    cli.add_training_args(parser)
    cli.add_run_args(parser)
    cli.add_common_args(parser, default_out="runs/autoencode")
    return parser.parse_args(argv)


@cli.run_cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = cli.start(args)
    from jaxhw.experiments.autoencoding import train_autoencoder

    result = train_autoencoder(args.dataset, args.source, args.data_dir, args.model, args.latent, args.noise,
                               args.epochs, args.batch_size, args.lr, args.seed, out, weight_init=args.weight_init,
                               devices=args.devices, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                               keep_checkpoints=args.keep_checkpoints)
    print(f"test MSE {result['test_mse']:.4f}, {result['seconds_per_epoch']:.2f} s/epoch; wrote {out}/metrics.json "
          f"and {', '.join(result['figures'])}")


if __name__ == "__main__":
    sys.exit(main())
