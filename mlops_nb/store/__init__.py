"""The local store: one TinyDB file per session segment, blobs, and a derived run index.

The names below load on first use: `%load_ext mlops_nb` imports `store.location` and
`store.blobs`, and must not pay for the reader (or the writer, before `%track on`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .location import find_home, home_for_writing
    from .reader import StoreReader
    from .writer import SessionWriter

__all__ = ["SessionWriter", "StoreReader", "find_home", "home_for_writing"]
_HOMES = {"SessionWriter": ".writer", "StoreReader": ".reader", "find_home": ".location",
          "home_for_writing": ".location"}


def __getattr__(name: str) -> Any:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'mlops_nb.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
