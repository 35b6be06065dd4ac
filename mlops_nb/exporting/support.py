"""The helper module every export carries beside `train.py` (copied as `_mlops_support.py`).

It holds the machinery a reader of `train.py` need not see: the command line, data-file
checks and path redirection, RNG restores, `%%capture`, figures, the metrics output and
`--save-model`. It is fixed code: everything that comes from a run (parameter flags, data
files, metric and model names) is read from `run.json` beside the script, as data, never as
code. It must run without mlops-nb installed, so it imports only the standard library (and
numpy, pandas, xxhash, skops lazily, when the run used them).

Importing it has two effects the notebook's own imports rely on, which is why `train.py`
imports it first: matplotlib gets a non-interactive backend, and the notebook's own modules
copied into `lib/` come first on `sys.path`.
"""

import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_JSON = "run.json"
RNG_FILE = "rng_states.json"
AUTOLOG_FILE = "_mlops_autolog.py"

os.environ.setdefault("MPLBACKEND", "Agg")
if os.path.isdir(os.path.join(HERE, "lib")):
    sys.path.insert(0, os.path.join(HERE, "lib"))


class MlopsNbError(Exception):
    """`mnb.MlopsNbError` in the script: what a replayed call that needs the store raises."""


class NotInIPython(MlopsNbError):
    pass


class Tracking:
    """Stands in for mlops_nb in the script: logged metrics and params land here.

    Every public name of `mlops_nb` answers here, so a cell that called it replays: tracking
    calls log into the script's own metrics and params; `log_model` notes the model (the one
    `--save-model` saves); calls that read or change the notebook's store (`promote`,
    `validate`, `retrain`, `export`, `sync_mlflow`...) are not replayed, since a replay never
    touches the store: they return None and say so once on stderr; `runs()` is empty, and
    `get_run`/`load_model`, which have nothing to return, raise `mnb.MlopsNbError`.
    """

    MlopsNbError = MlopsNbError
    NotInIPython = NotInIPython
    __version__ = "replay"

    def __init__(self):
        self.metrics = {}
        self.params = {}
        self.models = {}
        self.experiment = "default"
        self._said = set()

    def log_metric(self, name, value, step=None):
        self.metrics[name] = value
        return value

    def log_metrics(self, metrics, step=None):
        for key, value in metrics.items():
            self.log_metric(key, value)
        return metrics

    def log_param(self, name, value):
        self.params[name] = value
        return value

    def log_params(self, params):
        for key, value in params.items():
            self.log_param(key, value)
        return params

    def log_model(self, model, name):
        """Noted, not stored: `--save-model PATH` writes the last model logged."""
        self.models.pop(name, None)
        self.models[name] = model
        return model

    def flush(self, timeout=None):
        return True

    # tracking control and run labels change nothing the script computes
    def start(self, experiment=None, *args, **kwargs):
        return Started(experiment or self.experiment)

    def stop(self):
        return True

    def set_experiment(self, name):
        self.experiment = name
        return name

    def set_run_name(self, name):
        return name

    def set_tags(self, tags):
        return dict(tags)

    def load_ipython_extension(self, ip=None):
        return None

    def unload_ipython_extension(self, ip=None):
        return None

    # the store: never read or written by a replay
    def _skipped(self, fn):
        if fn not in self._said:
            self._said.add(fn)
            print(f"train.py: mnb.{fn}(...) is not replayed: a script never reads or changes "
                  "the notebook's mlops-nb store", file=sys.stderr)

    def runs(self, *args, **kwargs):
        """No runs: an empty DataFrame (a list without pandas)."""
        self._skipped("runs")
        try:
            import pandas
        except ImportError:
            return []
        return pandas.DataFrame({"id": pandas.Series([], dtype=object)})

    def get_run(self, run_id, *args, **kwargs):
        raise MlopsNbError(f"mnb.get_run({run_id!r}) reads the notebook's mlops-nb store, "
                           "which a replay never reads")

    def load_model(self, run_id, name=None, *args, **kwargs):
        raise MlopsNbError(f"mnb.load_model({run_id!r}, {name!r}) reads a model from the "
                           "notebook's mlops-nb store, which a replay never reads: the "
                           "run's result depends on the store's state; load the model from "
                           "a file (`train.py --save-model` writes one) instead")


def _not_replayed(fn):
    def call(self, *args, **kwargs):
        self._skipped(fn)

    call.__name__ = call.__qualname__ = fn
    return call


for _fn in ("promote", "demote", "validate", "retrain", "export", "reproduce", "compare",
            "sync_mlflow"):
    setattr(Tracking, _fn, _not_replayed(_fn))


class Run:
    """`mnb.Run` (a type) in the script; `mnb.get_run` raises there, so none is made."""


class Started:
    """What `mnb.start()` returned in the notebook; here nothing is tracked."""

    def __init__(self, experiment):
        self.experiment, self.session, self.home = experiment, None, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


