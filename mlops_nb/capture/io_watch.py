"""Which files a cell really read and wrote, however their paths were built.

Static analysis sees `pd.read_csv("data.csv")`, not `pd.read_csv(DATA_DIR + "train.csv")`,
`open(f"{root}/x.txt")`, `np.load(path)` or `Path(d) / "y.json"`. While tracking, the common
reading functions are wrapped (as MLflow's autolog patches `fit`) so each call notes the path
it was given and what it resolved to at that moment; export turns those into `--data-*`
options and the replay redirects the same computed paths to them.

The wrappers only note a string in a dict and call the original: any failure while noting is
swallowed, so a read behaves exactly as it would untracked. `stop()` puts every original back
(the same objects, so `builtins.open is io.open` again).
"""

from __future__ import annotations

import builtins
import functools
import io
import os
import pathlib
import site
import sys
import sysconfig
import threading
from typing import Any

from ..own_threads import is_own
from .fingerprint import fingerprint_file, fingerprint_folder

# Files noted per cell at most: a loop over 100,000 images must not make a 100,000-entry record.
MAX_FILES_PER_CELL = 500
# Bytes hashed per cell at most, on the kernel's thread, after the cell: a cell that read 20 GB
# of images must not take as long again to finish. Files past it are recorded without a hash.
MAX_HASH_BYTES_PER_CELL = 2 << 30
_PATH_KWARGS = ("filepath_or_buffer", "io", "path", "path_or_buf", "path_or_buffer", "fname",
                "file", "filename", "f", "database")
# (module, attribute) of library readers, wrapped when the library is imported.
_LIBRARY_READERS: dict[str, tuple[str, ...]] = {
    "numpy": ("load", "loadtxt", "genfromtxt", "fromfile"),
    "joblib": ("load",),
    # A SQLite database is a data file opened by C code, not through `open`; `dbapi2` is the
    # module SQLAlchemy's and other drivers' `connect` is reached through.
    "sqlite3": ("connect",),
    "sqlite3.dbapi2": ("connect",),
}
_WATCHED_IMPORTS = frozenset({"pandas", *_LIBRARY_READERS})
# DataFrame writers that hand a path to C code (pyarrow), never to `open`: noted as writes,
# so a file the lineage writes then reads back is its own, not a data input.
_FRAME_WRITERS = ("to_parquet", "to_feather", "to_orc")
_SKIP_PARTS = frozenset({".mlops_nb", ".ipython", ".jupyter", ".cache", ".config",
                         ".matplotlib", "__pycache__"})
# System folders: time zones, locales, certificates that libraries read while importing.
_SKIP_ROOTS = ("/proc/", "/sys/", "/dev/", "/run/", "/usr/", "/etc/", "/lib/", "/lib64/",
               "/bin/", "/sbin/", "/snap/", "/var/lib/", "/var/cache/", "/System/",
               "/Library/", "C:\\Windows\\")


@functools.lru_cache(maxsize=1)
def library_prefixes() -> tuple[str, ...]:
    """Folders of the interpreter, the standard library and installed packages."""
    found: set[str] = set()
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        if p:
            found.add(p)
    paths = sysconfig.get_paths()
    found.update(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)
    try:
        found.update(site.getsitepackages())
        found.add(site.getusersitepackages())
    except AttributeError:  # virtualenvs with an old site.py
        pass
    return tuple(sorted(os.path.abspath(p).rstrip(os.sep) + os.sep for p in found if p))


def is_library_path(path: str) -> bool:
    """Inside the interpreter, the stdlib, site-packages or a tool's own config folder."""
    if path.startswith(library_prefixes()) or path.startswith(_SKIP_ROOTS):
        return True
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts or bool(
        _SKIP_PARTS.intersection(parts))


def _path_text(obj: Any) -> str | None:
    """The path a reader was given, as text; None for buffers, descriptors and URLs."""
    if isinstance(obj, (str, os.PathLike)):
        text = os.fspath(obj)
    elif isinstance(obj, bytes):
        text = os.fsdecode(obj)
    else:
        return None
    if not isinstance(text, str) or not text or "://" in text or "\x00" in text:
        return None
    return text


def sqlite_uri_path(uri: Any) -> str | None:
    """The file of a SQLite URI (`file:data/x.db?mode=ro`); None for an in-memory one."""
    if not isinstance(uri, str) or not uri.startswith("file:"):
        return None
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if "mode=memory" in parts.query or parts.netloc not in ("", "localhost"):
        return None
    return unquote(parts.path) or None


