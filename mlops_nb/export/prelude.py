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

    def log_metric(self, name, value):
        self.metrics[name] = value
        return value

    def log_metrics(self, metrics):
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


def _mnb_describe(value):
    """Help text for a parameter; argparse formats '%' in help, so it is escaped."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond the digit limit
        text = f"<{type(value).__name__}>"
    return ("default: " + text[:150]).replace("%", "%%")


def _mnb_parse_args(namespace):
    parser = _mnb_argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    for name, flag in _mnb_PARAMETERS.items():
        default = namespace[name]
        parser.add_argument(
            flag, dest="param_" + name, default=None, metavar="VALUE",
            type=lambda text, _default=default: _mnb_value(text, _default),
            help=_mnb_describe(default),
        )
    for key, (flag, path, _digest, _size) in _mnb_DATA_FILES.items():
        parser.add_argument(flag, dest="data_" + flag[7:].replace("-", "_"), default=path,
                            metavar="PATH",
                            help=_mnb_describe(key).replace("default:", "file read as", 1))
    parser.add_argument("--strict-data", action="store_true",
                        help="fail when a data file differs from the one the run read")
    parser.add_argument("--save-model", metavar="PATH",
                        help="pickle the fitted model to PATH")
    parser.add_argument("--output-dir", default=".", metavar="DIR",
                        help="where metrics.json and figures/ are written (default: .)")
    args = parser.parse_args()
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
    """{path as the notebook wrote it: path to read}, each checked against the run's hash."""
    import json as _json

    paths = {}
    for key, (flag, _default, digest, size) in _mnb_DATA_FILES.items():
        path = _mnb_os.path.abspath(getattr(args, "data_" + flag[7:].replace("-", "_")))
        paths[key] = path
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
    return paths


def _mnb_restore_rng(kind, digest):
    """Put the global RNG back where the notebook had it before the next cell."""
    import json as _json

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
        import pickle

        models = [namespace[n] for n in _mnb_MODELS if n in namespace]
        if not models:
            print("no fitted model was recorded for this run; nothing saved",
                  file=_mnb_sys.stderr)
            raise SystemExit(4)
        with open(args.save_model, "wb") as fh:
            pickle.dump(models[-1], fh)
    print(text)
'''
