"""`%track` and `%%track`: argument parsing over the tracker; no logic of their own."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import MagicArgumentParser

from .capture.recorder import Tracker
from .errors import ExportExists, MlopsNbError
from .store.location import foreign_home_note

ACTIONS = ("on", "off", "status", "runs", "flush", "compare", "export", "reproduce")

_HELP = """Record cell runs of this notebook: parameters, data, metrics, models, figures.

%track on [-e NAME] [-m VAR ...] [--save-models] [--allow-param NAME ...]
    record every cell run (-e: the experiment, default the notebook's name; -m: a variable
    to record as a metric, repeatable; --save-models: save the fitted models of every run as
    versions; --allow-param: record NAME as is though it looks like a credential)
%track off | status | flush
    stop recording; show where and what; write pending records now
%track runs [-e NAME] [--sort METRIC] [--limit N] [--all] [-f QUERY]
    the table of runs (--all: the full DataFrame; -f "model=RandomForest f1>0.9")
%track compare [-e NAME] [-m METRIC] [--min | --max]
    the comparison widget
%track export (RUN_ID | --best -m METRIC [--min | --max]) -o DIR [-e NAME] [--force]
    the run as a reproducible train.py in DIR
%track reproduce (RUN_ID | DIR) [--stable]
    run an export in a fresh process and compare (--stable: also check level L3)
%%track [-n NAME] [-m VAR ...] [-e NAME] [--allow-param NAME ...]
    this cell only, tracked on its own

