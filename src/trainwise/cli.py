"""Thin subcommands over the Python API: `trainwise run`, `audit`, `check`, `find-lr`, ..."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, NoReturn

from trainwise.findings import TrainwiseError

# subcommand -> the last stage it runs (each one runs the stages before it too)
UNTIL = {"audit": "data", "split": "split", "check": "check", "find-lr": "tune",
         "tune": "tune", "train": "evaluate", "run": "evaluate"}
# find-lr is the range test alone; tune adds the short real runs that confirm it
_EXTRA = {"find-lr": ["tune.short_runs=false"]}
# what a subcommand is for beats the config and --set, as --devices does: `trainwise check`
# on a CI config with run.checks = false skipped every check and reported success (audit
# s15 K22); saved in config.toml, which then says what ran
_VERB_OVERRIDES = {"check": ["run.checks=true"]}

_HELP = {
    "run": "the whole method: data, split, model, checks, lr range test, training, report",
    "audit": "load and audit the data (class balance, missing values, duplicates, plots)",
    "split": "audit, then split without leaks and prove it",
    "check": "up to the preflight checks of the model (shape trace, loss at init, ...)",
    "find-lr": "up to the learning-rate range test (several seeds, a range with its spread)",
    "tune": "the range test, then short real runs at 3-5 rates inside it; picks the lr",
    "train": "the same as run (every stage through training and the test, then the report)",
}
_CONFIG_HELP = ("a .toml, .yaml or .json config, or a data file (.csv, .parquet, .npz) or image "
                "folder to run with the defaults (default: the built-in MNIST-1D demo)")
_SET_HELP = ("override a setting, e.g. --set train.max_epochs=3 (repeatable); text values "
             "may go unquoted (--set run.out_dir=ci_runs, --set data.target=2024); the last "
             "--set of a key wins, over the config file")
_EXIT_CODES = ("exit codes: 0 finished; 1 a stage stopped the run (an error finding) or a run\n"
               "  folder or checkpoint cannot be used; 2 a bad config or command line; 130 "
               "Ctrl-C;\n  143 SIGTERM (kill, a cluster's time limit): both say how to resume")
_RUN_EXAMPLES = """examples:
  trainwise {name} data.csv --set data.target=churn --set run.out_dir=ci_runs
  trainwise {name} my.toml --no-report --json    # one JSON line on stdout
  trainwise {name} RUN_DIR/config.toml           # rerun (pin run.threads: bitwise)
"""
_STAGE_EXAMPLES = """examples:
  trainwise {name} data.csv --set data.target=churn --set run.out_dir=ci_runs
  trainwise {name} wine --json       # one JSON line on stdout
  trainwise {name} my.toml           # then `trainwise run my.toml` for every stage
"""
_EXAMPLES = {
    "run": _RUN_EXAMPLES + "  trainwise run --resume RUN_DIR              # continue after "
    "Ctrl-C or a kill\n",
    "train": _RUN_EXAMPLES,
    "predict": "examples:\n  trainwise predict RUN_DIR new.csv --out predictions.csv\n"
    "  trainwise predict RUN_DIR new.npz              # its X, shaped as the run's inputs\n"
    "  trainwise predict RUN_DIR new_images/          # a run on images: a folder or file\n",
    "report": "examples:\n  trainwise report runs/20260101-120000-mnist1d\n",
    "compare": "examples:\n  trainwise compare runs/*                       # every run in runs/\n"
    "  trainwise compare runs/2026*-digits --json     # one JSON object on stdout\n",
    "config": "examples:\n  trainwise config > my.toml                     # edit, then "
    "trainwise run my.toml\n  trainwise config data.csv --set data.target=churn\n",
}


def _epilog(name: str) -> str:
    """Examples and exit codes under each subcommand's --help: a CI author reads --help."""
    # audit .. tune stop early: a rerun of a whole run (RUN_DIR/config.toml) is run's example
    examples = _EXAMPLES.get(name, _STAGE_EXAMPLES).format(name=name)
    if name not in UNTIL:  # config, predict, report and compare make no run folder (review s11 VA4)
        return f"{examples}\n{_EXIT_CODES}"
    return f"{examples}\nrun folders go to run.out_dir (default runs/); every run prints its " \
        f"path:\n  Run folder: RUN_DIR\n{_EXIT_CODES}"


