"""``python -m jaxhw.gradients``: homework problem 1 computed: the 1A cross-entropy, the 1B gradient tables
(analytic, jax.grad, finite differences) and sweep, and the 1C evidence; writes gradients.json and .png."""
from __future__ import annotations

import argparse
import sys

from jaxhw import cli
from jaxhw.configs import GradientsConfig

VECTOR_OPTIONS = ("--vector", "--label")


def number_list(text: str) -> list[float]:
    """argparse type: numbers separated by commas, optionally in brackets, e.g. "[0.1, 0.9]"."""
    items = [item.strip() for item in text.strip().strip("[]()").split(",") if item.strip()]
    try:
        numbers = [float(item) for item in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not numbers:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    return numbers


def label_value(text: str) -> int | list[float]:
    """argparse type: a class index ("3") or a vector ("0,0,0,1,0,0,0,0,0,0")."""
    try:
        return int(text)
    except ValueError:
        return number_list(text)


def join_vector_values(argv: list[str]) -> list[str]:
    """["--vector", "-0.5,1.5"] -> ["--vector=-0.5,1.5"]: argparse reads a value that starts with "-" and is not a
    plain negative number as an option, so vectors with a negative first entry are joined to their option."""
    joined, position = [], 0
    while position < len(argv):
        if argv[position] in VECTOR_OPTIONS and position + 1 < len(argv) and argv[position + 1].startswith("-"):
            joined.append(f"{argv[position]}={argv[position + 1]}")
            position += 2
        else:
            joined.append(argv[position])
            position += 1
    return joined


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = join_vector_values(sys.argv[1:] if argv is None else list(argv))
    parser = argparse.ArgumentParser(prog="python -m jaxhw.gradients", description=__doc__)
    defaults = GradientsConfig
    group = parser.add_argument_group("problem 1A (the predicted vector and its label)")
    group.add_argument("--vector", type=number_list, default=list(defaults.vector),
                       help="predicted probabilities, comma-separated (default: the homework's 11-entry vector)")
    group.add_argument("--label", type=label_value, default=list(defaults.label),
                       help="a class index or a one-hot vector (default: the homework's (0.0, 0.1, 0.0, 0.0, 0.0))")
    group.add_argument("--label-as-class", type=int, default=defaults.label_as_class, metavar="K",
                       help="read an invalid label as class K and apply -ln y_hat_K to the vector as given")
    group.add_argument("--renormalize", action="store_true",
                       help="also divide the vector by its sum before taking -ln y_hat_K")
    group = parser.add_argument_group("problem 1B (the gradient tables and the sweep)")
    group.add_argument("--true-class", type=int, default=defaults.true_class,
                       help=f"true class of the table (default {defaults.true_class})")
    group.add_argument("--p-true", type=float, default=defaults.p_true,
                       help=f"predicted probability of the true class, the rest spread evenly (default "
                            f"{defaults.p_true})")
    group = parser.add_argument_group("problem 1C(c) (training with and without an extra softmax)")
    cli.add_training_args(group, GradientsConfig)
    group.add_argument("--train-examples", type=cli.positive_int, default=defaults.train_examples,
                       help="train on N of the 4,000 embedded MNIST digits, drawn at random with --seed (default all)")
    cli.add_common_args(parser, GradientsConfig, default_out="runs/gradients")
    return parser.parse_args(argv)


@cli.run_cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = cli.config_from(GradientsConfig, args)
    out = cli.start(args)
    from jaxhw.experiments.gradients import gradient_lab
    from jaxhw.report.gradient_text import report_text
    from jaxhw.report.outputs import write_gradient_lab

    result = gradient_lab(config)
    with cli.output(out) as folder:
        write_gradient_lab(result, folder, tensorboard=not args.no_tensorboard)
    print(report_text(result))
    print(f"\nwrote {out}/gradients.json, {out}/gradients.png{cli.tensorboard_folder(args)} "
          f"({result['seconds']:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())