# `mnb.Tracking` is the type `mnb.start()` returns; `mnb.Run` the type `mnb.get_run` does
Tracking.Tracking, Tracking.Run = Started, Run
tracking = Tracking()
DATA = {}  # the path as the notebook's code gave it -> the file to read here
WRITTEN = {}  # the path of a file the notebook wrote, as given -> where this script writes it
WRITTEN_DIR = "written"  # under --output-dir


class _Run:
    """What `start` learned, for the later calls of this script run."""

    def __init__(self):
        self.folder = HERE
        self.config = {}
        self.args = None
        self.figure_count = 0
        self.autolog = None
        self.auto_metrics = {}
        self.printed = {}


_run = _Run()


def _missing(what):
    sys.exit(f"train.py: {what} is missing beside it in {_run.folder}; train.py needs the "
             "whole export folder (train.py, _mlops_support.py, run.json, rng_states.json, "
             "lib/), not the script alone: copy the folder, or export again")


def _config(folder):
    path = os.path.join(folder, RUN_JSON)
    if not os.path.isfile(path):
        _missing(RUN_JSON)
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    script = doc.get("script") if isinstance(doc, dict) else None
    if not isinstance(script, dict):
        sys.exit(f"train.py: {path} is not the run.json of this export (no 'script' entry)")
    return doc, script


def _type_name(value):
    return type(value).__name__ if value is not None else "a literal"


def _value(name, flag, text, default):
    """A command-line string as the type of the parameter's recorded value."""
    import ast

    def wrong(expected):
        return argparse.ArgumentTypeError(
            f"parameter {name} expects {expected} (recorded: {_short(default)}), got {text!r}")

    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise wrong("a bool (true or false)")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise wrong("an int") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise wrong("a float") from None
    if isinstance(default, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if default is None:
            return text
        raise wrong(f"a {_type_name(default)} written as a Python literal") from None
    if default is not None and type(value) is not type(default):
        raise wrong(f"a {_type_name(default)}")
    return value


def _short(value):
    try:
        text = repr(value)
    except ValueError:  # an int beyond the digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 150 else text[:147] + "..."


def _help(value, recorded):
    """Help text for a parameter; argparse formats '%' in help, so it is escaped."""
    text = f"{_type_name(value)}, recorded {_short(recorded)}"
    if value != recorded or type(value) is not type(recorded):
        text += f", default here {_short(value)}"
    return text.replace("%", "%%")


def _script_globals(namespace):
    """The script's namespace, read from the frame that called the helper: passed as
    `globals()`, a notebook's own `def globals(): ...` replaced it (older exports pass it)."""
    return sys._getframe(2).f_globals if namespace is None else namespace


def start(namespace=None):
    """Parse the command line into the parameters, check and redirect the data files."""
    namespace = _script_globals(namespace)
    _run.folder = os.path.dirname(os.path.abspath(namespace.get("__file__") or __file__))
    doc, script = _config(_run.folder)
    _run.config = script
    _run.figure_count = 0
    _run.autolog = None
    _run.auto_metrics = {}
    _run.printed = {}
    tracking.metrics.clear()
    tracking.params.clear()
    tracking.models.clear()
    if script.get("rng") and not os.path.isfile(os.path.join(_run.folder, RNG_FILE)):
        _missing(RNG_FILE)
    secrets = list(script.get("secrets") or [])
    recorded = doc.get("parameters") if isinstance(doc.get("parameters"), dict) else {}
    epilog = None
    if secrets:
        epilog = ("required environment variables (credentials the notebook used; mlops-nb "
                  "never records them): " + ", ".join(secrets))
    parser = argparse.ArgumentParser(
        description=(namespace.get("__doc__") or "").strip().splitlines()[0]
        if namespace.get("__doc__") else None, epilog=epilog)
    flags = script.get("flags") or {}
    for name, flag in flags.items():
        default = namespace.get(name)
        parser.add_argument(
            flag, dest="param_" + name, default=None, metavar="VALUE",
            type=lambda text, _n=name, _f=flag, _d=default: _value(_n, _f, text, _d),
            help=_help(default, recorded.get(name, default)))
    for d in script.get("data_files") or []:
        parser.add_argument(d["flag"], dest="data_" + d["flag"][7:].replace("-", "_"),
                            default=None, metavar="PATH",
                            help=(("folder" if d.get("folder") else "file") + " read as "
                                  + _short(d["key"]) + " (default: " + d["default"]
                                  + ")").replace("%", "%%"))
    parser.add_argument("--strict-data", action="store_true",
                        help="fail when a data file differs from the one the run read")
    parser.add_argument("--save-model", metavar="PATH",
                        help="save the fitted model to PATH (skops for scikit-learn, else "
                             "pickle; PATH.json says which, with its sha256)")
    parser.add_argument("--output-dir", default=".", metavar="DIR",
                        help="where metrics.json, figures/ and written/ (the files the "
                             "notebook wrote, never where it wrote them) go (default: .)")
    args = parser.parse_args()
    missing = [name for name in secrets if name not in os.environ]
    if missing:
        parser.error("set the environment variable(s) " + ", ".join(missing) + ": the run "
                     "used credentials there (or values an %env line set), which mlops-nb "
                     "does not record")
    for name in flags:
        value = getattr(args, "param_" + name)
        if value is not None:
            namespace[name] = value
    args.output_dir = os.path.abspath(args.output_dir)
    _run.args = args
    DATA.clear()
    DATA.update(_data_paths(args, script.get("data_files") or []))
    _written_paths(args.output_dir, script.get("written") or [])
    if DATA or WRITTEN:
        _redirect_reads(DATA, script.get("readers") or [])
    if DATA:
        _redirect_listings()
    return args


def secret(name):
    """A credential the notebook used: mlops-nb never records it, so it comes from the
    environment (checked at start-up)."""
    value = os.environ.get(name)
    if value is None:
        sys.exit(f"train.py: set the environment variable {name}: the run used a "
                 "credential there, which mlops-nb does not record")
    return value


def display(*objects, **_kwargs):
    """The notebook's display(): printed here."""
    for obj in objects:
        print(obj)


# -- data files ---------------------------------------------------------------------------
def _file_hash(path):
    import xxhash

    digest = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _folder_hash(path):
    """A folder read as one data set: each file's name below it and its hash, in name order
    (as mlops-nb hashed it when the run read it: capture/fingerprint.py)."""
    import xxhash

    files = []
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in names:
            full = os.path.join(folder, name)
            if os.path.isfile(full):
                files.append((os.path.relpath(full, path).replace(os.sep, "/"), full))
    digest = xxhash.xxh3_128()
    for name, full in sorted(files):
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0"
                      + _file_hash(full).encode() + b"\n")
    return digest.hexdigest()