class _Formatter(argparse.HelpFormatter):
    """Epilogs are laid out by hand (examples line by line); descriptions wrap as usual."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _sub(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    return sub.add_parser(name, epilog=_epilog(name), formatter_class=_Formatter, **kwargs)


class _Parser(argparse.ArgumentParser):
    """A misspelt subcommand gets the did-you-mean a misspelt config key gets (audit s13 P14):
    argparse's own "invalid choice: 'rnu' (choose from ...)" leaves the user to compare."""

    def error(self, message: str) -> NoReturn:
        import difflib
        import re

        wrong = re.search(r"invalid choice: '([^']*)'", message)
        if wrong and self._subparsers is not None:
            names = [n for a in self._subparsers._group_actions
                     for n in getattr(a, "choices", None) or []]
            close = difflib.get_close_matches(wrong.group(1), names, n=1, cutoff=0.5)
            if close:
                message += f". Did you mean '{close[0]}'? (trainwise {close[0]} --help)"
        super().error(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trainwise", description="Make deep-learning training go right.",
        epilog=_EXIT_CODES)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in _HELP.items():
        cmd = _sub(sub, name, help=help_text, description=help_text)
        cmd.add_argument("config", nargs="?", help=_CONFIG_HELP)
        cmd.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help=_SET_HELP)
        cmd.add_argument("--no-report", action="store_true", help="skip report.html")
        cmd.add_argument("--quiet", action="store_true", help="no progress bars, epoch lines "
                         "or stage table on stderr (for CI logs); the run folder, warnings, "
                         "errors and the verdict are still printed")
        cmd.add_argument("--json", action="store_true", help="print one JSON object on stdout "
                         "at the end: run_dir, ok, stopped_at, verdict, test, tune (lr, lr_low, "
                         "lr_high, spread_decades, source), report")
        if name in ("run", "train"):
            _add_scale_out_options(cmd)
    report = _sub(sub, "report", help="rebuild report.html of a run folder",
                            description="Rebuild report.html (one self-contained file) of a "
                            "run folder from what the run recorded: meta.json, findings.json, "
                            "history.jsonl and figures/.")
    report.add_argument("run_dir", help="the folder a run printed, e.g. "
                        "runs/20260101-120000-mnist1d (it holds meta.json)")
    _add_predict(sub)
    _add_compare(sub)
    show = _sub(sub, "config", help="print the resolved config as TOML",
                          description="Print the resolved config as TOML, every key under its "
                          "explanation and at its value (default, file, then --set): a starting "
                          "point for your own config file.")
    show.add_argument("config", nargs="?", help="a .toml, .yaml or .json config, or a data file "
                      "(.csv, .parquet, .npz) or image folder (default: the defaults alone)")
    show.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help=_SET_HELP)
    return parser


