"""Continuous training: retrain a run's recipe on new data, gate it, record it, promote it.

`retrain(target, data=...)` reads as its steps: resolve the run (or the promoted model's run),
validate the new data against the run's data profile, export the run's script, run it on the
new data in a fresh process, apply the gates, then — only once everything is known — record
the outcome as a new run linked to its parent (`params["retrained_from"]`), save the model
version, and move the promoted mark when every gate passed. Nothing is written before that
last step, so a retrain that fails or is killed midway leaves the store as it was.

Outcomes and their exit codes (`mlops-nb retrain`), distinct so cron or CI can branch:
0 PROMOTED (or ACCEPTED: gates passed, --promote not given), 1 SCRIPT_FAILED,
2 bad input, 3 GATE_FAILED (recorded, not promoted), 4 BLOCKED (schema violation, or drift
with --block-on-drift), 5 SKIPPED (--when drift and no drift found); the CLI adds 130/143
for SIGINT/SIGTERM (`stop_on_signals`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import MlopsNbError
from .gates import GateResult, check_known, evaluate, no_worse_than, parse_gates
from .jsonvalues import read_metrics_file

PROMOTED, ACCEPTED, SCRIPT_FAILED, GATE_FAILED, BLOCKED, SKIPPED = (
    "promoted", "accepted", "script_failed", "gate_failed", "blocked", "skipped")
EXIT_CODES = {PROMOTED: 0, ACCEPTED: 0, SCRIPT_FAILED: 1, GATE_FAILED: 3, BLOCKED: 4,
              SKIPPED: 5}
RETRAIN_MODE = "retrain"
STEPS = ("validate", "export", "train", "gates", "record")


@dataclass
class RetrainResult:
    outcome: str
    parent: str
    source_run: str
    run_id: str | None = None
    version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)
    validation: dict[str, Any] | None = None
    # what --no-worse-than compared with: the promoted model re-evaluated on the same data by
    # the same script ("re-evaluated"), or, when that was impossible, its run's "recorded"
    # metrics (the reason in `problems`)
    reference_metrics: dict[str, Any] | None = None
    reference_source: str | None = None
    problems: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    duration_s: float = 0.0
    script_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exit_code"] = self.exit_code
        return d

    def summary(self) -> str:
        lines = [f"retrain of {self.parent[:12]}: {self.outcome.upper()}"
                 + (f" -> run {self.run_id[:12]}" if self.run_id else "")]
        for name, value in self.metrics.items():
            lines.append(f"  metric {name} = {value!r}")
        for g in self.gates:
            lines.append(f"  gate {'PASS' if g.passed else 'FAIL'}: {g.detail}")
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _parse_data(items: list[str] | None) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for item in items or []:
        name, sep, path = item.partition("=")
        if sep and name and not Path(item).exists():
            out.append((name, path))
        else:
            out.append((None, item))
    if not out:
        raise MlopsNbError("give the new data: --data new.csv (or NAME=new.csv)")
    return out


def _match_files(data_files: list[dict[str, Any]], given: list[tuple[str | None, str]]
                 ) -> dict[str, tuple[dict[str, Any], str]]:
    """{recorded file key: (its data_files entry, new path)}; a file the run never read is bad
    input."""
    out: dict[str, tuple[dict[str, Any], str]] = {}
    keys = ", ".join(repr(d["key"]) for d in data_files) or "none"
    for name, path in given:
        if not Path(path).is_file():
            raise MlopsNbError(f"new data {path!r} is not a file")
        if name is None:
            if len(data_files) != 1:
                raise MlopsNbError(f"the run read {len(data_files)} data files ({keys}): "
                                   "give --data NAME=new.csv")
            entry = data_files[0]
        else:
            found = [d for d in data_files if name in (d["key"], Path(d["key"]).name,
                                                       Path(d["key"]).stem, d["flag"][7:])]
            if len(found) != 1:
                raise MlopsNbError(f"the run never read a data file named {name!r}; it read "
                                   f"{keys}")
            entry = found[0]
        if entry["key"] in out:
            raise MlopsNbError(f"--data gives two files for the run's {entry['key']!r} "
                               f"({out[entry['key']][1]!r} and {path!r}): give one")
        out[entry["key"]] = (entry, path)
    return out


_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")


def table_format(path: str | os.PathLike[str]) -> str:
    """What a data file is, as `validate` reads it: parquet (by suffix or content), json,
    jsonl, tsv, csv (a compressed csv is csv: pandas opens it by its name), else its
    suffix."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            if fh.read(4) == b"PAR1":
                return "parquet"
    except OSError:
        pass
    suffixes = [x.lower() for x in p.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix in ("", ".csv", ".txt", ".dat"):
        return "csv"
    return {".parquet": "parquet", ".json": "json", ".jsonl": "jsonl", ".tsv": "tsv",
            ".tab": "tsv"}.get(suffix, suffix)


def _check_formats(files: dict[str, tuple[dict[str, Any], str]]) -> None:
    """The script reads the new file with the call that read the run's: another format
    would fail in it (a parquet file through `read_csv`) after validation said it was fine."""
    for key, (entry, path) in files.items():
        recorded = entry.get("recorded") or ""
        was = table_format(recorded if recorded and Path(recorded).is_file() else key)
        now = table_format(path)
        if was != now:
            raise MlopsNbError(f"new data {path!r} is {now}, but the run read {key!r} as "
                               f"{was}, and its script reads the new file the same way: "
                               f"give it as {was}")


def check_writable(home: Path, experiment: str | None) -> None:
    """The folders a retrain writes its outcome to, tried before it trains: a read-only store
    would otherwise fail at the very end, after the training."""
    import errno

    folders = [home, home / "sessions", home / "sessions" / (experiment or ""),
               home / "blobs", home / "models"]
    for folder in folders:
        if not folder.is_dir():
            continue
        try:
            fd, probe = tempfile.mkstemp(prefix=".mlops-nb-probe-", dir=folder)
            try:
                os.fsync(fd)  # where a read-only or full disk fails an atomic write
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError as exc:
            why = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
            raise StoreNotWritable(f"the store {home} cannot be written ({folder}: {why}); a "
                                   "retrain records its outcome there: make it writable or "
                                   "give another store (--home)") from None


class StoreNotWritable(MlopsNbError):
    """The store a retrain would record into cannot be written."""


def source_run(reader: Any, run: Any) -> Any:
    """The notebook run whose script a retrain runs: retrains of retrains go back to it."""
    seen = set()
    while run.mode == RETRAIN_MODE and run.id not in seen:
        seen.add(run.id)
        parent = (run.params or {}).get("retrained_from")
        if not isinstance(parent, str):
            break
        run = reader.resolve(parent)
    return run


def run_script(script: Path, workdir: Path, args: list[str], timeout: float,
               env_extra: dict[str, str] | None = None) -> tuple[int | None, str, float]:
    env = dict(os.environ)
    env.update({"PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", **(env_extra or {})})
    env.pop("MLOPS_NB_HOME", None)
    env.pop("JPY_SESSION_NAME", None)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # in this process's group, so a kill of the whole group ends it too; stopped here on a
    # timeout, Ctrl-C or (with `stop_on_signals`) SIGTERM, before the exception goes on
    proc = subprocess.Popen([sys.executable, str(script), *args], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return None, f"[timed out after {timeout}s]", time.perf_counter() - t0
    except BaseException:
        _stop(proc)
        raise
    return proc.returncode, err, time.perf_counter() - t0


STOP_GRACE = 3.0  # seconds a stopped training script has to exit before it is killed


def _stop(proc: subprocess.Popen[str]) -> None:
    """End the training script: SIGTERM, then SIGKILL after a grace period."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
    try:
        proc.communicate(timeout=STOP_GRACE)  # reaps it and closes the pipes
    except (subprocess.TimeoutExpired, ValueError, OSError):
        proc.kill()
        proc.wait()


class Terminated(BaseException):
    """SIGTERM or SIGHUP during `mlops-nb retrain` (`stop_on_signals`): unwinds like Ctrl-C's
    KeyboardInterrupt, so the training script is stopped and the temporary folder removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_SIGNALS: dict[str, Any] = {"writing": False, "pending": None}


@contextmanager
def stop_on_signals() -> Any:
    """For the CLI (main thread): SIGINT raises KeyboardInterrupt, SIGTERM and SIGHUP
    `Terminated`, except while the outcome is being written (a few milliseconds, never cut
    in half: the signal is then noted and the retrain finishes)."""
    import signal

    def handler(signum: int, _frame: Any) -> None:
        if _SIGNALS["writing"]:
            _SIGNALS["pending"] = signum
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    wanted = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP")
                                                else [])
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def _writing() -> Any:
    _SIGNALS["writing"], _SIGNALS["pending"] = True, None
    try:
        yield
    finally:
        _SIGNALS["writing"] = False
        if _SIGNALS["pending"] is not None:
            print(f"mlops-nb: signal {_SIGNALS['pending']} arrived while the outcome was "
                  "written; finished writing it first", file=sys.stderr)
            _SIGNALS["pending"] = None


def _progress(enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=len(STEPS), desc="retrain", unit="step", disable=not enabled,
                file=sys.stderr, leave=False)


def retrain(target: str, data: list[str] | str, *, gates: list[str] | None = None,
            no_worse_than_margin: float | None = None, beat_noise: bool = False,
            promote: bool = False, when: str = "always", model_name: str | None = None,
            home: str | os.PathLike[str] | None = None, timeout: float = 3600,
            alpha: float | None = None, psi: float | None = None,
            progress: bool = True, trusted: bool = False,
            block_on_drift: bool = False) -> RetrainResult:
    """Retrain run `target`'s recipe on new data, gate it, record it, maybe promote it.

    Args:
        target: a run id, unique prefix, "promoted", or "promoted:NAME" (also "promoted"
            with `model_name`).
        data: the new data file(s), as `NAME=PATH` or a path the run read.
        gates: conditions the new run must meet, e.g. `["f1 >= 0.8"]`.
        no_worse_than_margin: fail when worse than the promoted model by more than this; the
            promoted model is evaluated by the same script on the same new data (champion.py).
        beat_noise: require beating the promoted model by more than its seed noise.
        promote: move the promoted mark to the new model when every gate passes.
        when: "always", or "drift" to retrain only when the data drifted.
        model_name: which saved model of the run.
        home: the store folder.
        timeout: seconds the script may run.
        alpha: drift test significance (default 0.01).
        psi: population stability index from which a shift is material (default 0.1).
        progress: show a progress bar.
        trusted: allow loading a promoted model stored in a format that can run code, for
            that evaluation.
        block_on_drift: stop (outcome BLOCKED) when the new data drifted.

    Returns:
        The `RetrainResult`: `.outcome` (PROMOTED, ACCEPTED, GATE_FAILED...), `.run_id`.

    Raises:
        MlopsNbError: bad input, before anything trains: an unknown run, a data file the run
            never read (or two files for one), a file in another format than the run's,
            unreadable data, an unparseable gate or unknown metric, no promoted model to
            compare with (or no noise measured for it, with `beat_noise`), a timeout that is
            not positive, a store that cannot be written (StoreNotWritable).
    """
    from . import models
    from .config import store_reader as _reader
    from .validation import pick_entry, resolve_run

    started = time.perf_counter()
    if when not in ("always", "drift"):
        raise MlopsNbError(f"--when is 'always' or 'drift', not {when!r}")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise MlopsNbError(f"the timeout must be a positive number of seconds, not {timeout!r}")
    if block_on_drift and when == "drift":
        raise MlopsNbError("--block-on-drift and --when drift contradict each other: the "
                           "first stops on drift, the second retrains only on drift")
    parsed_gates = parse_gates(gates)
    given = _parse_data([data] if isinstance(data, str) else list(data))
    reader = _reader(home)
    home_path = reader.home
    # `promoted` with a model name is that model's promoted run, as `promoted:NAME` is
    parent = resolve_run(reader, target,
                         model_name if models.promoted_ref(target)[0] else None)
    source = source_run(reader, parent)
    check_known(parsed_gates, parent.metrics, f"run {parent.id[:12]}")
    reference = None
    if no_worse_than_margin is not None or beat_noise:
        reference = models.promoted_version(home_path, model_name)
        if reference is None:
            raise MlopsNbError("--no-worse-than / --beat-noise compare with the promoted model, "
                               "and none is promoted yet")
    noise = None
    if beat_noise:
        noise = _noise_spread(home_path, reference["run_id"])
        if noise is None:  # else the gate would be --no-worse-than 0, passing a tie
            raise MlopsNbError(f"--beat-noise: no noise measured for the promoted run "
                               f"{reference['run_id'][:12]}: run `mlops-nb reproduce "
                               f"{reference['run_id'][:12]} --seeds 5` first")
    check_writable(home_path, parent.experiment)
    bar = _progress(progress)
    result = RetrainResult(BLOCKED, parent.id, source.id)
    with tempfile.TemporaryDirectory(prefix="mlops-nb-retrain-") as tmp:
        work = Path(tmp)
        # 1. the export (needed to know which data files the script reads)
        bar.set_postfix_str("export")
        export = _build(reader, source, work / "export")
        files = _match_files(export["data_files"], given)
        _check_formats(files)
        if not export["models"] and promote:
            raise MlopsNbError(f"run {source.id[:12]} has no fitted model to save, so there is "
                               "nothing to promote; retrain without --promote to record its "
                               "metrics only")
        # 2. validate each new file against the profile of the data it replaces
        bar.set_postfix_str("validate")
        reports = []
        for key, (_entry, path) in files.items():
            try:
                pick_entry(parent, key)
            except MlopsNbError:
                if when == "drift":
                    raise MlopsNbError(f"--when drift: the run has no profile of {key!r} to "
                                       "detect drift with") from None
                continue
            from .validation import validate

            reports.append(validate(parent.id, path, name=key, home=home_path, alpha=alpha,
                                    psi=psi))
        bar.update(2)
        result.validation = {"reports": [r.to_dict() for r in reports]}
        errors = [f.message for r in reports for f in r.schema_errors]
        if errors:
            result.problems = [f"schema violation: {e}" for e in errors]
            return _done(result, BLOCKED, started, bar)
        drifted = [c for r in reports for c in r.drifted]
        if block_on_drift and drifted:
            result.problems = [f"drift in {', '.join(map(repr, drifted))} (--block-on-drift): "
                               "nothing retrained"]
            return _done(result, BLOCKED, started, bar)
        if when == "drift" and not drifted:
            result.problems = ["no drift found (--when drift): nothing retrained"]
            return _done(result, SKIPPED, started, bar)
        # 3. train on the new data in a fresh process
        bar.set_postfix_str("train")
        model_path = work / "model.bin"
        args = ["--output-dir", str(work / "out")]
        if export["models"]:
            args += ["--save-model", str(model_path)]
        for _key, (entry, path) in files.items():
            args += [entry["flag"], str(Path(path).resolve())]
        code, stderr, elapsed = run_script(work / "export" / "train.py", work / "run", args,
                                           timeout)
        result.script_s = round(elapsed, 3)
        bar.update(1)
        metrics_path = work / "out" / "metrics.json"
        if code != 0 or not metrics_path.is_file():
            result.stderr_tail = stderr[-4000:]
            result.problems = [f"the script failed with exit code {code}" if code is not None
                               else f"the script timed out after {timeout}s"]
            return _done(result, SCRIPT_FAILED, started, bar)
        result.metrics = read_metrics_file(metrics_path)
        # 4. gates
        bar.set_postfix_str("gates")
        result.gates = evaluate(parsed_gates, result.metrics)
        if reference is not None:
            data_args = [a for _k, (entry, path) in files.items()
                         for a in (entry["flag"], str(Path(path).resolve()))]
            ref_metrics, against = _reference_metrics(
                reader, reference, work, data_args, timeout, trusted, result)
            names = [g.metric for g in parsed_gates] or [
                m for m in result.metrics if m in ref_metrics]
            result.gates += no_worse_than(result.metrics, ref_metrics,
                                          no_worse_than_margin or 0.0, names, noise=noise,
                                          against=against)
        passed = all(g.passed for g in result.gates)
        bar.update(1)
        # 5. record: the run, the model version, then (only if every gate passed) the mark
        bar.set_postfix_str("record")
        with _writing():
            result.run_id, result.version = _write_outcome(
                reader, parent, source, files, result, reports, elapsed, passed, promote,
                model_path, model_name, reference, export)
        bar.update(1)
        if not passed:
            return _done(result, GATE_FAILED, started, bar)
        return _done(result, PROMOTED if promote else ACCEPTED, started, bar)


def _write_outcome(reader: Any, parent: Any, source: Any, files: dict[str, Any],
                   result: RetrainResult, reports: list[Any], elapsed: float, passed: bool,
                   promote: bool, model_path: Path, model_name: str | None,
                   reference: dict[str, Any] | None, export: dict[str, Any]
                   ) -> tuple[str, str | None]:
    """The run, the model version, then (only if every gate passed) the promoted mark."""
    from . import models

    home_path = reader.home
    run_id = _record(reader, parent, source, files, result.metrics, reports,
                     elapsed, passed)
    if not model_path.is_file():
        return run_id, None
    meta = json.loads(Path(str(model_path) + ".json").read_text(encoding="utf-8"))
    name = model_name or (reference or {}).get("name") or _model_name(
        home_path, parent.id, export)
    version = models.save_payload(
        home_path, run_id, name, meta["format"], model_path.read_bytes(),
        cls=meta.get("class"), experiment=parent.experiment,
        extra={"retrained_from": parent.id})
    if passed and promote:
        models.promote(home_path, version)
    return run_id, version["version"]


def _reference_metrics(reader: Any, reference: dict[str, Any], work: Path,
                       data_args: list[str], timeout: float, trusted: bool,
                       result: RetrainResult) -> tuple[dict[str, Any], str]:
    """The promoted model's metrics on the candidate's evaluation (see champion.py), else
    its run's recorded ones, said in `result.problems`; (metrics, how to name them)."""
    from .champion import evaluate_promoted

    try:
        metrics = evaluate_promoted(reader.home, reference, work / "export", data_args,
                                    work / "promoted", timeout, trusted=trusted)
        result.reference_source = "re-evaluated"
        label = "the promoted model, re-evaluated on the same data"
    except Exception as exc:  # any failure: the recorded metrics, and the output says so
        metrics = reader.resolve(reference["run_id"]).metrics
        result.reference_source = "recorded"
        result.problems.append(f"the promoted model could not be re-evaluated on the new data "
                               f"({exc}); compared with its run's recorded metrics")
        label = "the promoted run's recorded value"
    result.reference_metrics = dict(metrics)
    return metrics, label


def _done(result: RetrainResult, outcome: str, started: float, bar: Any) -> RetrainResult:
    bar.close()
    result.outcome = outcome
    result.duration_s = round(time.perf_counter() - started, 3)
    return result


def _model_name(home: Path, parent_id: str, export: dict[str, Any]) -> str:
    from .models import list_versions

    for v in reversed(list_versions(home)):
        if v.get("run_id") == parent_id:
            return str(v["name"])
    return str((export.get("models") or ["model"])[-1])


def _noise_spread(home: Path, run_id: str) -> dict[str, float] | None:
    from .noise import load_noise

    doc = load_noise(home, run_id)
    return None if doc is None else {k: v["spread"] for k, v in doc["metrics"].items()}


def _build(reader: Any, run: Any, out: Path) -> dict[str, Any]:
    from .exporting import write_export
    from .exporting.build import build_export

    with warnings.catch_warnings():  # the recorded data may be gone: new data replaces it
        warnings.simplefilter("ignore")
        export = build_export(reader, run)
    out.mkdir(parents=True)
    write_export(export, out)
    run_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return {"data_files": run_json.get("data_files") or [],
            "models": [str(m) for m in (run_json.get("script") or {}).get("models") or []]}


def _record(reader: Any, parent: Any, source: Any, files: dict[str, Any],
            metrics: dict[str, Any], reports: list[Any], elapsed: float, passed: bool) -> str:
    """Write the retrain's outcome as a run of its own one-run session."""
    from .capture.fingerprint import fingerprint_file
    from .records import CellRun
    from .store.index import run_model
    from .store.writer import SessionWriter
    from .validation import read_table
    from .validation.hook import Profiler

    profiler = Profiler()
    data: dict[str, dict[str, Any]] = {}
    for key, (_entry, path) in files.items():
        fp = fingerprint_file(path) or {"type": "file", "path": str(path)}
        fp["replaces"] = key
        try:
            frame = read_table(path)
            profiler(frame, {**fp, "hash": fp.get("hash")})
            prof = profiler.seen.get(fp.get("hash"))
            if prof:
                fp["profile"] = prof
        except MlopsNbError:
            pass
        data[f"file:{key}"] = fp
    params = dict(parent.effective_params if parent.effective_params is not None
                  else parent.params)
    params["retrained_from"] = parent.id
    session = "retrain-" + uuid.uuid4().hex[:16]
    cr = CellRun(id=uuid.uuid4().hex, session=session, experiment=parent.experiment, seq=0,
                 started_at=time.time(), duration_s=round(elapsed, 6), mode=RETRAIN_MODE,
                 name=f"retrain of {parent.id[:12]}", notebook=source.notebook,
                 params=params, metrics=dict(metrics), data=data, effective_params=params,
                 effective_data=data, lineage=[],
                 warnings=[] if passed else ["a gate failed: not promoted"],
                 model=run_model(parent))  # the script fits what the run it replays fitted
    writer = SessionWriter(reader.home, session, flush_interval=0)
    recorded = False
    try:
        writer.update_session(retrained_from=parent.id, source_run=source.id)
        writer.append(cr, profiler.take_blobs())
        if not writer.flush(60) or writer.error is not None:
            raise MlopsNbError(f"could not record the retrain run: {writer.error}")
        recorded = True
    finally:
        try:
            writer.close()
        except OSError as exc:  # never in place of the error that is on its way
            if recorded:
                raise MlopsNbError(f"could not record the retrain run: {exc}") from None
    return cr.id