_REL_PATHS = {}
_TAILS = {}
# Each data file by every text the run could have listed it as (as given, relative to the
# working directory then, the recorded absolute path), in the run's order: a folder listing
# that finds nothing here (`glob.glob("data/*.csv")` after the notebook's `os.chdir`) falls
# back to these.
_LISTED = []


def _data_paths(args, files):
    """{path as the notebook's code gave it: path to read}, each checked against the run's
    hash. A default relative to the export folder is tried first, then the path the run read."""
    paths = {}
    _REL_PATHS.clear()
    _TAILS.clear()
    _LISTED.clear()
    for d in files:
        key, flag, default, digest = d["key"], d["flag"], d["default"], d.get("digest")
        recorded = d.get("recorded") or default
        chosen = getattr(args, "data_" + flag[7:].replace("-", "_"))
        exists = os.path.isdir if d.get("folder") else os.path.isfile
        if chosen is not None:
            path = os.path.abspath(chosen)
        else:
            path = os.path.normpath(os.path.join(_run.folder, default))
            if not exists(path) and exists(recorded):
                path = recorded
        for text in (key, *(d.get("given") or ())):
            paths.setdefault(text, path)
        for text in d.get("rel") or ():
            _REL_PATHS.setdefault(text, path)
        for tail in _tails(recorded):
            _TAILS.setdefault(tail, []).append(path)
        _LISTED.append(list(dict.fromkeys((key, *(d.get("given") or ()), *(d.get("rel") or ()),
                                           recorded))))
        problem = None
        if not exists(path):
            problem = "missing"
        elif digest is not None and (_folder_hash if d.get("folder") else _file_hash)(
                path) != digest:
            problem = "changed"
        if problem is not None:
            report = {"file": key, "path": path, "problem": problem, "recorded_hash": digest,
                      "recorded_size": d.get("size")}
            print("mlops-nb-data-mismatch: " + json.dumps(report), file=sys.stderr)
            if args.strict_data:
                print(f"data file {key!r} is {problem} ({path}); stopping (--strict-data)",
                      file=sys.stderr)
                raise SystemExit(3)
    return paths


_WRITTEN_REL = {}


def _written_paths(output_dir, files):
    """Where each file the notebook wrote is written here: under `--output-dir`, in
    `written/`, never where the notebook wrote it (the project's own `data/interim`, which
    this script must not change, or a folder that does not exist where it runs). A later
    read of the file reads this copy, once the script wrote it."""
    WRITTEN.clear()
    _WRITTEN_REL.clear()
    folder = os.path.join(output_dir, WRITTEN_DIR)
    for w in files:
        target = os.path.join(folder, *w["to"].split("/"))
        for text in (w["recorded"], *(w.get("given") or ())):
            WRITTEN.setdefault(text, target)
        for text in w.get("rel") or ():
            _WRITTEN_REL.setdefault(text, target)