def _add_predict(sub: Any) -> None:
    predict = _sub(sub, "predict", help="a finished run's model on new rows",
                             description="Score new rows with a run's best weights "
                             "(checkpoints/best.pt), normalised as the run normalised its "
                             "training rows; writes the class (and each class's probability) "
                             "or the value in the target's units, one row per input row, "
                             "after its 0-based `row` and the identifier columns the run set "
                             "aside; what the rows hold that the run never saw is warned of on "
                             "stderr.")
    predict.add_argument("run_dir", help="the folder a run printed (it holds preprocess.npz "
                         "and checkpoints/best.pt)")
    predict.add_argument("file", help="the new rows: a .npz (its X, shaped as the run's "
                         "inputs) or a .csv / .parquet with the table's columns as the run "
                         "read them (text columns are one-hot encoded again); for a run on "
                         "images, also a folder of images or one image file")
    predict.add_argument("--threshold", choices=("argmax", "best"), default="argmax",
                         help="argmax (default): the most probable class; best: for two "
                         "classes, the decision threshold the run picked on validation "
                         "(meta.json's decision_threshold)")
    predict.add_argument("--prior-corrected", action="store_true",
                         help="a run trained with train.class_weights = \"balanced\": write "
                         "the probabilities with the weights undone (the weighted ones "
                         "over-state the rarer classes)")
    predict.add_argument("--allow-unfinished", action="store_true",
                         help="predict with a run that never finished (killed or interrupted "
                         "mid-training: its best.pt was never tested); refused without it")
    predict.add_argument("--trust-code", action="store_true",
                         help="import the module a config's model.name = \"module:Class\" "
                         "names even from the working folder or the run folder: that runs its "
                         "code, so only for a run folder you would run as a script")
    predict.add_argument("--out", default="predictions.csv",
                         help="where to write the predictions (default: predictions.csv in "
                         "the current folder; an older file there is replaced, and stderr "
                         "says so; the input file or a path inside a run folder is refused)")
    predict.add_argument("--force", action="store_true",
                         help="write --out even where it is the input file or lies inside a "
                         "run folder (each replaced file is lost)")


def _add_compare(sub: Any) -> None:
    compare = _sub(sub, "compare", help="a table of run folders, best validation loss first",
                   description="One row per run folder: the config keys that differ between "
                   "the runs, the best epoch and its validation loss, the test metric and the "
                   "count of warnings and errors; sorted by validation loss (choosing by the "
                   "test score would leak the test set).")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, glob "
                         "patterns (runs/*) or a folder holding run folders (runs)")
    compare.add_argument("--json", action="store_true", help="print one JSON object on "
                         "stdout: sorted_by, runs (one object per row, best first), note")


def _add_scale_out_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its "
                     "folder (its config.toml and checkpoints/last.pt)")
    cmd.add_argument("--devices", type=int, metavar="N", help="processes (CPU) or GPUs per "
                     "machine; same as --set run.devices=N, and wins over it")
    cmd.add_argument("--num-nodes", type=int, metavar="M", help="machines (with torchrun or "
                     "SLURM); same as --set run.num_nodes=M, and wins over it")
    cmd.add_argument("--strategy", choices=["auto", "ddp", "ddp_spawn", "ddp_fork", "fsdp"],
                     help="how processes share the work; same as --set run.strategy=..., "
                     "and wins over it")


def _scale_out_overrides(args: argparse.Namespace) -> list[str]:
    """--devices / --num-nodes / --strategy as `--set` overrides (applied last, so they win)."""
    pairs = [("run.devices", getattr(args, "devices", None)),
             ("run.num_nodes", getattr(args, "num_nodes", None)),
             ("run.strategy", getattr(args, "strategy", None))]
    return [f"{key}={value}" if isinstance(value, int) else f'{key}="{value}"'
            for key, value in pairs if value is not None]


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "report":
        from trainwise.reporting import build_report
        from trainwise.rundir import report_folder

        print(build_report(report_folder(args.run_dir)))
        return 0
    if args.command == "predict":
        from trainwise.predict_out import check_out

        check_out(args.out, [args.file], args.force, args.run_dir)  # before the model runs
        _predict_to_csv(args.run_dir, args.file, args.out, args.threshold,
                        args.prior_corrected, args.allow_unfinished, args.trust_code)
        return 0
    if args.command == "compare":
        from trainwise.comparison import compare_runs, format_table, to_json

        table = compare_runs(args.run_dirs)
        print(to_json(table) if args.json else format_table(table))
        return 0
    if args.command == "config":
        from trainwise.config import load_config, to_toml

        print(to_toml(load_config(args.config, args.overrides), notes=True))
        return 0
    from trainwise.console import quieted
    from trainwise.recipe import run

    resume = getattr(args, "resume", None)
    if resume and args.config:
        raise TrainwiseError("give a config or --resume RUN_DIR, not both: a resumed run uses "
                             "the config.toml in its folder. Change how it runs with --set "
                             "(e.g. --set train.max_minutes=60, run.devices, run.threads); what "
                             "it trains cannot change.")
    with quieted(args.quiet):
        result = run(args.config, overrides=args.overrides + _scale_out_overrides(args)
                     + _VERB_OVERRIDES.get(args.command, []),
                     unsaved_overrides=_EXTRA.get(args.command), until=UNTIL[args.command],
                     report=not args.no_report, resume=resume)
    # humans read stderr; a script parses this one line of stdout. With --devices N the
    # command re-runs as ranks 1..N-1 on the same stdout: only rank 0 prints (review s11 VA2)
    if args.json and result.is_global_zero:
        _print_json(result, report=not args.no_report)
    elif args.command == "check" and result.is_global_zero:
        _print_shape_trace(result.path / "model_summary.json")
    return 0 if result.ok else 1