def _first_path(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    for key in _PATH_KWARGS:
        if key in kwargs:
            return kwargs[key]
    return None


class IoWatcher:
    """Wraps the readers while installed; collects the current cell's reads and writes."""

    def __init__(self) -> None:
        self._patched: list[tuple[Any, str, Any, bool]] = []  # owner, attr, original, own
        self._libraries: set[str] = set()
        self._modules_seen = -1  # len(sys.modules) at the last refresh
        self._reads: dict[str, dict[str, str]] | None = None
        self._writes: dict[str, str] | None = None
        self._overflow = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._hashes: dict[tuple[str, int, int], dict[str, Any]] = {}
        self._stores: tuple[str, ...] = ()  # `ignore_under`
        self._finder: Any = None  # wraps a library's readers the moment it is imported

    def ignore_under(self, folder: pathlib.Path | str) -> None:
        """Leave out what is opened inside `folder`: the store's own files, wherever
        MLOPS_NB_HOME puts it (a `.mlops_nb/` folder is always left out). A cell that lists
        runs (`mnb.runs()`) read the store, not data: every cell changes those files, so a
        run depending on them could never be reproduced."""
        roots = {os.path.abspath(folder), os.path.realpath(folder)}
        self._stores = tuple(sorted({*self._stores, *(r.rstrip(os.sep) + os.sep for r in roots)}))

    @property
    def installed(self) -> bool:
        return bool(self._patched)

    # -- install / restore ----------------------------------------------------------------------
    def start(self) -> None:
        """Wrap `open`, `Path.open` and the readers of libraries already imported; idempotent."""
        if not self._patched:
            self._wrap(builtins, "open", self._open_mode)
            # `zipfile.ZipFile(path)` and others open through `io.open`, the same function
            # under another name, which wrapping `builtins.open` leaves as it was
            self._wrap(io, "open", self._open_mode, "open")
            # IPython's user namespace has its own `open`, which calls this module global.
            shell_module = sys.modules.get("IPython.core.interactiveshell")
            if shell_module is not None and callable(getattr(shell_module, "io_open", None)):
                self._wrap(shell_module, "io_open", self._open_mode, "open")
            self._wrap(pathlib.Path, "open", self._path_open_mode)
            for name in ("read_text", "read_bytes"):
                self._wrap(pathlib.Path, name, self._path_method)
        self.refresh()
        if self._finder is None and not self._libraries.issuperset(_WATCHED_IMPORTS):
            # `import pandas as pd` then `pd.read_parquet(path)` in one cell: the readers are
            # wrapped as the import ends, not at the next cell. (`read_csv` went through
            # `open` anyway; pyarrow's readers and sqlite3 open files in C, and went unseen.)
            from .autolog import ImportWatcher

            self._finder = ImportWatcher(_WATCHED_IMPORTS, self._imported)
            sys.meta_path.insert(0, self._finder)

    def _imported(self, name: str, module: Any) -> None:
        self._modules_seen = -1
        try:
            self.refresh()
        except Exception:  # the user's import goes on whatever happens here
            self.failures += 1

    def refresh(self) -> None:
        """Wrap readers of libraries imported since the last call. Called before every cell:
        when no module was imported since (and none was caught half imported), that is one
        length compared."""
        if not self._patched:
            return
        modules = len(sys.modules)
        if modules == self._modules_seen:
            return
        self._modules_seen = modules
        pandas = sys.modules.get("pandas")
        if "pandas" not in self._libraries and pandas is not None:
            if not hasattr(pandas, "read_csv"):
                self._modules_seen = -1  # still importing: look again next time
            else:
                self._libraries.add("pandas")
                for name in sorted(vars(pandas)):
                    if name.startswith("read_") and callable(getattr(pandas, name, None)):
                        self._wrap(pandas, name, self._reader, f"pandas.{name}")
                frame = getattr(pandas, "DataFrame", None)
                for name in _FRAME_WRITERS:
                    if isinstance(frame, type) and callable(getattr(frame, name, None)):
                        self._wrap(frame, name, self._frame_writer, f"DataFrame.{name}")
        for lib, names in _LIBRARY_READERS.items():
            module = sys.modules.get(lib)
            if lib in self._libraries or module is None:
                continue
            if not all(hasattr(module, n) for n in names[:1]):
                self._modules_seen = -1  # still importing: look again next time
                continue
            self._libraries.add(lib)
            for name in names:
                if callable(getattr(module, name, None)):
                    self._wrap(module, name, self._reader, f"{lib}.{name}")

    def stop(self) -> None:
        """Put every original back, in reverse order; the watcher can start again later."""
        for owner, attr, original, own in reversed(self._patched):
            current = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(
                owner, attr, None)
            if getattr(current, "__mnb_io_watcher__", None) is not self:
                continue  # someone wrapped ours since: leave theirs (ours stays inert)
            if own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)
        self._patched.clear()
        self._libraries.clear()
        self._modules_seen = -1
        while self._finder is not None and self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        self._finder = None
        self._reads = self._writes = None

    def _wrap(self, owner: Any, attr: str, kind: Any, label: str | None = None) -> None:
        own = attr in vars(owner) if isinstance(owner, type) else True
        original = vars(owner)[attr] if isinstance(owner, type) and own else getattr(owner, attr)
        if getattr(original, "__mnb_io_watcher__", None) is self:
            return
        note = kind
        name = label or f"{getattr(owner, '__name__', owner)}.{attr}"
        watcher = self

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if watcher._reads is not None:
                try:
                    note(name, args, kwargs)
                except Exception:  # noting a read must never change the read
                    watcher.failures += 1
            return original(*args, **kwargs)

        wrapper.__mnb_io_watcher__ = self  # type: ignore[attr-defined]
        # Pickled by reference to where it is installed (`pool.map(pd.read_csv, paths)` must
        # keep working): another process unpickles its own, unwrapped function.
        if isinstance(owner, type):
            wrapper.__module__, wrapper.__qualname__ = owner.__module__, \
                f"{owner.__qualname__}.{attr}"
        else:
            wrapper.__module__, wrapper.__qualname__ = owner.__name__, attr
        setattr(owner, attr, wrapper)
        self._patched.append((owner, attr, original, own))

    # -- noting -----------------------------------------------------------------------------------
    def _open_mode(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        self._note(_first_path(args, kwargs), mode, "open")

    def _path_open_mode(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        self._note(args[0] if args else None, mode, "Path.open")

    def _path_method(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._note(args[0] if args else None, "r", name)

    def _reader(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        path = _first_path(args, kwargs)
        if name.endswith(".connect") and kwargs.get("uri"):
            path = sqlite_uri_path(path)
        # a library reader given a folder reads it as one data set (`pd.read_parquet` of a
        # partitioned dataset): its files are opened in C, never through `open`
        self._note(path, "r", name, folders=not name.endswith(".connect"))

    def _frame_writer(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._note(_first_path(args[1:], kwargs), "w", name)  # args[0]: the frame

    def _note(self, obj: Any, mode: Any, via: str, *, folders: bool = False) -> None:
        if is_own():  # the session writer, a widget's verification: not the cell's reads
            return
        text = _path_text(obj)
        if text is None or not isinstance(mode, str):
            return
        full = os.path.abspath(text)
        if is_library_path(full) or full.startswith(self._stores):
            return
        writing = any(c in mode for c in "wax+")
        with self._lock:
            reads, writes = self._reads, self._writes
            if reads is None or writes is None:
                return
            if len(reads) + len(writes) >= MAX_FILES_PER_CELL:
                self._overflow += 1
                return
            if writing:
                writes.setdefault(full, text)
                return
            if full in reads or full in writes:
                return  # read back what this cell wrote: not an input of the run
        folder = not os.path.isfile(full)
        if folder and not (folders and os.path.isdir(full)):
            return
        cwd = os.getcwd()
        item = {"given": text, "path": full, "rel": os.path.relpath(full, cwd), "via": via}
        if folder:
            item["folder"] = True
        with self._lock:
            if self._reads is not None:
                self._reads.setdefault(full, item)

    # -- per cell ---------------------------------------------------------------------------------
    def begin_cell(self) -> None:
        self.refresh()
        with self._lock:
            self._reads, self._writes, self._overflow = {}, {}, 0

    def end_cell(self) -> tuple[list[dict[str, Any]], list[str], int]:
        """(reads with their hashes, written paths, files left out over the cap)."""
        with self._lock:
            reads, writes, overflow = self._reads or {}, self._writes or {}, self._overflow
            self._reads = self._writes = None
        out: list[dict[str, Any]] = []
        budget = MAX_HASH_BYTES_PER_CELL
        for full, item in reads.items():
            if item.get("folder"):
                # every file in it is hashed, within the cell's caps (else named, unhashed)
                fp = fingerprint_folder(full, max_files=MAX_FILES_PER_CELL,
                                        max_bytes=max(budget, 0))
                if fp is None:
                    continue
                budget -= fp["size"]
                out.append({**item, "hash": fp["hash"], "size": fp["size"],
                            "files": fp["files"]})
                continue
            try:
                size = os.stat(full).st_size
            except OSError:
                continue
            fp = self._fingerprint(full) if size <= budget else None
            budget -= size
            # Over the budget the file is still named (export maps it), without a hash.
            out.append({**item, "hash": fp["hash"] if fp else None, "size": size})
        return out, sorted(writes), overflow

    def _fingerprint(self, path: str) -> dict[str, Any] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (path, st.st_mtime_ns, st.st_size)
        cached = self._hashes.get(key)
        if cached is None:
            cached = fingerprint_file(path)
            if cached is None:
                return None
            if len(self._hashes) > 4096:
                self._hashes.clear()
            self._hashes[key] = cached
        return cached
