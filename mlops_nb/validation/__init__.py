"""Is new data like the data a run was trained on? Profiles, schema checks and drift.

`validate(run_id, new_data, name=...)` loads the profile recorded with the run's data (a blob
referenced from the run's data entry), checks the new data's schema against it and measures
drift per column. `profile.py` and `drift.py` are pure; this module does the I/O.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import MlopsNbError

DRIFT_ROWS = 200_000  # drift is measured on an evenly spaced sample of this many new rows
MIN_ROWS = 30  # fewer new rows: a warning that drift cannot be judged


class BadData(MlopsNbError):
    """The new data cannot be read or compared (exit 2): the message says what to fix."""


def data_entries(run: Any) -> dict[str, dict[str, Any]]:
    data = run.effective_data if run.effective_data is not None else run.data
    return {k: v for k, v in (data or {}).items() if isinstance(v, dict)}


def pick_entry(run: Any, name: str | None) -> tuple[str, dict[str, Any]]:
    """The run's data entry to compare with: by name, or the only file / profiled object."""
    entries = data_entries(run)
    profiled = {k: v for k, v in entries.items() if isinstance(v.get("profile"), str)}
    listing = ", ".join(repr(k) for k in profiled) or "none"
    if name is not None:
        for key in (name, f"file:{name}"):
            if key in entries:
                if key not in profiled:
                    raise BadData(f"the run's data {key!r} has no profile (it was recorded "
                                  f"before profiles existed, or is not tabular); profiled: "
                                  f"{listing}")
                return key, profiled[key]
        by_base = [k for k in profiled if k.startswith("file:")
                   and Path(k[5:]).name == Path(name).name]
        if len(by_base) == 1:
            return by_base[0], profiled[by_base[0]]
        raise BadData(f"run {run.id[:12]} did not use data named {name!r}; its profiled data: "
                      f"{listing}")
    files = [k for k in entries if k.startswith("file:")]
    if len(files) == 1 and files[0] in profiled:
        return files[0], profiled[files[0]]
    if len(profiled) == 1:
        key = next(iter(profiled))
        return key, profiled[key]
    if not profiled:
        raise BadData(f"run {run.id[:12]} has no data profile to compare with (its data was "
                      "not tabular, or it was recorded before profiles existed)")
    raise BadData(f"run {run.id[:12]} used several data: give --name (name=...), one of "
                  f"{listing}")


def load_profile(reader: Any, entry: dict[str, Any]) -> dict[str, Any]:
    import json

    text = reader.blobs.get_text(entry["profile"])
    if text is None:
        raise BadData(f"the profile blob {entry['profile'][:12]} is missing from the store")
    return json.loads(text)