def _print_shape_trace(path: Path) -> None:
    """`trainwise check` shows the per-layer shapes it checked (METHOD section 2)."""
    import json

    from trainwise.console import console
    from trainwise.shape_table import shape_table

    if path.exists():  # a run stopped at the data stage has no model
        console.print(shape_table(json.loads(path.read_text()), path))


def _print_json(result: Any, report: bool) -> None:
    import json

    # the tune stage's lr, range and spread (null for one seed), so a script need not parse
    # tune.json (audit s13 T1); {} when the run stopped before tuning or train.lr was given
    chosen = next((f.evidence for f in result.findings if f.code == "lr_chosen"), {})
    tune = {k: chosen.get(k) for k in ("lr", "lr_low", "lr_high", "spread_decades", "source")}
    print(json.dumps({"run_dir": str(result.path), "ok": result.ok,
                      "stopped_at": result.stopped_at, "verdict": result.verdict,
                      "test": result.test, "tune": tune if chosen else {},
                      "report": str(result.path / "report.html") if report else None},
                     default=str))


def _say_interrupted(exc: KeyboardInterrupt, args: argparse.Namespace | None) -> None:
    """One line, never a traceback. Before a run is under way the interrupt may have landed in
    torch's import (3-10 s on a loaded server): importing rich or trainwise.console then
    re-imports the half-built torch and raises anew (audit s15 O2), so that case prints plain."""
    resume_module = sys.modules.get("trainwise.resume")  # loaded by then if a run was going
    if resume_module is None or not isinstance(exc, resume_module.RunInterrupted):
        print(f"Interrupted{_by_signal()} before any run stage started: nothing to resume; "
              "run the command again.", file=sys.stderr)
        return
    try:
        _say_run_interrupted(exc, args)
    except Exception:  # a second failure must not hide where the run is
        print(f"Interrupted{_by_signal()}: {exc.run_dir}", file=sys.stderr)


def _say_run_interrupted(exc: Any, args: argparse.Namespace | None) -> None:
    from rich.markup import escape

    from trainwise.console import console
    from trainwise.resume import interrupted_message, resume_command

    resume = None
    if args is not None and hasattr(args, "resume"):  # run and train take --resume
        resume = resume_command(exc.run_dir, args.command, report=not args.no_report)
    # soft_wrap: the resume command stays on one line to copy, even in an 80-column pipe
    text = interrupted_message(exc, resume).replace("Interrupted", f"Interrupted{_by_signal()}", 1)
    console.print(f"[bold red]{escape(text)}[/]", soft_wrap=True)


def _print_interrupted_json(exc: KeyboardInterrupt, args: argparse.Namespace | None) -> None:
    """--json on an interrupted run: the folder to resume from, for a script (audit s15 O8)."""
    run_dir = getattr(exc, "run_dir", None)
    if run_dir is None or not getattr(args, "json", False):
        return
    if not getattr(exc, "is_global_zero", True):  # --devices N: each rank is interrupted; one
        return  # line for `jq -r .run_dir`, as a finished run prints (review VO2)
    import json

    print(json.dumps({"run_dir": str(run_dir), "ok": False, "stopped_at": exc.args[0],
                      "interrupted": "SIGTERM" if _TERMINATED else "SIGINT", "verdict": None,
                      "test": {}, "tune": {}, "report": None}))