def _written(obj):
    """This script's copy of a file the notebook wrote, for a path as the code gave it
    (matched as given, absolute, or relative to the working directory); else None."""
    if not WRITTEN:
        return None
    try:
        text = os.fspath(obj)
        if not isinstance(text, str):
            return None
        if text in WRITTEN:
            return WRITTEN[text]
        full = os.path.abspath(text)
        return WRITTEN.get(full) or _WRITTEN_REL.get(os.path.relpath(full))
    except (ValueError, OSError, TypeError):
        return None


def _write_target(obj):
    """The path to write for `obj`: this script's copy of a file the notebook wrote, its
    folders made; anything else as it is."""
    target = _written(obj)
    if target is None:
        return obj
    os.makedirs(os.path.dirname(target), exist_ok=True)
    return target


def _tails(path):
    """'housing/train.csv' and 'train.csv': how a path built from elsewhere (a helper module's
    own folder) still names the file, used only when that path does not exist here."""
    parts = os.path.normpath(path).split(os.sep)
    return ["/".join(parts[-2:]), parts[-1]] if len(parts) > 1 else parts[-1:]


def _redirected(obj, paths):
    """The data file for a path the notebook computed (`DATA_DIR + "x.csv"`, f-strings,
    `os.path.join`, `pathlib`), matched as given or relative to the working directory."""
    try:
        if not isinstance(obj, (str, os.PathLike)):
            return obj
        text = os.fspath(obj)
        if not isinstance(text, str):
            return obj
        written = _written(text)
        if written is not None and os.path.exists(written):
            return written  # a file this script wrote, read back
        if text in paths:
            return paths[text]
        full = os.path.abspath(text)
        rel = os.path.relpath(full)
        if rel in _REL_PATHS:
            return _REL_PATHS[rel]
        if not os.path.exists(full):
            for tail in _tails(full):
                found = set(_TAILS.get(tail, ()))
                if len(found) == 1:
                    return found.pop()
        return obj
    except (ValueError, OSError, TypeError):
        return obj


# DataFrame and Series writers, and numpy's savers, given a path first: pandas checks that
# the path's folder exists before it opens the file, so redirecting `open` alone is too late.
_PANDAS_WRITERS = ("to_csv", "to_excel", "to_feather", "to_hdf", "to_html", "to_json",
                   "to_latex", "to_markdown", "to_orc", "to_parquet", "to_pickle", "to_stata",
                   "to_string", "to_xml")
_NUMPY_WRITERS = ("save", "savez", "savez_compressed", "savetxt")
_PATH_KEYS = ("filepath_or_buffer", "io", "path", "path_or_buf", "path_or_buffer", "fname",
              "file", "filename", "excel_writer", "buf")


def _redirect_reads(paths, readers):
    """Wrap the readers the notebook used so its computed paths reach the data files, and
    its writers so the files it wrote go to this script's `written/` folder."""
    import builtins
    import functools
    import importlib
    import io
    import pathlib

    def wrap(owner, attr, mode_index=None, writer=False):
        original = getattr(owner, attr, None)
        if original is None or getattr(original, "_mnb_redirect", False):
            return

        @functools.wraps(original)
        def call(*args, **kwargs):
            mode = args[mode_index] if mode_index is not None and len(args) > mode_index \
                else kwargs.get("mode", "r")
            if writer or (isinstance(mode, str) and any(c in mode for c in "wax+")):
                where = _write_target
            else:
                def where(obj):
                    return _redirected(obj, paths)
            first = 1 if isinstance(owner, type) else 0  # a method's self comes first
            if len(args) > first:
                args = (*args[:first], where(args[first]), *args[first + 1:])
            else:
                for key in _PATH_KEYS:
                    if key in kwargs:
                        kwargs[key] = where(kwargs[key])
                        break
            return original(*args, **kwargs)

        call._mnb_redirect = True
        call.__module__ = getattr(owner, "__module__", None) if isinstance(owner, type) \
            else owner.__name__
        call.__qualname__ = f"{owner.__qualname__}.{attr}" if isinstance(owner, type) \
            else attr  # pickled by reference
        setattr(owner, attr, call)

    wrap(builtins, "open", 1)
    wrap(io, "open", 1)  # what zipfile opens an archive with
    for name, writes in (("read_text", False), ("read_bytes", False), ("write_text", True),
                         ("write_bytes", True)):
        original = getattr(pathlib.Path, name)
        if getattr(original, "_mnb_redirect", False):
            continue

        def path_method(self, *args, _original=original, _write=writes, **kwargs):
            target = _write_target(self) if _write else _redirected(self, paths)
            if target is not self:
                target = pathlib.Path(target)
            return _original(target, *args, **kwargs)

        path_method._mnb_redirect = True
        setattr(pathlib.Path, name, path_method)
    path_open = pathlib.Path.open
    if not getattr(path_open, "_mnb_redirect", False):
        def open_path(self, mode="r", *args, **kwargs):
            target = self
            if any(c in mode for c in "wax+"):
                target = _write_target(self)
            else:
                target = _redirected(self, paths)
            if target is not self:
                target = pathlib.Path(target)
            return path_open(target, mode, *args, **kwargs)

        open_path._mnb_redirect = True
        pathlib.Path.open = open_path
    for module_name in readers:
        try:
            module = importlib.import_module(module_name)
        except Exception:
            continue
        if module_name == "sqlite3":
            _redirect_sqlite(module, paths)
            continue
        if module_name == "pandas":
            names = [n for n in dir(module) if n.startswith("read_")]
        else:
            names = ["load", "loadtxt", "genfromtxt", "fromfile"]
        for name in names:
            if callable(getattr(module, name, None)):
                wrap(module, name)
    if WRITTEN:
        # pandas or numpy may write them from code the script only runs (`%run prep.py`,
        # a helper module), so they are wrapped whenever they are installed
        for module_name, owners, names in (("pandas", ("DataFrame", "Series"), _PANDAS_WRITERS),
                                           ("numpy", (None,), _NUMPY_WRITERS)):
            try:
                module = importlib.import_module(module_name)
            except Exception:
                continue
            for owner in owners:
                target = module if owner is None else getattr(module, owner, None)
                for name in names:
                    if callable(getattr(target, name, None)):
                        wrap(target, name, writer=True)


