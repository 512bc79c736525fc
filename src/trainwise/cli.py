"""Thin subcommands over the Python API: `trainwise run`, `audit`, `check`, `find-lr`, ..."""

from __future__ import annotations

import argparse
import sys
import warnings

from trainwise.findings import TrainwiseError

# subcommand -> the last stage it runs (each one runs the stages before it too)
UNTIL = {"audit": "data", "split": "split", "check": "check", "find-lr": "tune",
         "train": "evaluate", "run": "evaluate"}

_HELP = {
    "run": "the whole method: data, split, model, checks, lr range test, training, report",
    "audit": "load and audit the data (class balance, missing values, duplicates, plots)",
    "split": "audit, then split without leaks and prove it",
    "check": "up to the preflight checks of the model (shape trace, loss at init, ...)",
    "find-lr": "up to the learning-rate range test",
    "train": "same as run",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainwise", description="Make deep-learning training go right.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in _HELP.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("config", nargs="?", help="a .toml or .yaml config (default: the "
                         "built-in MNIST-1D demo)")
        cmd.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="override a setting, e.g. "
                         "--set train.max_epochs=3 (repeatable)")
        cmd.add_argument("--no-report", action="store_true", help="skip report.html")
    report = sub.add_parser("report", help="rebuild report.html of a run folder")
    report.add_argument("run_dir")
    show = sub.add_parser("config", help="print the resolved config as TOML")
    show.add_argument("config", nargs="?")
    show.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "report":
        from trainwise.reporting import build_report

        print(build_report(args.run_dir))
        return 0
    if args.command == "config":
        from trainwise.config import load_config, to_toml

        print(to_toml(load_config(args.config, args.overrides)))
        return 0
    from trainwise.recipe import run

    result = run(args.config, overrides=args.overrides, until=UNTIL[args.command],
                 report=not args.no_report)
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.filterwarnings("ignore", module="lightning_fabric")  # its tips are not for users
    try:
        return _dispatch(args)
    except TrainwiseError as exc:
        from trainwise.console import console

        console.print(f"[bold red]error:[/] {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
