"""Run an export in a fresh process and compare its metrics with the recorded ones.

Levels, each implying the ones before:
- L0 exported: the script parses, no unresolved names, no refused magics;
- L1 the script runs to completion in a fresh Python process, in an empty folder;
- L2 every metric equal to the recorded value (exactly, or within the stated tolerance);
- L3 (`stable=True`) equal again in two more runs with different PYTHONHASHSEED.
The verdict is stored per run (`.mlops_nb/verdicts/<run id>.json`) for the comparison widget.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ExportRefused, MlopsNbError, RunNotFound
from .jsonvalues import json_ready, read_metrics_file

# what `mlops-nb reproduce TARGET` takes for a run id (prefix) rather than a folder
_RUN_ID = re.compile(r"[0-9a-f]+")

LEVELS = ("L0", "L1", "L2", "L3")
STDERR_TAIL = 4000
DATA_MISMATCH_PREFIX = "mlops-nb-data-mismatch: "
HASH_SEEDS = (0, 1, 2)


@dataclass
class Verdict:
    run_id: str | None
    level: str | None  # the highest level reached, None when not even L0
    ok: bool
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    duration_s: float = 0.0
    stderr_tail: str = ""
    returncode: int | None = None
    rtol: float = 0.0
    atol: float = 0.0
    stable: bool = False
    problems: list[str] = field(default_factory=list)
    data_mismatches: list[dict[str, Any]] = field(default_factory=list)
    export_dir: str | None = None
    checked_at: str = ""
    hash_seed_dependent: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython shows the summary
        printer.text(self.summary())

    def summary(self) -> str:
        tol = ("exact" if not (self.rtol or self.atol)
               else f"rtol={self.rtol:g}, atol={self.atol:g}")
        head = (f"{'reproduced' if self.ok else 'NOT reproduced'}: level {self.level or 'none'}"
                f" ({tol}) in {self.duration_s:.1f}s")
        lines = [head]
        if self.run_id:  # say what was verified: a folder may hold an older export
            lines.append(f"  the export of run {self.run_id[:12]}"
                         + (f" in {self.export_dir}" if self.export_dir else ""))
        for name, m in self.metrics.items():
            mark = "=" if m.get("equal") else "!="
            lines.append(f"  {name}: recorded {m.get('recorded')!r} {mark} reproduced "
                         f"{m.get('reproduced')!r} (difference {m.get('difference')!r})")
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  data file {d.get('file')!r} {d.get('problem')}" for d in
                  self.data_mismatches]
        return "\n".join(lines)


def compare_metric(recorded: Any, reproduced: Any, rtol: float, atol: float
                   ) -> tuple[bool, Any]:
    """(equal, difference): exact unless a tolerance is given; NaN equals NaN."""
    num = (int, float)
    if (isinstance(recorded, num) and isinstance(reproduced, num)
            and not isinstance(recorded, bool) and not isinstance(reproduced, bool)):
        r, x = float(recorded), float(reproduced)
        if math.isnan(r) or math.isnan(x):
            return math.isnan(r) and math.isnan(x), None
        if math.isinf(r) or math.isinf(x):
            return r == x, None if r == x else math.inf
        diff = x - r
        if rtol == 0.0 and atol == 0.0:
            return recorded == reproduced, diff
        return abs(diff) <= atol + rtol * abs(r), diff
    return recorded == reproduced, None


def _run_script(script: Path, workdir: Path, seed: int, timeout: float
                ) -> tuple[int | None, str, dict[str, Any] | None, float]:
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = str(seed)
    env["MPLBACKEND"] = "Agg"
    env.pop("MLOPS_NB_HOME", None)
    env.pop("JPY_SESSION_NAME", None)
    workdir.mkdir(parents=True, exist_ok=True)
    out_dir = workdir / "output"
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(script), "--output-dir", str(out_dir)],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else (
            exc.stderr or "")
        return None, err + f"\n[timed out after {timeout}s]", None, time.perf_counter() - t0
    elapsed = time.perf_counter() - t0
    metrics = None
    path = out_dir / "metrics.json"
    if proc.returncode == 0 and path.is_file():
        try:
            metrics = read_metrics_file(path)
        except ValueError:
            metrics = None
    return proc.returncode, proc.stderr, metrics, elapsed


def _expected(run_json: dict[str, Any], home: Path | None) -> dict[str, Any]:
    from .jsonvalues import from_tagged

    expected = from_tagged(run_json.get("expected_metrics") or {})
    if home is not None and run_json.get("run_id"):
        try:
            from .store.reader import StoreReader

            return dict(StoreReader(home).resolve(run_json["run_id"]).metrics)
        except MlopsNbError:
            pass
    return expected


def _home_for(target_home: str | os.PathLike[str] | None, run_json: dict[str, Any] | None
              ) -> Path | None:
    if target_home is not None:
        return Path(target_home)
    from .capture.recorder import active_tracker
    from .config import store_home

    tracker = active_tracker()
    if (tracker is None or tracker.home is None) and run_json \
            and isinstance(run_json.get("store"), str) and Path(run_json["store"]).is_dir():
        return Path(run_json["store"])
    try:
        return store_home()
    except MlopsNbError:
        return None


def reproduce(target: str | os.PathLike[str], *, home: str | os.PathLike[str] | None = None,
              rtol: float = 0.0, atol: float = 0.0, timeout: float = 600,
              stable: bool = False, run: str | None = None) -> Verdict:
    """Verify that an export folder (or a run, exported to a temporary folder) reproduces.

    Runs `train.py` in a fresh Python process in an empty folder and compares each metric
    with the recorded value. The verdict is stored with the run for the comparison view.

    Args:
        target: an export folder (holding `run.json`), or a run id or unique prefix.
        home: the store folder (default: the notebook's store, else found like `.git`).
        rtol: relative tolerance per metric (0: exactly equal).
        atol: absolute tolerance per metric.
        timeout: seconds the script may run before it counts as failed.
        stable: also run twice more with other `PYTHONHASHSEED`s (level L3).
        run: the run the folder must hold: a folder holding another run's export (an older
            export left in `exports/best`, say) is refused with what it holds, never verified
            instead.

    Returns:
        The `Verdict`: `.ok`, `.level` (L0-L3), per-metric `.metrics`, `.problems`.

    Raises:
        MlopsNbError: bad tolerances or timeout, a folder that is not an export (or not of
            `run`), an unknown or ambiguous run id (RunNotFound, AmbiguousRunId), no store
            (StoreNotFound).

    Example:
        >>> mnb.reproduce("exports/rf").ok                     # doctest: +SKIP
        True
    """
    if rtol < 0 or atol < 0 or not (math.isfinite(rtol) and math.isfinite(atol)):
        raise MlopsNbError("rtol and atol must be finite and >= 0")
    if timeout <= 0:
        raise MlopsNbError("timeout must be positive")
    started = time.perf_counter()
    tmp: tempfile.TemporaryDirectory[str] | None = None
    try:
        export_dir = Path(os.fspath(target))
        if not (export_dir / "run.json").is_file():
            if export_dir.exists():
                raise MlopsNbError(f"{os.fspath(target)!r} has no run.json: not an export folder")
            if not _RUN_ID.fullmatch(os.fspath(target).strip().lower()):
                raise RunNotFound(f"{os.fspath(target)!r} is neither an export folder (nothing "
                                  "is there) nor a run id")
            tmp = tempfile.TemporaryDirectory(prefix="mlops-nb-reproduce-")
            store = _home_for(home, None)
            try:
                export_dir = _export_to(os.fspath(target), Path(tmp.name) / "export", store)
            except ExportRefused as exc:
                return _refused(exc, os.fspath(target), store, rtol, atol, stable, started)
        elif run is not None:
            _check_holds(export_dir, run, home)
        return _verify(export_dir, home, rtol, atol, timeout, stable, started,
                       temporary=tmp is not None)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _check_holds(export_dir: Path, run: str, home: str | os.PathLike[str] | None) -> None:
    """Refuse a folder whose export is not of `run` (an id or a unique id prefix)."""
    try:
        held = json.loads((export_dir / "run.json").read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        held = None
    want = run.strip().lower()
    store = _home_for(home, None)
    if store is not None:
        with contextlib.suppress(MlopsNbError):
            from .store.reader import StoreReader

            want = StoreReader(store).resolve(want).id
    if not isinstance(held, str) or not want or not held.startswith(want):
        what = f"the export of run {held[:12]}" if isinstance(held, str) else "no readable export"
        raise MlopsNbError(
            f"{os.fspath(export_dir)!r} holds {what}, not of run {want[:12]}: export run "
            f"{want[:12]} again (into a new folder, or overwrite this one) before verifying it")


def _export_to(run_id: str, out: Path, home: Path | None) -> Path:
    from .config import store_home
    from .exporting import write_export
    from .exporting.build import build_export
    from .exporting.paths import prepare_out_dir
    from .store.reader import StoreReader

    reader = StoreReader(store_home(home, use_tracker=False))
    folder = prepare_out_dir(out, root=out.parent, store=None, force=True, check_root=False)
    export = build_export(reader, reader.resolve(run_id), folder)
    return write_export(export, folder)


def _refused(exc: ExportRefused, target: str, home: Path | None, rtol: float, atol: float,
             stable: bool, started: float) -> Verdict:
    run_id = None
    if home is not None:
        try:
            from .store.reader import StoreReader

            run_id = StoreReader(home).resolve(target).id
        except MlopsNbError:
            run_id = None
    verdict = Verdict(run_id, None, False, rtol=rtol, atol=atol, stable=stable,
                      problems=exc.problems or [str(exc)],
                      duration_s=round(time.perf_counter() - started, 3),
                      checked_at=_now())
    _store(home, verdict)
    return verdict


def _now() -> str:
    import datetime as dt

    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _store(home: Path | None, verdict: Verdict) -> None:
    if home is None or verdict.run_id is None or not Path(home).is_dir():
        return
    from .store.verdicts import save_verdict

    with contextlib.suppress(OSError, ValueError):  # a read-only store still gets a verdict
        save_verdict(home, verdict.run_id, verdict.to_dict())


def _verify(export_dir: Path, home: str | os.PathLike[str] | None, rtol: float, atol: float,
            timeout: float, stable: bool, started: float, *, temporary: bool = False
            ) -> Verdict:
    export_dir = export_dir.resolve()
    run_json = json.loads((export_dir / "run.json").read_text(encoding="utf-8"))
    store = _home_for(home, run_json)
    run_id = run_json.get("run_id") if isinstance(run_json.get("run_id"), str) else None
    verdict = Verdict(run_id, None, False, rtol=rtol, atol=atol, stable=stable,
                      export_dir=None if temporary else str(export_dir), checked_at=_now())
    script = export_dir / "train.py"
    try:
        ast.parse(script.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError) as exc:
        verdict.problems.append(f"train.py does not parse: {exc}")
    if not run_json.get("l0", False):
        verdict.problems.append("the export was not claimed reproducible (run.json l0 false)")
    verdict.problems.extend(check_modules(export_dir, run_json.get("modules")))
    verdict.problems.extend(check_modules(export_dir, run_json.get("support"),
                                          what="support file"))
    if verdict.problems:
        return _finish(verdict, store, started)
    verdict.level = "L0"
    expected = _expected(run_json, store)
    with tempfile.TemporaryDirectory(prefix="mlops-nb-replay-") as work:
        seeds = HASH_SEEDS if stable else HASH_SEEDS[:1]
        for i, seed in enumerate(seeds):
            code, stderr, metrics, _ = _run_script(script, Path(work) / f"run{i}", seed, timeout)
            _note_data(verdict, stderr)
            if code != 0 or metrics is None:
                verdict.returncode = code
                verdict.stderr_tail = stderr[-STDERR_TAIL:]
                verdict.problems.append(
                    f"the script failed with exit code {code}" if code is not None
                    else f"the script timed out after {timeout}s")
                if i:
                    verdict.problems.append(f"(run with PYTHONHASHSEED={seed})")
                break
            verdict.returncode = 0
            if i == 0:
                verdict.level = "L1"
            equal = _compare(verdict, expected, metrics, rtol, atol, record=i == 0,
                             seed=seed)
            if not equal:
                if i == 0:
                    _hash_seed_hint(verdict, script, Path(work), timeout, metrics)
                elif i:
                    verdict.problems.append(_HASH_SEED_HINT)
                break
            verdict.level = "L2" if i == 0 else ("L3" if i == len(seeds) - 1 else "L2")
    verdict.ok = verdict.level == ("L3" if stable else "L2")
    return _finish(verdict, store, started)


_HASH_SEED_HINT = (
    "the metric depends on Python's hash seed (PYTHONHASHSEED): the notebook's kernel ran "
    "with a random one, so its exact value cannot be replayed; iterate over sorted() sets and "
    "dict keys built from them, or compare with --rtol/--atol")


def _hash_seed_hint(verdict: Verdict, script: Path, work: Path, timeout: float,
                    first: dict[str, Any]) -> None:
    """A metric that differs: run again under other hash seeds; if the value moves, say so."""
    values: dict[str, list[Any]] = {k: [v] for k, v in first.items() if k in verdict.metrics}
    for seed in HASH_SEEDS[1:]:
        code, _stderr, metrics, _ = _run_script(script, work / f"seed{seed}", seed, timeout)
        if code != 0 or metrics is None:
            return
        for name, got in metrics.items():
            values.setdefault(name, []).append(got)
    moving = sorted(n for n, vs in values.items()
                    if len({json.dumps(v, sort_keys=True, default=repr) for v in vs}) > 1)
    if moving:
        verdict.hash_seed_dependent = moving
        seeds = ", ".join(str(s) for s in HASH_SEEDS)
        for name in moving:
            verdict.problems.append(
                f"metric {name!r} takes different values under PYTHONHASHSEED={seeds}: "
                f"{values[name]!r}; " + _HASH_SEED_HINT)


def check_modules(export_dir: Path, modules: Any, *, what: str = "module") -> list[str]:
    """The notebook's own modules copied into the export must be the ones the run imported,
    and the support files beside train.py the ones export wrote."""
    from .store.blobs import blob_hash

    if not isinstance(modules, list):
        return []
    problems = []
    for m in modules:
        path = m.get("path") if isinstance(m, dict) else None
        if not isinstance(path, str) or ".." in Path(path).parts or Path(path).is_absolute():
            problems.append(f"run.json lists a module with an unusable path: {m!r}"[:300])
            continue
        try:
            digest = blob_hash((export_dir / path).read_bytes())
        except OSError:
            problems.append(f"{what} {m.get('name', path)!r}: {path} is missing from the export")
            continue
        if digest != m.get("hash"):
            source = "the run imported" if what == "module" else "export wrote"
            problems.append(f"{what} {m.get('name', path)!r}: {path} differs from the file "
                            f"{source} (hash {digest[:12]}, recorded "
                            f"{str(m.get('hash'))[:12]})")
    return problems


def _note_data(verdict: Verdict, stderr: str) -> None:
    for line in stderr.splitlines():
        if line.startswith(DATA_MISMATCH_PREFIX):
            try:
                item = json.loads(line[len(DATA_MISMATCH_PREFIX):])
            except ValueError:
                continue
            if item not in verdict.data_mismatches:
                verdict.data_mismatches.append(item)


def _compare(verdict: Verdict, expected: dict[str, Any], got: dict[str, Any], rtol: float,
             atol: float, *, record: bool, seed: int) -> bool:
    all_equal = True
    for name, recorded in expected.items():
        if name not in got:
            if record:
                verdict.metrics[name] = {"recorded": recorded, "reproduced": None,
                                         "difference": None, "equal": False}
            verdict.problems.append(f"metric {name!r} was not produced by the script")
            all_equal = False
            continue
        equal, diff = compare_metric(recorded, got[name], rtol, atol)
        if record:
            verdict.metrics[name] = {"recorded": recorded, "reproduced": got[name],
                                     "difference": diff, "equal": equal}
        elif not equal:
            verdict.problems.append(
                f"metric {name!r} differs with PYTHONHASHSEED={seed}: {got[name]!r}")
        all_equal = all_equal and equal
    return all_equal


def _finish(verdict: Verdict, store: Path | None, started: float) -> Verdict:
    verdict.duration_s = round(time.perf_counter() - started, 3)
    _store(store, verdict)
    return verdict