def _redirect_sqlite(sqlite3, paths):
    """`sqlite3.connect(DB)`: a database the run read is opened where the data file is, and
    read-only, so the replay can neither find an empty database made in its place nor change
    the run's data (a script that writes to it stops with SQLite's "readonly database")."""
    import functools
    import urllib.parse

    for owner in (sqlite3, sqlite3.dbapi2):
        original = owner.connect
        if getattr(original, "_mnb_redirect", False):
            continue

        @functools.wraps(original)
        def connect(database, *args, _original=original, **kwargs):
            given = database
            if kwargs.get("uri") and isinstance(database, str) and database.startswith("file:"):
                given = urllib.parse.unquote(urllib.parse.urlsplit(database).path)
            target = _redirected(given, paths)
            if target is not given:
                kwargs["uri"] = True
                database = "file:" + urllib.parse.quote(os.path.abspath(target)) + "?mode=ro"
            return _original(database, *args, **kwargs)

        connect._mnb_redirect = True
        connect.__module__, connect.__qualname__ = owner.__name__, "connect"
        owner.connect = connect


def _listed_files(pattern):
    """The data files a glob pattern matched in the run, each as the text that matches it (the
    text a read of it is then redirected from), in the run's order; none when no file of the
    run matches."""
    import fnmatch

    texts = _folder_text(pattern)
    if texts is None:
        return []
    wanted = list(dict.fromkeys(texts))

    def matches(name, pattern):  # as glob does: `*` within one folder, `**` across them
        if "**" in pattern:
            return fnmatch.fnmatchcase(name, pattern)
        parts, wanted_parts = name.split(os.sep), pattern.split(os.sep)
        return len(parts) == len(wanted_parts) and all(
            fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted_parts, strict=True))

    found = []
    for names in _LISTED:
        for name in names:
            if any(matches(os.path.normpath(name), w) for w in wanted):
                found.append(name)
                break
    return found


def _folder_text(folder):
    """(the folder as given, normalised; absolute) or None for what is no path text."""
    try:
        text = os.fspath(folder)
    except TypeError:
        return None
    if not isinstance(text, str):
        return None
    text = os.path.normpath(text)
    return text, os.path.abspath(text)


def _listed_in(folder):
    """The names of the run's data files that lie in `folder`, named as the run named it."""
    texts = _folder_text(folder)
    if texts is None:
        return []
    text, full = texts
    found = []
    for names in _LISTED:
        for name in names:
            parent = os.path.dirname(os.path.normpath(name)) or "."
            if parent in (text, full):
                found.append(os.path.basename(name))
                break
    return list(dict.fromkeys(found))


def _walked(top):
    """What `os.walk(top)` gives over the run's data files under `top`, top-down, as the
    notebook named them."""
    texts = _folder_text(top)
    if texts is None:
        return []
    text, full = texts
    files = {}  # folder -> its files, each folder as `top` + the rest of the file's name
    for names in _LISTED:
        for name in names:
            n = os.path.normpath(name)
            base = full if os.path.isabs(n) else text
            if n.startswith(base.rstrip(os.sep) + os.sep):
                rest = os.path.dirname(n)[len(base):].strip(os.sep)
                folder = os.path.join(text, rest) if rest else text
                files.setdefault(folder, set()).add(os.path.basename(n))
                break
    if not files:
        return []
    folders = {text}
    for folder in files:
        while folder not in folders:
            folders.add(folder)
            folder = os.path.dirname(folder)
    return [(d, sorted(os.path.basename(c) for c in folders if c != d and os.path.dirname(c) == d),
             sorted(files.get(d, ()))) for d in sorted(folders)]


