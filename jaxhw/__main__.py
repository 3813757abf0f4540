"""``python -m jaxhw``: the whole homework end to end (problems 1-5), written as a report: index.html (one
self-contained page), report.md and report.json in --out, with each problem's own files beside them."""
from __future__ import annotations

import argparse
import sys

from jaxhw import cli
from jaxhw.configs import HOMEWORK_FULL, HOMEWORK_QUICK, HomeworkConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jaxhw", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: one epoch per model and two small sequence tasks")
    cli.add_data_args(parser, HomeworkConfig)
    cli.add_common_args(parser, HomeworkConfig, default_out="report")
    return parser.parse_args(argv)


@cli.run_cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = (HOMEWORK_QUICK if args.quick else HOMEWORK_FULL).with_run(args.dataset, args.source, args.data_dir,
                                                                         args.seed)
    out = cli.start(args)
    from jaxhw.homework import run_homework
    from jaxhw.report.homework_report import write_report

    results = run_homework(config)
    with cli.output(out) as folder:
        write_report(results, folder, tensorboard=not args.no_tensorboard)
    record = results.record
    print(f"wrote {out / 'index.html'} ({record['wall_seconds']:.0f} s wall, {record['cpu_seconds']:.0f} s CPU); "
          f"also report.md, report.json, problem1/ ... problem5/{cli.tensorboard_folder(args)}")


if __name__ == "__main__":
    sys.exit(main())
