"""The local store: one TinyDB file per session segment, blobs, and a derived run index."""

from .location import find_home, home_for_writing
from .reader import StoreReader
from .writer import SessionWriter

__all__ = ["SessionWriter", "StoreReader", "find_home", "home_for_writing"]