def _redirect_listings():
    """Folder listings that find nothing here fall back to the run's data files.

    A notebook that lists its data (`glob.glob(cfg["parts"])`, `os.listdir(DATA_DIR)`,
    `os.walk(DATA_DIR)`, `Path("data").glob("*.csv")`) from a working directory this script
    does not run in (the notebook's folder, after its `os.chdir`) would list nothing, and
    read nothing. A listing that finds files is left as it is: only an empty or missing
    folder is answered from what the run read, as it named them, so the reads that follow
    are redirected like any other.
    """
    import functools
    import glob
    import pathlib

    def listing(original, fallback):
        if getattr(original, "_mnb_redirect", False):
            return original

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            lazy = False
            try:
                result = original(*args, **kwargs)
                lazy = not isinstance(result, list)  # an iterator (`iglob`, `Path.glob`)
                if lazy:
                    result = list(result)
            except FileNotFoundError:
                result = fallback(*args, **kwargs) if args else []
                if not result:
                    raise
            else:
                if not result and args:
                    result = fallback(*args, **kwargs)
            return iter(result) if lazy else result

        wrapper._mnb_redirect = True
        return wrapper

    def globbed(pattern, *args, **kwargs):  # a pattern under `root_dir=` is its own matter
        return [] if args or kwargs.get("root_dir") is not None else _listed_files(pattern)

    walk = os.walk
    if not getattr(walk, "_mnb_redirect", False):
        @functools.wraps(walk)
        def walked(top, *args, **kwargs):  # a folder that is here is walked as ever (lazily,
            if os.path.isdir(top):  # so a caller may still prune `dirs` as it goes)
                return walk(top, *args, **kwargs)
            return iter(_walked(top))

        walked._mnb_redirect = True
        os.walk = walked
    glob.glob = listing(glob.glob, globbed)
    glob.iglob = listing(glob.iglob, globbed)
    os.listdir = listing(os.listdir, lambda path=".": _listed_in(path))

    def path_glob(self, pattern, *a, **k):
        return [pathlib.Path(p) for p in _listed_files(os.path.join(self, pattern))]

    def path_rglob(self, pattern, *a, **k):
        return [pathlib.Path(p) for p in _listed_files(os.path.join(self, "*" + pattern))]

    def path_iterdir(self, *a, **k):
        return [pathlib.Path(self, name) for name in _listed_in(self)]

    for name, fallback in (("glob", path_glob), ("rglob", path_rglob),
                           ("iterdir", path_iterdir)):
        setattr(pathlib.Path, name, listing(getattr(pathlib.Path, name), fallback))


# -- %run ------------------------------------------------------------------------------------
def shell(cmd):
    """`!cmd`, as IPython runs it: through the shell, its output to this script's, a failing
    command no error (IPython's `!` does not raise either)."""
    import subprocess

    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.run(cmd, shell=True, check=False).returncode


class SList(list):
    """The lines `files = !ls` gave in the notebook (IPython's SList): a list, and its text
    joined by spaces (`.s`), by newlines (`.n`), as paths (`.p`)."""

    @property
    def l(self):  # noqa: E743 - IPython's name for it
        return list(self)

    @property
    def s(self):
        return " ".join(self)

    @property
    def n(self):
        return "\n".join(self)

    @property
    def p(self):
        import pathlib

        return [pathlib.Path(line) for line in self]

    def grep(self, pattern, prune=False):
        import re

        found = [line for line in self if re.search(pattern, line)]
        return SList([line for line in self if line not in found] if prune else found)


