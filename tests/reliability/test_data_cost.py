"""Cost bounded whatever the data (issue 8, items 1-3 and 17), in a real tracked shell.

Timings live in benchmarks/data_cost.py; these tests assert the behaviour that keeps the cost
bounded: read-only cells do not re-hash, changed data always gets a new hash, re-runs do not
chain, records do not grow with the session, and a large literal is stored once.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlops_nb as mnb
from mlops_nb.exporting import export_run
from mlops_nb.lineage import lineage_ids
from mlops_nb.records import is_value_ref
from mlops_nb.store.reader import StoreReader


def log_of(sh) -> list:
    sh.flush()
    return StoreReader(sh.tracker.home).session_log(sh.tracker.session)


def record_bytes(cr) -> int:
    return len(json.dumps(cr.to_dict(), default=str))


def test_read_only_cells_reuse_the_fingerprint_and_changes_rehash(tracked):
    tracked.run("import numpy as np, pandas as pd\n"
                "n = 20_000\n"
                "df = pd.DataFrame({'a': np.arange(n), 's': [f'u{i % 97}' for i in range(n)],"
                " 'o': pd.Series([f'v{i}' for i in range(n)], dtype=object)})")
    cache = tracked.tracker.fingerprints
    misses = cache.misses
    for code in ("df.head()", "len(df)", "df.shape", "top = df['s'].value_counts().index[0]",
                 "m = df['a'].mean()", "print(df.describe())"):
        tracked.run(code)
    assert cache.misses == misses  # nothing read-only was hashed again
    hashes = [cr.data["df"]["hash"] for cr in log_of(tracked) if "df" in cr.data]
    assert len(set(hashes)) == 1 and len(hashes) == 7

    def df_hash() -> str:
        return log_of(tracked)[-1].data["df"]["hash"]

    seen = set(hashes)
    for change in ("df.loc[0, 's'] = 'changed'",  # item assignment
                   "df.loc[1, 'o'] = 2",  # a str replaced by an int in an object column
                   "df.sort_values('a', ascending=False, inplace=True)",  # inplace=True
                   "def edit():\n    df.loc[2, 'a'] = -1\nedit()",  # through a function
                   "df['a'] = df['a'] * 2"):  # a replaced column
        tracked.run(change)
        tracked.run("df.head()")
        assert df_hash() not in seen, change
        seen.add(df_hash())


def test_changes_through_views_and_in_place_functions_rehash(tracked):
    tracked.run("import numpy as np\narr = np.arange(1000.0)")
    tracked.run("total = arr.sum()")
    before = log_of(tracked)[-1].data["arr"]["hash"]
    tracked.run("v = arr[:10]")
    tracked.run("v[0] = 99.0")  # writes into arr's memory under another name
    tracked.run("total = arr.sum()")
    after_view = log_of(tracked)[-1].data["arr"]["hash"]
    assert after_view != before
    tracked.run("rng = np.random.default_rng(0)")
    tracked.run("rng.shuffle(arr)")
    tracked.run("total = arr.sum()")
    log = log_of(tracked)
    assert log[-1].data["arr"]["hash"] != after_view
    shuffle = log[-2]
    assert "arr" in shuffle.mutations and shuffle.id in log[-1].deps


def test_rerunning_a_scoring_cell_neither_chains_nor_grows(tracked):
    tracked.run("from sklearn.datasets import make_classification\n"
                "from sklearn.linear_model import LogisticRegression\n"
                "X, y = make_classification(n_samples=200, random_state=0)")
    tracked.run("clf = LogisticRegression(max_iter=200).fit(X, y)")
    for _ in range(6):
        tracked.run("acc = clf.score(X, y)")
    log = log_of(tracked)
    runs = [cr for cr in log if cr.is_run]
    assert len(runs) == 6
    assert all(r.mutations == [] for r in runs)  # score() does not change clf
    assert all(r.deps == runs[0].deps for r in runs)
    assert all(lineage_ids(log, r) == [log[0].id, log[1].id] for r in runs)
    assert {record_bytes(r) for r in runs[1:]} == {record_bytes(runs[1])} or \
        max(map(record_bytes, runs)) - min(map(record_bytes, runs)) < 64
    out = export_run(runs[-1].id, Path.cwd() / "exp")
    assert (out / "train.py").read_text().count("clf.score(X, y)") == 1


def test_a_long_chain_keeps_records_flat_and_shows_its_lineage(tracked):
    tracked.run("x = 0")
    for _ in range(120):
        tracked.run("x += 1\nloss = x")
    log = log_of(tracked)
    runs = [cr for cr in log if cr.is_run]
    assert runs[-1].lineage is None and len(runs[-1].deps) == 1
    # a record's size does not grow with the length of its lineage
    assert record_bytes(runs[-1]) - record_bytes(runs[5]) < 64
    assert len(lineage_ids(log, runs[-1])) == 120
    view = mnb.get_run(runs[-1].id)
    assert len(view["lineage"]) == 120 and view["deps"] == [runs[-2].id]


def test_a_large_literal_is_stored_once(tracked):
    tracked.run("prompt = " + repr("You are a careful assistant. " * 3500))  # ~100 KB
    for i in range(30):
        tracked.run(f"score = len(prompt) + {i}")
    log = log_of(tracked)
    runs = [cr for cr in log if cr.is_run]
    assert len(runs) == 30
    assert all(is_value_ref(r.effective_params["prompt"]) for r in runs)
    assert all(record_bytes(r) < 4000 for r in runs)
    store_bytes = sum(p.stat().st_size for p in tracked.tracker.home.rglob("*") if p.is_file())
    assert store_bytes < 600_000  # 30 copies would be 3 MB
    view = mnb.get_run(runs[-1].id)
    assert view["params"]["prompt"] == "You are a careful assistant. " * 3500
    frame = mnb.runs()
    shown = frame["params.prompt"].iloc[-1]
    assert shown.startswith("You are a careful assistant.") and len(shown) <= 60