A `# comment` after the options is ignored; quote values with spaces (-e "churn model").
"""


def _parser(prog: str, *options: str) -> MagicArgumentParser:
    """The argument set of one action: an option another action takes is an error here."""
    p = MagicArgumentParser(prog=prog)
    defs: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
        "experiment": (("-e", "--experiment"), {"help": "the experiment"}),
        "metric": (("-m", "--metric"), {"action": "append", "default": []}),
        "name": (("-n", "--name"), {}),
        "sort": (("--sort",), {}),
        "limit": (("--limit",), {"type": int}),
        "all": (("--all",), {"action": "store_true"}),
        "filter": (("-f", "--filter"), {}),
        "min": (("--min",), {"action": "store_true"}),
        "max": (("--max",), {"action": "store_true"}),
        "target": (("target",), {"nargs": "?"}),
        "output": (("-o", "--output"), {}),
        "best": (("--best",), {"action": "store_true"}),
        "force": (("--force",), {"action": "store_true"}),
        "stable": (("--stable",), {"action": "store_true"}),
        "save_models": (("--save-models",), {"action": "store_true"}),
        "allow_param": (("--allow-param",), {"action": "append", "default": [],
                                             "metavar": "NAME"}),
    }
    for option in options:
        flags, kwargs = defs[option]
        p.add_argument(*flags, **kwargs)
    return p


_ARGUMENT_SETS: dict[str, tuple[str, ...]] = {
    "on": ("experiment", "metric", "save_models", "allow_param"),
    "off": (),
    "status": (),
    "flush": (),
    "runs": ("experiment", "sort", "limit", "all", "filter"),
    "compare": ("experiment", "metric", "min", "max"),
    "export": ("target", "experiment", "metric", "best", "min", "max", "output", "force"),
    "reproduce": ("target", "stable"),
    "%%track": ("name", "metric", "experiment", "allow_param"),
}
_PARSERS: dict[str, MagicArgumentParser] = {}


def parse_track(line: str, cell: bool = False) -> tuple[str | None, argparse.Namespace]:
    """`%track`'s action and its options; UsageError for an unknown action or an option the
    action does not take (`%track on --stable`)."""
    words = split_line(strip_comment(line))
    if cell:
        if words and not words[0].startswith("-"):
            raise MlopsNbError(
                "%%track takes options only (--name, --metric, --experiment); "
                f"use the line magic for `{words[0]}`")
        action, key = None, "%%track"
    else:
        action = words.pop(0) if words else "status"
        if action not in ACTIONS:
            raise UsageError(f"%track: unknown action {action!r} (choose from "
                             f"{', '.join(ACTIONS)}); see %track?")
        key = action
    parser = _PARSERS.get(key)
    if parser is None:
        parser = _PARSERS[key] = _parser(key if cell else f"%track {key}",
                                         *_ARGUMENT_SETS[key])
    try:
        return action, parser.parse_args(words)
    except UsageError as exc:  # argparse's message does not say which action it was
        where = "%%track" if cell else f"%track {key}"
        raise UsageError(f"{where}: {exc}; see %track?") from None


@magics_class
class TrackMagics(Magics):
    def __init__(self, shell: Any, tracker: Tracker) -> None:
        super().__init__(shell)
        self.tracker = tracker

    @no_var_expand
    @line_cell_magic
    def track(self, line: str, cell: str | None = None) -> Any:
        try:
            action, args = parse_track(line, cell is not None)
            if cell is not None:
                return self.tracker.run_tracked_cell(
                    cell, name=args.name, metrics=args.metric, experiment=args.experiment,
                    allow_params=args.allow_param)
            return self._track_line(action or "status", args)
        except MlopsNbError as exc:
            print(f"mlops-nb: {exc}", file=sys.stderr)
            return None

    track.__doc__ = _HELP

    def _track_line(self, action: str, args: Any) -> Any:
        t = self.tracker
        if action == "on":
            t.start(experiment=args.experiment, metrics=args.metric,
                    allow_params=args.allow_param)
            from .models import save_models_after_runs

            save_models_after_runs(t, args.save_models)
            print(f"mlops-nb: tracking every cell into {t.home} "
                  f"(experiment {t.experiment!r}, session {t.session})")
            note = foreign_home_note(t.home)
            if note:
                print(f"mlops-nb: note: {note}")
        elif action == "off":
            t.stop()
            print("mlops-nb: tracking off")
        elif action == "flush":
            t.flush()
        elif action == "status":
            t.flush(5)  # so "written" counts what is on disk, not what is still queued
            print(status_text(t))
        # compare: the widget, shown as the cell's result
        elif action == "compare":
            if args.min and args.max:
                raise MlopsNbError("give --min or --max, not both")
            from .comparison import compare

            t.flush()
            return compare(args.experiment, metric=args.metric[-1] if args.metric else None,
                           goal="min" if args.min else "max" if args.max else None,
                           home=t.home)
        elif action == "export":
            return self._export(args)
        elif action == "reproduce":
            from .reproduction import reproduce

            if not args.target:
                raise MlopsNbError("%track reproduce RUN_ID|DIR")
            t.flush()
            return reproduce(args.target, home=t.home, stable=args.stable)  # shows its summary
        elif action == "runs":
            return self._runs(args)
        return None

    def _runs(self, args: Any) -> Any:
        """A compact table (short id, name, model, metrics, varying parameters, when);
        `--all` for the full DataFrame of `mnb.runs()`."""
        from .comparison.model import load_comparison
        from .table import compact_runs, constants_line

        t = self.tracker
        t.flush()
        query = (args.filter or "").strip().strip("\"'")
        cmp, _ = load_comparison(args.experiment, metric=args.sort, home=t.home)
        if query:
            cmp.set_filter(query)
        if not args.sort:
            cmp.set_sort("started_at", True)  # in the order they ran, like mnb.runs()
        if args.all:
            df = cmp.raw.loc[cmp.view.index]
            return df.head(args.limit) if args.limit is not None else df
        line = constants_line(cmp.plan.constant)
        if line:
            print(line)
        return compact_runs(cmp, limit=args.limit)

    def _export(self, args: Any) -> Any:
        """`%track export RUN_ID -o DIR` or `%track export --best --metric f1 [--min] -o DIR`."""
        from .exporting import best_run_id, export_run, sole_metric

        t = self.tracker
        t.flush()
        if args.best:
            metric = args.metric[-1] if args.metric else sole_metric(args.experiment, t.home)
            run_id = best_run_id(metric, experiment=args.experiment, home=t.home,
                                 goal="min" if args.min else "max" if args.max else None)
        elif args.target:
            run_id = args.target
        else:
            raise MlopsNbError("%track export RUN_ID -o DIR, or --best --metric M -o DIR")
        if not args.output:
            raise MlopsNbError("%track export needs -o DIR (the export folder)")
        try:
            out = export_run(run_id, args.output, home=t.home, force=args.force)
        except ExportExists as exc:
            from pathlib import Path

            from .comparison.widget import describe_export

            there = describe_export(Path(args.output))
            same = f"[{run_id[:8]}]" in there
            raise MlopsNbError(
                f"{args.output} already holds {there}"
                + ("; add --force to export it again" if same else
                   f", not run {run_id[:8]}: add --force to replace it (until then, "
                   "reproduce on that folder verifies the old run)")) from exc
        print(f"mlops-nb: exported run {run_id[:12]} to {out}")
        return out


def split_line(line: str) -> list[str]:
    """The magic's words as a shell would split them: `-e "churn model"` is one word without
    its quotes. (IPython's `parse_argstring` splits in non-POSIX mode, which keeps them.)"""
    try:
        if os.name != "nt":
            return shlex.split(line, posix=True)
        # Windows paths keep their backslashes: split without escapes, then unquote.
        return [w[1:-1] if len(w) > 1 and w[0] == w[-1] and w[0] in "'\"" else w
                for w in shlex.split(line, posix=False)]
    except ValueError as exc:  # an unbalanced quote
        raise MlopsNbError(f"could not read the options ({exc}): {line!r}") from None


def strip_comment(line: str) -> str:
    """The magic line without a trailing `# comment` (a `#` outside quotes, at the start or
    after a space), so lines pasted from the README work."""
    quote = ""
    for i, c in enumerate(line):
        if quote:
            if c == "\\":
                continue
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def status_text(t: Tracker) -> str:
    writer = t.writer
    lines = [
        f"tracking: {'on' if t.auto else 'off (only %%track cells)'}",
        f"experiment: {t.experiment or t.default_experiment()}",
        f"session: {t.session}",
        f"store: {t.home or '(created on first recorded cell)'}",
        f"notebook: {t.notebook or '(unknown)'}",
        f"cell runs recorded: {t.recorded}; written: {writer.written if writer else 0}"
        + (f"; waiting to be written: {writer.waiting}" if writer and writer.waiting else "")
        + (f"; dropped: {writer.lost}" if writer and writer.lost else ""),
    ]
    if writer is not None and writer.error is not None:
        lines.append(f"write error (runs are NOT being saved; retried every "
                     f"{writer.retry_interval:g} s): {writer.error!r}")
    elif writer is not None and writer.last_error is not None:
        when, err = writer.last_error
        lines.append(f"last write error ({time.strftime('%H:%M:%S', time.localtime(when))}, "
                     f"writes succeed again since): {err!r}")
    return "\n".join(lines)
