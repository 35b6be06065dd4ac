"""run.json's text: `json.dumps(to_tagged(value), indent=1, default=repr)`, byte for byte,
with each long list of strings written in one pass.

The standard encoder writes indented JSON in pure Python, a generator step per item, and the
run.json of a long chain lists 20,000 lineage ids and as many re-run ids: its lists of plain
strings are set aside, the rest is encoded as before, and each list is written back in place
with the same indentation and the same string encoder (`encode_basestring_ascii`, which the
standard encoder uses under `ensure_ascii`).
"""

from __future__ import annotations

import json
import math
import os
import re
from json.encoder import encode_basestring_ascii
from typing import Any

from ..jsonvalues import to_tagged

LONG_LIST = 64  # shorter lists go through the standard encoder: nothing to gain


def dumps_tagged(value: Any) -> str:
    """What `json.dumps(to_tagged(value), indent=1, default=repr)` returns."""
    token = f"mnb-list-{os.urandom(8).hex()}-"
    lists: list[list[str]] = []

    def swap(v: Any) -> Any:  # to_tagged, with each long list of str set aside
        if isinstance(v, float):
            return v if math.isfinite(v) else {"float": repr(v)}
        if isinstance(v, dict):
            return {str(k): swap(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            if len(v) >= LONG_LIST and all(type(x) is str for x in v):
                lists.append(list(v))
                return f"{token}{len(lists) - 1}"
            return [swap(x) for x in v]
        return v

    swapped = swap(value)
    text = json.dumps(swapped, indent=1, default=repr)
    if not lists:
        return text
    if text.count(token) != len(lists):  # the token in the data itself: never in practice
        return json.dumps(to_tagged(value), indent=1, default=repr)

    def written(m: re.Match[str]) -> str:
        start = end = text.rfind("\n", 0, m.start()) + 1
        while text[end] == " ":
            end += 1
        level = end - start  # the list's own line: its items one deeper
        inner = "\n" + " " * (level + 1)
        items = (f",{inner}").join(map(encode_basestring_ascii, lists[int(m.group(1))]))
        return f"[{inner}{items}\n{' ' * level}]"

    return re.sub(f'"{re.escape(token)}(\\d+)"', written, text)
