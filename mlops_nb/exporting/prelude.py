"""The fixed helper code every exported script carries (no recorded value ever enters it).

Kept as source text because it is ours and constant; everything that comes from a run (names,
values, paths, hashes) is added by codegen as AST constants. Every name starts with `_mnb_` so
it cannot collide with a notebook's names (export rejects notebooks that use that prefix).
"""

PRELUDE = r'''
class _mnb_Tracking:
    """Stands in for mlops_nb in the script: logged metrics and params land here."""

    def __init__(self):
        self.metrics = {}
        self.params = {}
        self.experiment = "default"

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

    def flush(self, timeout=None):
        return True

    # tracking control and run labels change nothing the script computes
    def start(self, experiment=None, *args, **kwargs):
        return _mnb_Started(experiment or self.experiment)

    def stop(self):
        return True

    def set_experiment(self, name):
        self.experiment = name
        return name

    def set_run_name(self, name):
        return name

    def set_tags(self, tags):
        return dict(tags)


class _mnb_Started:
    """What `mnb.start()` returned in the notebook; here nothing is tracked."""

    def __init__(self, experiment):
        self.experiment, self.session, self.home = experiment, None, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


_mnb_tracking = _mnb_Tracking()
_mnb_HERE = _mnb_os.path.dirname(_mnb_os.path.abspath(__file__))


def _mnb_value(text, default):
    """A command-line string as the type of the parameter's recorded value."""
    import ast as _ast

    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise _mnb_argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, str):
        return text
    try:
        return _ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if default is None:
            return text
        raise _mnb_argparse.ArgumentTypeError(f"expected a Python literal, got {text!r}")


def _mnb_secret(name):
    """A credential the notebook used: mlops-nb never records it, so it comes from the
    environment (checked at start-up by _mnb_parse_args)."""
    value = _mnb_os.environ.get(name)
    if value is None:
        _mnb_sys.exit(f"train.py: set the environment variable {name}: the run used a "
                      "credential there, which mlops-nb does not record")
    return value


def _mnb_describe(value):
    """Help text for a parameter; argparse formats '%' in help, so it is escaped."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond the digit limit
        text = f"<{type(value).__name__}>"
    return ("default: " + text[:150]).replace("%", "%%")


def _mnb_parse_args(namespace):
    epilog = None
    if _mnb_SECRETS:
        epilog = ("required environment variables (credentials the notebook used; mlops-nb "
                  "never records them): " + ", ".join(_mnb_SECRETS))
    parser = _mnb_argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None,
                                          epilog=epilog)
    for name, flag in _mnb_PARAMETERS.items():
        default = namespace[name]
        parser.add_argument(
            flag, dest="param_" + name, default=None, metavar="VALUE",
            type=lambda text, _default=default: _mnb_value(text, _default),
            help=_mnb_describe(default),
        )
    for key, (flag, path, _digest, _size, _recorded, _given, _rel) in _mnb_DATA_FILES.items():
        parser.add_argument(flag, dest="data_" + flag[7:].replace("-", "_"), default=None,
                            metavar="PATH",
                            help=_mnb_describe(key).replace("default:", "file read as", 1)
                            + " (default: " + path.replace("%", "%%") + ")")
    parser.add_argument("--strict-data", action="store_true",
                        help="fail when a data file differs from the one the run read")
    parser.add_argument("--save-model", metavar="PATH",
                        help="save the fitted model to PATH (skops for scikit-learn, else "
                             "pickle; PATH.json says which, with its sha256)")
    parser.add_argument("--output-dir", default=".", metavar="DIR",
                        help="where metrics.json and figures/ are written (default: .)")
    args = parser.parse_args()
    missing = [name for name in _mnb_SECRETS if name not in _mnb_os.environ]
    if missing:
        parser.error("set the environment variable(s) " + ", ".join(missing) + ": the run "
                     "used credentials there, which mlops-nb does not record")
    for name in _mnb_PARAMETERS:
        value = getattr(args, "param_" + name)
        if value is not None:
            namespace[name] = value
    args.output_dir = _mnb_os.path.abspath(args.output_dir)
    return args


def _mnb_file_hash(path):
    import xxhash

    digest = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _mnb_data_paths(args):
    """{path as the notebook's code gave it: path to read}, each checked against the run's hash.

    A default relative to this folder is tried first, then the path the run read."""
    import json as _json

    paths = {}
    for key, (flag, default, digest, size, recorded, given, rel) in _mnb_DATA_FILES.items():
        chosen = getattr(args, "data_" + flag[7:].replace("-", "_"))
        if chosen is not None:
            path = _mnb_os.path.abspath(chosen)
        else:
            path = _mnb_os.path.normpath(_mnb_os.path.join(_mnb_HERE, default))
            if not _mnb_os.path.isfile(path) and _mnb_os.path.isfile(recorded):
                path = recorded
        for text in (key, *given):
            paths.setdefault(text, path)
        for text in rel:
            _mnb_REL_PATHS.setdefault(text, path)
        for tail in _mnb_tails(recorded):
            _mnb_TAILS.setdefault(tail, []).append(path)
        problem = None
        if not _mnb_os.path.isfile(path):
            problem = "missing"
        elif digest is not None and _mnb_file_hash(path) != digest:
            problem = "changed"
        if problem is not None:
            report = {"file": key, "path": path, "problem": problem, "recorded_hash": digest,
                      "recorded_size": size}
            print("mlops-nb-data-mismatch: " + _json.dumps(report), file=_mnb_sys.stderr)
            if args.strict_data:
                print(f"data file {key!r} is {problem} ({path}); stopping (--strict-data)",
                      file=_mnb_sys.stderr)
                raise SystemExit(3)
    if paths:
        _mnb_redirect_reads(paths)
    return paths


_mnb_REL_PATHS = {}
_mnb_TAILS = {}


def _mnb_tails(path):
    """'housing/train.csv' and 'train.csv': how a path built from elsewhere (a helper module's
    own folder) still names the file, used only when that path does not exist here."""
    parts = _mnb_os.path.normpath(path).split(_mnb_os.sep)
    return ["/".join(parts[-2:]), parts[-1]] if len(parts) > 1 else parts[-1:]


def _mnb_redirected(obj, paths):
    """The data file for a path the notebook computed (`DATA_DIR + "x.csv"`, f-strings,
    `os.path.join`, `pathlib`), matched as given or relative to the working directory."""
    try:
        if not isinstance(obj, (str, _mnb_os.PathLike)):
            return obj
        text = _mnb_os.fspath(obj)
        if not isinstance(text, str):
            return obj
        if text in paths:
            return paths[text]
        full = _mnb_os.path.abspath(text)
        rel = _mnb_os.path.relpath(full)
        if rel in _mnb_REL_PATHS:
            return _mnb_REL_PATHS[rel]
        if not _mnb_os.path.exists(full):
            for tail in _mnb_tails(full):
                found = set(_mnb_TAILS.get(tail, ()))
                if len(found) == 1:
                    return found.pop()
        return obj
    except (ValueError, OSError, TypeError):
        return obj


def _mnb_redirect_reads(paths):
    """Wrap the readers the notebook used so its computed paths reach the data files."""
    import builtins
    import functools
    import importlib
    import pathlib

    def wrap(owner, attr, mode_index=None):
        original = getattr(owner, attr, None)
        if original is None or getattr(original, "_mnb_redirect", False):
            return

        @functools.wraps(original)
        def reader(*args, **kwargs):
            mode = args[mode_index] if mode_index is not None and len(args) > mode_index \
                else kwargs.get("mode", "r")
            if isinstance(mode, str) and any(c in mode for c in "wax+"):
                return original(*args, **kwargs)
            if args:
                args = (_mnb_redirected(args[0], paths),) + tuple(args[1:])
            else:
                for key in ("filepath_or_buffer", "io", "path", "path_or_buf", "fname", "file",
                            "filename"):
                    if key in kwargs:
                        kwargs[key] = _mnb_redirected(kwargs[key], paths)
                        break
            return original(*args, **kwargs)

        reader._mnb_redirect = True
        reader.__module__, reader.__qualname__ = owner.__name__, attr  # pickled by reference
        setattr(owner, attr, reader)

    wrap(builtins, "open", 1)
    for name in ("read_text", "read_bytes"):
        original = getattr(pathlib.Path, name)

        def path_reader(self, *args, _original=original, **kwargs):
            target = _mnb_redirected(self, paths)
            if target is not self:
                target = pathlib.Path(target)
            return _original(target, *args, **kwargs)

        setattr(pathlib.Path, name, path_reader)
    path_open = pathlib.Path.open

    def open_path(self, mode="r", *args, **kwargs):
        target = self
        if not any(c in mode for c in "wax+"):
            redirected = _mnb_redirected(self, paths)
            if redirected is not self:
                target = pathlib.Path(redirected)
        return path_open(target, mode, *args, **kwargs)

    pathlib.Path.open = open_path
    for module_name in _mnb_READERS:
        try:
            module = importlib.import_module(module_name)
        except Exception:
            continue
        if module_name == "pandas":
            names = [n for n in dir(module) if n.startswith("read_")]
        else:
            names = ["load", "loadtxt", "genfromtxt", "fromfile"]
        for name in names:
            if callable(getattr(module, name, None)):
                wrap(module, name)


class _mnb_Captured:
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
        _mnb_sys.stdout.write(self.stdout)
        _mnb_sys.stderr.write(self.stderr)

    __call__ = show

    def __str__(self):
        return self.stdout


class _mnb_capture:
    """`%%capture [--no-stdout] [--no-stderr] out` as a with-block."""

    def __init__(self, stdout=True, stderr=True):
        self.captured = _mnb_Captured()
        self.flags = (stdout, stderr)
        self.saved = None

    def __enter__(self):
        self.saved = (_mnb_sys.stdout, _mnb_sys.stderr)
        if self.flags[0]:
            _mnb_sys.stdout = self.captured._stdout
        if self.flags[1]:
            _mnb_sys.stderr = self.captured._stderr
        return self.captured

    def __exit__(self, *exc):
        _mnb_sys.stdout, _mnb_sys.stderr = self.saved
        return False


def _mnb_save_model(model, path):
    """The format mlops-nb stores model versions in: skops, else pickle with its sha256."""
    import hashlib
    import json as _json
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
        fh.write(_json.dumps(meta))


def _mnb_restore_rng(kind, digest):
    """Put the global RNG back where the notebook had it before the next cell.

    MLOPS_NB_FRESH_RNG=N (`mlops-nb reproduce --seeds`) draws fresh states instead, seeded
    with N, to measure how much the metrics move with the random draw."""
    import json as _json

    fresh = _mnb_os.environ.get("MLOPS_NB_FRESH_RNG")
    if fresh is not None:
        import random

        random.seed(int(fresh) * 7919 + 1)
        if kind == "numpy":
            import numpy

            numpy.random.seed((int(fresh) * 7919 + 1) % (2**32))
        return

    with open(_mnb_os.path.join(_mnb_HERE, _mnb_RNG_FILE), encoding="utf-8") as fh:
        state = _json.load(fh)[digest]
    if kind == "random":
        import random

        version, internal, gauss = state
        random.setstate((version, tuple(internal), gauss))
    elif kind == "numpy":
        import numpy

        name, keys, pos, has_gauss, cached = state
        numpy.random.set_state((name, numpy.asarray(keys, dtype=numpy.uint32), pos,
                                has_gauss, cached))


_mnb_figure_count = [0]


def _mnb_save_figures():
    """What pyplot's show and the notebook's inline display did: here, PNG files."""
    import sys as _sys

    if "matplotlib.pyplot" not in _sys.modules:
        return
    import matplotlib.pyplot as _plt

    folder = _mnb_os.path.join(_mnb_ARGS.output_dir, "figures")
    for number in _plt.get_fignums():
        _mnb_os.makedirs(folder, exist_ok=True)
        _mnb_figure_count[0] += 1
        _plt.figure(number).savefig(_mnb_os.path.join(folder, f"figure-{_mnb_figure_count[0]}.png"))
    _plt.close("all")


def display(*objects, **_kwargs):
    """The notebook's display(): printed here."""
    for obj in objects:
        print(obj)


def _mnb_plain(value):
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    return value


_mnb_autolog = [None]
_mnb_auto_metrics = {}


def _mnb_autolog_begin(namespace):
    """scikit-learn autolog, as in the notebook: the metrics its cells computed, same names."""
    if _mnb_AUTOLOG_SOURCE is None:
        return
    if _mnb_autolog[0] is None:
        import types as _types

        module = _types.ModuleType("_mnb_autolog")
        module.__file__ = "<mlops-nb autolog>"
        exec(compile(_mnb_AUTOLOG_SOURCE, module.__file__, "exec"), module.__dict__)
        _mnb_autolog[0] = module.ScriptAutolog()
        _mnb_autolog[0].start(namespace)
    _mnb_autolog[0].begin_cell(namespace)


def _mnb_autolog_end():
    if _mnb_autolog[0] is not None:
        _mnb_autolog[0].end_cell(_mnb_auto_metrics, set())


def _mnb_finish(namespace, args):
    import json as _json

    metrics = {}
    for name in _mnb_METRICS:
        if name in _mnb_tracking.metrics:
            metrics[name] = _mnb_plain(_mnb_tracking.metrics[name])
        elif name in _mnb_auto_metrics:
            metrics[name] = _mnb_plain(_mnb_auto_metrics[name])
        elif name in namespace:
            metrics[name] = _mnb_plain(namespace[name])
    _mnb_os.makedirs(args.output_dir, exist_ok=True)
    text = _json.dumps(metrics, default=repr)
    with open(_mnb_os.path.join(args.output_dir, "metrics.json"), "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    if args.save_model:
        models = [namespace[n] for n in _mnb_MODELS if n in namespace]
        if not models:
            print("no fitted model was recorded for this run; nothing saved",
                  file=_mnb_sys.stderr)
            raise SystemExit(4)
        _mnb_save_model(models[-1], args.save_model)
    print(text)
'''
