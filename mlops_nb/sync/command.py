"""`mlops-nb sync mlflow ...`: the sync from a terminal or a CI job.

Exit codes follow the CLI's: 0 everything is on the server, 1 a run or the server failed (the
summary says which and why), 2 bad input or the MLflow client is missing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def tracking_uri(args: argparse.Namespace) -> str:
    from .. import config
    from ..errors import MlopsNbError

    uri = args.tracking_uri or config.read(config.TRACKING_URI)
    if not uri:
        raise MlopsNbError("give --tracking-uri URI (or set MLFLOW_TRACKING_URI)")
    return str(uri)


def add_parser(sub: Any) -> None:
    from ..cli_mlops import positive_seconds

    p = sub.add_parser("sync", help="push runs to a team server (MLflow)")
    targets = p.add_subparsers(dest="target", required=True)
    m = targets.add_parser("mlflow", help="push runs not there yet to an MLflow tracking "
                                          "server, each into the experiment of its name")
    m.add_argument("--tracking-uri", metavar="URI",
                   help="the server (default: $MLFLOW_TRACKING_URI); credentials come from "
                        "MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN")
    m.add_argument("-e", "--experiment", help="only the runs of this experiment")
    m.add_argument("--dry-run", action="store_true", help="say what would be pushed; push nothing")
    m.add_argument("--watch", action="store_true",
                   help="keep pushing new runs as they land, until Ctrl-C")
    m.add_argument("--interval", type=positive_seconds, default=5.0, metavar="S",
                   help="with --watch: seconds between looks at the store (default: %(default)s)")
    m.set_defaults(func=cmd_sync)


def cmd_sync(args: argparse.Namespace) -> int:
    from .mlflow import AuthRefused, SyncFailed, SyncSummary, sync_mlflow, watch_mlflow

    uri = tracking_uri(args)
    home = _home(args)
    if args.watch:
        if args.dry_run:
            print("mlops-nb: --watch and --dry-run do not go together", file=sys.stderr)
            return EXIT_BAD_INPUT

        def report(item: SyncSummary | SyncFailed) -> None:
            if isinstance(item, SyncFailed):
                print(f"mlops-nb: {item} (retrying in {args.interval:g} s)", file=sys.stderr)
            elif item.pushed or item.failed:
                print(item.text(), flush=True)

        print(f"mlops-nb: watching for new runs every {args.interval:g} s; Ctrl-C stops",
              file=sys.stderr)
        try:
            total = watch_mlflow(uri, args.experiment, interval_s=args.interval, home=home,
                                 report=report)
        except AuthRefused as exc:
            print(f"mlops-nb: {exc}", file=sys.stderr)
            return EXIT_FAILED
        print(f"mlops-nb: stopped; pushed {len(total.pushed)} run(s) in all", file=sys.stderr)
        return EXIT_OK if total.ok else EXIT_FAILED
    try:
        summary = sync_mlflow(uri, args.experiment, args.dry_run, home=home)
    except SyncFailed as exc:
        if exc.summary is not None and (exc.summary.pushed or exc.summary.failed):
            print(exc.summary.text())
        print(f"mlops-nb: sync failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(summary.text())
    if args.dry_run:
        for rid in summary.would_push:
            print(f"  would push {rid}")
    return EXIT_OK if summary.ok else EXIT_FAILED


def _home(args: argparse.Namespace) -> Any:
    from ..cli import _home as cli_home

    return cli_home(args)


def cmd_pull_export(args: argparse.Namespace) -> int:
    """`mlops-nb export RUN_ID|--best --source mlflow -o DIR`: a teammate's pushed export."""
    from ..errors import MlopsNbError
    from .team import download_export, mlflow_runs

    uri = tracking_uri(args)
    run_id = args.run_id
    if args.best:
        from ..comparison.model import best_runs
        from ..table import metric_column

        if not args.metric:
            raise MlopsNbError("--best needs --metric M (the metric that decides the best run)")
        df = mlflow_runs(uri, args.experiment)
        goal = "min" if args.min else "max" if args.max else None
        best = best_runs(df, metric_column(df, args.metric), goal)
        if not best:
            raise MlopsNbError(f"no run on the server has a numeric {args.metric!r}")
        run_id = best[0]
    elif not run_id:
        raise MlopsNbError("give a RUN_ID or --best --metric M")
    out = download_export(run_id, args.output, uri, experiment=args.experiment,
                          force=args.force)
    print(f"mlops-nb: pulled the export of run {run_id[:12]}; check it with `mlops-nb "
          f"reproduce {out}`", file=sys.stderr)
    print(out)
    return EXIT_OK