# SIGTERM (kill, SLURM's time limit or preemption, docker stop) ends a run as Ctrl-C does: the
# same line with the resume command, exit 143 = 128 + 15 (audit s15 O3)
_TERMINATED: list[int] = []


def _on_sigterm(signum: int, frame: Any) -> None:
    _TERMINATED.append(signum)
    raise KeyboardInterrupt


def _by_signal() -> str:
    return " (SIGTERM)" if _TERMINATED else ""


def _interrupted_code() -> int:
    return 143 if _TERMINATED else 130  # what a shell reports for a process that signal ended


def exit_code(exc: TrainwiseError) -> int:
    """1 when a run folder or its checkpoint cannot be used (like a stage that stopped); 2 for
    a bad config or command line, as README promises: a script can tell them apart."""
    from trainwise.rundir import RunFolderError
    from trainwise.train.checkpoint import CheckpointError

    return 1 if isinstance(exc, CheckpointError | RunFolderError) else 2


def _predict_to_csv(run_dir: str, file: str, out: str, threshold: str = "argmax",
                    prior_corrected: bool = False, allow_unfinished: bool = False,
                    trust_code: bool = False) -> None:
    """predictions.csv: a 0-based `row` of the input first (as test_predictions.csv has), so
    rows join back without their order; what predict warns of goes to stderr, one line each."""
    from trainwise.prediction import predict
    from trainwise.prediction_table import PredictionWarning
    from trainwise.spreadsheet import safe_frame

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every note once, as a plain line, not file:line
        frame = predict(run_dir, file, threshold=threshold, prior_corrected=prior_corrected,
                        allow_unfinished=allow_unfinished, trust_code=trust_code)
    for said in caught:
        kind = "warning" if issubclass(said.category, PredictionWarning) else "note"
        print(f"{kind}: {said.message}", file=sys.stderr)
    if "row" not in frame.columns:
        frame.insert(0, "row", range(len(frame)))
    replaced = os.path.exists(out)  # the default, ./predictions.csv, is easy to overwrite
    safe_frame(frame).to_csv(out, index=False)  # a class '=HYPERLINK(..)' as text: S12
    again = (" It replaced the older file of that name; give --out another path to keep "
             "both.") if replaced else ""
    print(f"Wrote {len(frame)} rows to {os.path.abspath(out)}.{again}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = None
    _TERMINATED.clear()
    previous = _set_handler(signal.SIGTERM, _on_sigterm)  # as Ctrl-C, from the first line
    try:  # from the first line: Ctrl-C while torch imports is the common "wrong config" case
        args = _parser().parse_args(argv)
        return _main(args, argv)
    except KeyboardInterrupt as exc:  # Ctrl-C: where it stopped and how to go on, no traceback
        held = _set_handler(signal.SIGINT, signal.SIG_IGN)  # a 2nd Ctrl-C must not cut it
        try:
            _say_interrupted(exc, args)
            _print_interrupted_json(exc, args)
        finally:
            _set_handler(signal.SIGINT, held)
        return _interrupted_code()
    finally:
        _set_handler(signal.SIGTERM, previous)


def _set_handler(signum: int, handler: Any) -> Any:
    """signal.signal where it can be set (the main thread); the handler it replaced, or None."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signum, handler)


def _main(args: argparse.Namespace, argv: list[str] | None) -> int:
    warnings.filterwarnings("ignore", module="lightning_fabric")  # its tips are not for users
    from trainwise.command_line import CLI_COMMAND, cli_command

    recorded = CLI_COMMAND.set(cli_command(argv))  # meta.json's `command`
    try:
        return _dispatch(args)
    except TrainwiseError as exc:
        from rich.markup import escape

        from trainwise.console import console

        console.print(f"[bold red]error:[/] {escape(str(exc))}")  # '[data]' is text, not style
        return exit_code(exc)
    except BrokenPipeError:  # `trainwise config | head` closed the pipe: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no 2nd one at exit
        return 0
    finally:
        CLI_COMMAND.reset(recorded)


if __name__ == "__main__":
    sys.exit(main())
