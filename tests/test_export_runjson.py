"""run.json's text is the standard encoder's, byte for byte, however its long lists of ids are
written (exporting/runjson.py)."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_nb.exporting import runjson
from mlops_nb.exporting.runjson import LONG_LIST, dumps_tagged
from mlops_nb.jsonvalues import to_tagged


def reference(value):
    return json.dumps(to_tagged(value), indent=1, default=repr)


texts = st.text(max_size=12)  # quotes, backslashes, control and non-ASCII characters too
long_lists = st.lists(texts, min_size=LONG_LIST, max_size=LONG_LIST + 40)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), texts,
                    st.floats(allow_nan=True, allow_infinity=True))
values = st.recursive(
    st.one_of(scalars, long_lists),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.tuples(inner, inner),
                            st.dictionaries(st.one_of(texts, st.integers()), inner,
                                            max_size=4)),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(values)
def test_the_text_is_the_standard_encoders(value):
    assert dumps_tagged(value) == reference(value)


def test_a_run_json_shaped_value_with_long_id_lists():
    ids = [f"{i:032x}" for i in range(500)]
    value = {"run_id": ids[-1], "slice": [{"id": ids[0], "why": ["the run"]},
                                          {"id": ids[1], "reruns": ids[2:400], "why": []}],
             "metrics": {"score": math.nan, "f1": 0.5}, "obj": object.__new__(object),
             "run": {"lineage": ids, "deps": ids[-2:]}, "flags": ("a", "b")}
    text = dumps_tagged(value)
    assert text == reference(value)
    assert json.loads(text)["run"]["lineage"] == ids


def test_data_holding_the_placeholder_falls_back_to_the_standard_encoder(monkeypatch):
    monkeypatch.setattr(runjson.os, "urandom", lambda n: bytes(n))
    clash = f"mnb-list-{'0' * 16}-0"
    value = {"a": [clash], "b": ["x"] * LONG_LIST, clash: 1}
    assert dumps_tagged(value) == reference(value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet="0123456789abcdef", min_size=6, max_size=66),
                          st.text(alphabet="0123456789abcdefABZ\n -", max_size=70)),
                min_size=2, max_size=8))
def test_a_list_of_ids_is_told_from_other_texts_as_each_text_alone_is(texts):
    """run.json's long id lists are checked for secrets in one pass: a list passes as it is
    only when every text in it is a hex id, the one shape the scrubber returns unchanged."""
    from mlops_nb.exporting.build import _HEX_ID, _all_hex_ids

    assert _all_hex_ids(texts) == all(_HEX_ID.fullmatch(t) for t in texts)


def test_a_secret_among_many_ids_is_still_redacted():
    from mlops_nb.exporting.build import _scrubbed

    ids = [f"{i:032x}" for i in range(300)]
    secret = "sk-live-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6"
    scrubbed = _scrubbed({"lineage": ids, "reruns": [*ids[:100], secret, *ids[100:]]})
    assert scrubbed["lineage"] == ids
    assert secret not in json.dumps(scrubbed) and scrubbed["reruns"][:100] == ids[:100]