def getoutput(cmd):
    """`out = !cmd`: the command's output lines (stderr's with them), as IPython gives them."""
    import subprocess

    proc = subprocess.run(cmd, shell=True, check=False, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    return SList(proc.stdout.splitlines())


def run_script(script, argv, namespace=None, interactive=False):
    """`%run script.py args` as IPython runs it: as `__main__` with `sys.argv` set, in a fresh
    namespace whose globals are then copied into the script's (`-i`: in its namespace, so it
    reads the notebook's names). IPython puts the script's folder first on `sys.path`; here
    it comes after `lib/`, which holds the modules exactly as the run imported them. The
    script is a file the run read: its path is redirected and its hash checked like the
    data's."""
    namespace = _script_globals(namespace)
    target = _redirected(script, DATA)
    saved_argv = sys.argv[:]
    sys.argv = [script, *argv]
    folder = os.path.dirname(os.path.abspath(target))
    added = folder not in sys.path
    if added:
        sys.path.append(folder)  # for its imports of what `lib/` does not hold
    try:
        with open(target, "rb") as fh:
            code = compile(fh.read(), target, "exec")
        if interactive:
            saved_name = namespace.get("__name__")
            namespace["__name__"] = "__main__"
            try:
                exec(code, namespace)
            finally:
                namespace["__name__"] = saved_name
            return
        fresh = {"__name__": "__main__", "__file__": target, "__builtins__": __builtins__}
        exec(code, fresh)
    finally:
        sys.argv = saved_argv
        if added and sys.path and sys.path[-1] == folder:
            sys.path.pop()
    namespace.update({k: v for k, v in fresh.items()
                      if not (k.startswith("__") and k.endswith("__"))})


# -- %%capture ----------------------------------------------------------------------------
class Captured:
    """What `%%capture out` leaves in `out`: the text the cell printed."""

    def __init__(self):
        import io

        self._stdout = io.StringIO()
        self._stderr = io.StringIO()
        self.outputs = []

    @property
    def stdout(self):
        return self._stdout.getvalue()

    @property
    def stderr(self):
        return self._stderr.getvalue()

    def show(self):
        sys.stdout.write(self.stdout)
        sys.stderr.write(self.stderr)

    __call__ = show

    def __str__(self):
        return self.stdout


class capture:  # reads as the magic it replaces: `with _mnb.capture() as out:`
    """`%%capture [--no-stdout] [--no-stderr] out` as a with-block."""

    def __init__(self, stdout=True, stderr=True):
        self.captured = Captured()
        self.flags = (stdout, stderr)
        self.saved = None

    def __enter__(self):
        self.saved = (sys.stdout, sys.stderr)
        if self.flags[0]:
            sys.stdout = self.captured._stdout
        if self.flags[1]:
            sys.stderr = self.captured._stderr
        return self.captured

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self.saved
        return False


# -- one iteration of a loop over models -------------------------------------------------
def loop_item(items, shape, values, models):
    """The one item of a loop over models that this run was, as a one-item list.

    `shape` is the loop's target (`("name", "model")` for `for name, model in ...`), `values`
    the run's plain loop values (command-line options), `models` the class and literal
    hyper-parameters each model variable had. The first item that matches them all is the run.
    """
    seen = []
    for item in items:
        bound = {}
        _bind(shape, item, bound)
        if (all(bound.get(k) == v for k, v in values.items())
                and all(_same_model(bound.get(k), m) for k, m in models.items())):
            return [item]
        seen.append({k: _short(type(v).__name__ if k in models else v)
                     for k, v in bound.items()})
    raise SystemExit(f"train.py: no item of the loop matches {values or models}; "
                     f"the loop has {seen}")


def _bind(shape, item, out):
    if isinstance(shape, str):
        out[shape] = item
        return
    parts = list(item)
    if len(parts) != len(shape):
        return
    for sub, part in zip(shape, parts, strict=True):
        _bind(sub, part, out)


def _same_model(obj, recorded):
    cls = type(obj)
    if f"{cls.__module__}.{cls.__qualname__}" != recorded.get("class"):
        return False
    recorded_params = recorded.get("params") or {}
    if not recorded_params:  # a model without `get_params` (the notebook's own baseline)
        return True
    try:
        params = obj.get_params(deep=True)
    except Exception:
        return False
    for k, v in recorded_params.items():
        plain = (isinstance(v, (bool, int, float, str)) or v is None) and v == v  # NaN: skip
        if plain and k in params and params[k] != v:
            return False
    return True


# -- RNG ----------------------------------------------------------------------------------
def restore_rng(kind, digest, obj=None):
    """Put an RNG back where the notebook had it before the code that draws from it: a
    global one ('random', 'numpy', 'torch'), or the generator object `obj` (a numpy
    Generator or RandomState, a random.Random) the notebook bound to the name `kind`.

    MLOPS_NB_FRESH_RNG=N (`mlops-nb reproduce --seeds`) draws fresh states instead, seeded
    with N, to measure how much the metrics move with the random draw."""
    fresh = os.environ.get("MLOPS_NB_FRESH_RNG")
    if fresh is not None:
        _fresh_rng(kind, int(fresh) * 7919 + 1, obj)
        return
    path = os.path.join(_run.folder, RNG_FILE)
    if not os.path.isfile(path):
        _missing(RNG_FILE)
    with open(path, encoding="utf-8") as fh:
        state = json.load(fh)[digest]
    if obj is not None:
        _restore_object(obj, state["type"], state["state"])
    elif kind == "random":
        import random

        version, internal, gauss = state
        random.setstate((version, tuple(internal), gauss))
    elif kind == "numpy":
        import numpy

        name, keys, pos, has_gauss, cached = state
        numpy.random.set_state((name, numpy.asarray(keys, dtype=numpy.uint32), pos,
                                has_gauss, cached))
    elif kind == "torch":
        import base64

        import torch

        raw = bytearray(base64.b64decode(state))
        torch.random.set_rng_state(torch.frombuffer(raw, dtype=torch.uint8))


def _restore_object(obj, kind, state):
    if kind == "numpy.Generator":
        obj.bit_generator.state = state
    elif kind == "numpy.RandomState":
        obj.set_state(state)
    else:
        version, internal, gauss = state
        obj.setstate((version, tuple(internal), gauss))


def _fresh_rng(kind, seed, obj):
    if obj is not None:
        if hasattr(obj, "bit_generator"):  # a numpy Generator: a new stream of its kind
            obj.bit_generator.state = type(obj.bit_generator)(seed).state
        else:
            obj.seed(seed % (2**32))
        return
    import random

    random.seed(seed)
    if kind == "numpy":
        import numpy

        numpy.random.seed(seed % (2**32))
    elif kind == "torch":
        import torch

        torch.manual_seed(seed)


# -- figures, autolog, metrics, model -----------------------------------------------------
def save_figures():
    """What pyplot's show and the notebook's inline display did: here, PNG files."""
    if "matplotlib.pyplot" not in sys.modules:
        return
    import matplotlib.pyplot as plt

    out = _run.args.output_dir if _run.args is not None else os.path.abspath(".")
    folder = os.path.join(out, "figures")
    for number in plt.get_fignums():
        os.makedirs(folder, exist_ok=True)
        _run.figure_count += 1
        plt.figure(number).savefig(os.path.join(folder, f"figure-{_run.figure_count}.png"))
    plt.close("all")


def autolog_begin(namespace=None):
    """scikit-learn autolog, as in the notebook: the metrics the run's cell computed, named
    as the kernel named them (the cell ends where `finish` is called)."""
    namespace = _script_globals(namespace)
    if _run.autolog is None:
        import importlib.util

        path = os.path.join(_run.folder, AUTOLOG_FILE)
        if not os.path.isfile(path):
            _missing(AUTOLOG_FILE)
        spec = importlib.util.spec_from_file_location("_mlops_autolog", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _run.autolog = module.ScriptAutolog()
        _run.autolog.start(namespace, _lib_modules())
    _run.autolog.begin_cell(namespace)


def _lib_modules():
    """The notebook's own modules this script imported, from `lib/` (never a library's): a
    helper's `from sklearn.metrics import accuracy_score` ran before autolog started here,
    while the kernel had it patched (or swapped it in at `%track on`): its names get the
    wrappers too."""
    lib = os.path.join(HERE, "lib") + os.sep
    found = []
    for module in list(sys.modules.values()):
        try:
            file = vars(module).get("__file__")
        except TypeError:  # not a module
            continue
        if isinstance(file, str) and os.path.abspath(file).startswith(lib):
            found.append(module)
    return found


def printed(name, value):
    """A value the notebook printed under a metric label: the run's metric `name`; returned
    as it is, so the script prints what the notebook printed. Printed again (each epoch),
    the last one, as recorded."""
    _run.printed[name] = value
    return value


def autolog_end():
    if _run.autolog is not None:
        _run.autolog.end_cell(_run.auto_metrics, set())


def _plain(value):
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    return value


def _tagged(value):
    """A non-finite float as `{"float": "nan"}`: strict JSON (jq refuses a NaN token) that
    mlops-nb reads back as the same float (`jsonvalues.from_tagged`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, (list, tuple)):
        return [_tagged(v) for v in value]
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    return value


def finish(namespace=None):
    """Write the run's metrics to metrics.json and stdout; save the model if asked."""
    namespace = _script_globals(namespace)
    autolog_end()
    save_figures()
    args = _run.args
    metrics = {}
    for name in _run.config.get("metrics") or []:
        if name in tracking.metrics:
            metrics[name] = _plain(tracking.metrics[name])
        elif name in _run.auto_metrics:
            metrics[name] = _plain(_run.auto_metrics[name])
        elif name in _run.printed:
            metrics[name] = _plain(_run.printed[name])
        elif name in namespace:
            metrics[name] = _plain(namespace[name])
    os.makedirs(args.output_dir, exist_ok=True)
    text = json.dumps(_tagged(metrics), default=repr)
    with open(os.path.join(args.output_dir, "metrics.json"), "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    if args.save_model:
        # the model the run logged (`mnb.log_model`) is the one it versioned; else its fits
        models = list(tracking.models.values()) or [
            namespace[n] for n in _run.config.get("models") or [] if n in namespace]
        if not models:
            judged = _run.config.get("cross_validated") or []
            if judged:
                print("this run cross-validated " + ", ".join(judged) + ", and cross-validation "
                      "fits copies it does not keep: no fitted model to save", file=sys.stderr)
            else:
                print("no fitted model was recorded for this run; nothing saved",
                      file=sys.stderr)
            raise SystemExit(4)
        save_model(models[-1], args.save_model)
    print(text)


def save_model(model, path):
    """The format mlops-nb stores model versions in: skops, else pickle with its sha256."""
    import hashlib
    import pickle

    fmt, payload = "pickle", None
    if type(model).__module__.split(".")[0] == "sklearn":
        try:
            import skops.io

            fmt, payload = "skops", skops.io.dumps(model)
        except Exception:
            fmt, payload = "pickle", None
    if payload is None:
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    with open(path, "wb") as fh:
        fh.write(payload)
    meta = {"format": fmt, "sha256": hashlib.sha256(payload).hexdigest(),
            "class": f"{type(model).__module__}.{type(model).__qualname__}"}
    with open(path + ".json", "w", encoding="utf-8") as fh:
        fh.write(json.dumps(meta))