def read_table(path: str | os.PathLike[str], expected_columns: int | None = None) -> Any:
    """A data file as a DataFrame, with a clear error for what commonly goes wrong."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise BadData(f"{os.fspath(path)!r} is not a file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(p)
        elif suffix in (".json", ".jsonl"):
            df = pd.read_json(p, lines=suffix == ".jsonl")
        else:
            sep = "\t" if suffix in (".tsv", ".tab") else ","
            df = pd.read_csv(p, sep=sep, low_memory=False)
            df = _header_as_written(p, sep, df)
    except pd.errors.EmptyDataError as exc:
        raise BadData(f"{p} is empty: no columns to read") from exc
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise BadData(f"cannot read {p}: {exc}") from exc
    if df.shape[1] == 0 or len(df) == 0:
        raise BadData(f"{p} has no rows")
    if expected_columns and expected_columns > 1 and df.shape[1] == 1:
        head = str(df.columns[0])
        sep = next((s for s in (";", "\t", "|", " ") if s in head), None)
        hint = f" it looks delimited by {sep!r}" if sep else ""
        raise BadData(f"{p} parsed into one column ({head[:60]!r}) but the run's data had "
                      f"{expected_columns}:{hint}; write it comma-separated")
    return df


def _header_as_written(path: Path, sep: str, df: Any) -> Any:
    """`df` with the file's own column names when its header repeats one: pandas renames the
    second `age` to `age.1`, which would be reported as a new column; as written, it is the
    column that appears twice, as for a frame in memory."""
    import re

    import pandas as pd

    if not any(re.search(r"\.\d+$", str(c)) for c in df.columns):
        return df
    header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str).iloc[0].tolist()
    if len(header) == df.shape[1] and len(set(header)) < len(header):
        df.columns = header
    return df


def _as_frame(data: Any, expected_columns: int | None) -> tuple[Any, str | None]:
    import pandas as pd

    if isinstance(data, (str, os.PathLike)):
        return read_table(data, expected_columns), os.fspath(data)
    if isinstance(data, pd.DataFrame):
        if len(data) == 0:
            raise BadData("the new DataFrame has no rows")
        return data, None
    from .profile import _as_frame as frame_of

    try:
        return frame_of(data)[1], None
    except Exception as exc:
        raise BadData(f"cannot compare a {type(data).__name__}: give a DataFrame, Series, "
                      "array or a data file path") from exc


def recorded_timezone(dtype: Any) -> str | None:
    """The zone of a recorded tz-aware dtype (`datetime64[us, Europe/Paris]`), else None."""
    text = str(dtype or "")
    if not text.startswith("datetime64[") or ", " not in text:
        return None
    return text[text.index(", ") + 2:].rstrip("]") or None


def _dates_as_recorded(ref: dict[str, Any], df: Any) -> Any:
    """`df` with text columns parsed as dates where the run's data had dates and every value
    parses: a CSV has no date type, and the run read its file with `parse_dates=`."""
    import pandas as pd

    from .profile import column_kind

    parsed: dict[Any, Any] = {}
    columns = {str(c): c for c in df.columns}
    for name, col in (ref.get("columns") or {}).items():
        c = columns.get(name)
        if (c is None or col.get("kind") != "datetime" or isinstance(df[c], pd.DataFrame)
                or column_kind(df[c].dtype) != "categorical"):  # (a DataFrame: repeated name)
            continue
        tz = recorded_timezone(col.get("dtype"))
        try:  # a zone's text has two offsets a year (DST): read in UTC, shown in its zone
            values = pd.to_datetime(df[c], errors="coerce", utc=tz is not None)
            if tz is not None:
                values = values.dt.tz_convert(tz)
        except (TypeError, ValueError, OverflowError, LookupError):
            continue
        if int(values.notna().sum()) == int(df[c].notna().sum()):
            parsed[c] = values
    return df.assign(**{str(c): v for c, v in parsed.items()}) if parsed else df


def compare_frame(run_id: str, key: str, ref: dict[str, Any], df: Any,
                  thresholds: Any) -> Any:
    """The report for a new frame against a reference profile (no store access)."""
    import numpy as np

    from .drift import categorical_drift, numeric_drift
    from .profile import column_kind, sample_positions
    from .report import ValidationReport
    from .schema import Finding, check_schema

    df = _dates_as_recorded(ref, df)
    findings = check_schema(ref, df)
    if len(df) < MIN_ROWS:  # a test of so few values finds nothing: "clean" would mislead
        findings.append(Finding(None, "rows", "warning",
                                f"only {len(df)} row(s): too few to judge drift (the tests "
                                f"need {MIN_ROWS} or more)", failures=len(df)))
    broken = {f.column for f in findings if f.severity == "error"}
    new_cols = {str(c): c for c in df.columns}
    drift = []
    positions = sample_positions(len(df), DRIFT_ROWS)
    for name, col in (ref.get("columns") or {}).items():
        if name in broken or name not in new_cols:
            continue
        ser = df[new_cols[name]]
        kind = column_kind(ser.dtype)
        if col.get("discrete") and kind == "numeric":  # a few integers: by value, NaN null
            values = ser.to_numpy(dtype=np.float64, na_value=np.nan)
            drift.append(categorical_drift(name, col, values if positions is None
                                           else values[positions], thresholds))
        elif col.get("kind") == "numeric" and kind in ("numeric", "bool"):
            values = ser.to_numpy(dtype=np.float64, na_value=np.nan)
            if positions is not None:
                values = values[positions]
            drift.append(numeric_drift(name, col, values, thresholds))
        elif col.get("kind") in ("categorical", "bool"):
            values = ser.to_numpy()
            if positions is not None:
                values = values[positions]
            drift.append(categorical_drift(name, col, values, thresholds))
    return ValidationReport(run_id, key, len(df), int(ref.get("rows") or 0), thresholds,
                            findings, drift, sampled=bool(ref.get("sampled")))


def validate(run_id: str, data: Any, *, name: str | None = None,
             home: str | os.PathLike[str] | None = None, alpha: float | None = None,
             psi: float | None = None) -> Any:
    """Check `data` against the profile of a run's data: schema and drift per column.

    Args:
        run_id: a run id, unique prefix, "promoted" (the promoted model's run) or
            "promoted:NAME" (the run of model NAME's promoted version).
        data: a DataFrame, an array or a file path.
        name: which of the run's data (a variable name or file path) when it used several.
        home: the store folder.
        alpha: the p-value below which a test is significant (default 0.01).
        psi: the PSI from which a shift is material (default 0.1).

    Returns:
        A ValidationReport: `.ok`, `.findings`, `.drift`, `.drifted`; it displays as a
        table with a small reference-vs-new plot per column.

    Raises:
        BadData: unreadable data, an unknown name, bad thresholds.
        RunNotFound: no such run.

    >>> report = mnb.validate("3fa9", new_df, name="df")   # doctest: +SKIP
    """
    from ..config import store_reader as _reader
    from .drift import Thresholds

    th = Thresholds()
    for label, value in (("alpha", alpha), ("psi", psi)):
        if value is None:
            continue
        if not isinstance(value, (int, float)) or not (0 < float(value) < (1 if label ==
                                                                            "alpha" else 100)):
            raise BadData(f"{label} must be a number in (0, 1)" if label == "alpha"
                          else "psi must be a positive number")
        setattr(th, label, float(value))
    reader = _reader(home)
    run = resolve_run(reader, run_id)
    wanted = name if not isinstance(data, (str, os.PathLike)) or name else None
    try:
        key, entry = pick_entry(run, wanted)
        ref = load_profile(reader, entry)
    except BadData as exc:
        found = file_reference(reader, run, wanted, exc)
        if found is None:
            raise
        key, ref = found
    df, path = _as_frame(data, len(ref.get("columns") or {}))
    return compare_frame(run.id, path or key, ref, df, th)


def files_read(reader: Any, run: Any) -> list[dict[str, Any]]:
    """The data files the run and the cell runs it depended on read (recorded at run time,
    with their hashes), first read first."""
    ids, _ = reader.lineage(run)
    wanted = {*ids, run.id}
    out: dict[str, dict[str, Any]] = {}
    for cr in reader.session_log(run.session, light=True):
        if cr.id in wanted:
            for read in cr.reads or ():
                if isinstance(read, dict) and isinstance(read.get("path"), str):
                    out.setdefault(read["path"], read)
    return list(out.values())


def file_reference(reader: Any, run: Any, name: str | None, why: BadData
                   ) -> tuple[str, dict[str, Any]] | None:
    """The profile of a data file the run read, made now from the file itself: the raw
    input (`--name input/sales.csv`) when the run profiled only the frames it built from it.
    The file must still hold what the run read (same hash), or it is no reference. None
    when `name` names no such file; with no name, the files join the choices offered."""
    reads = files_read(reader, run)
    if name is None:
        if reads and "give --name" in str(why):
            given = ", ".join(repr(r.get("given") or r["path"]) for r in reads)
            raise BadData(f"{why}, or a file it read: {given}") from why
        return None
    base = Path(name).name
    hits = [r for r in reads if name in (r.get("given"), r.get("rel"), r.get("path"))]
    if not hits:
        hits = [r for r in reads if Path(r["path"]).name == base]
    if len(hits) != 1:
        return None
    read = hits[0]
    path, given = read["path"], read.get("given") or read["path"]
    from ..capture.fingerprint import fingerprint_file
    from .profile import profile

    now = fingerprint_file(path)
    if now is None:
        raise BadData(f"the run read {given!r} from {path}, which is no longer there: it "
                      "cannot be the reference")
    if read.get("hash") and now["hash"] != read["hash"]:
        raise BadData(f"{path} changed since the run read it (hash {read['hash'][:12]}, now "
                      f"{now['hash'][:12]}): it is no longer the run's data")
    return f"file:{given}", profile(read_table(path))


def resolve_run(reader: Any, run_id: str, model: str | None = None) -> Any:
    """A run by id or prefix; `promoted` is the run of the promoted model, `promoted:NAME`
    (or `promoted` with `model=NAME`) the run of model NAME's promoted version."""
    from ..models import promoted_ref, promoted_run_version

    if promoted_ref(run_id)[0]:
        run_id = promoted_run_version(reader.home, run_id, model)["run_id"]
    elif model is not None:
        raise MlopsNbError(f"--model {model!r} picks a promoted model: give `promoted` (or "
                           f"`promoted:{model}`) as the run, not {run_id!r}")
    return reader.resolve(run_id)
