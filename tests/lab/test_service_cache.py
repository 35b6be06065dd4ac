"""What the server does once per store change, not once per request (server/service.py):
badges parse only the segment a flush rewrote, default pages are built and serialised once, a
later page whose request is gone stops, and the change feed's fingerprint ignores a writer's
temporary file. Plain function calls over a store recorded by a real shell; no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_nb.server import service
from mlops_nb.store.reader import StoreReader

from .conftest import record_project


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    record_project(root)
    return root


def test_badges_follow_a_new_segment_and_parse_only_it(root, monkeypatch):
    parsed: list[Path] = []
    load = StoreReader.load_segment

    def counting(self, seg):
        parsed.append(seg.path)
        return load(self, seg)

    monkeypatch.setattr(StoreReader, "load_segment", counting)
    first = service.notebook_cells(root, "nb.ipynb")["cells"]["c-fit"]["id"]
    assert parsed
    parsed.clear()
    before = set(service.load_frame(root / ".mlops_nb", None)[0]["id"])
    (new,) = set(record_project(root, alphas=(3.0,))) - before
    cells = service.notebook_cells(root, "nb.ipynb")["cells"]
    assert cells["c-fit"]["id"] == new != first  # the new session's run is the cell's last
    assert len(parsed) == 1 and parsed[0].parent.name == "nb"  # its segment alone


def test_default_pages_are_serialised_once_per_store_change(root):
    a = service.runs_json(root, None, experiment="nb", limit=1)
    assert service.runs_json(root, None, experiment="nb", limit=1) is a  # the same text
    assert service.runs_json(root, None, experiment="nb", limit=1, offset=1) != a
    sorted_ = service.runs_json(root, None, experiment="nb", sort="params.alpha")
    assert service.runs_json(root, None, experiment="nb", sort="params.alpha") is not sorted_
    record_project(root, alphas=(3.0,))
    b = service.runs_json(root, None, experiment="nb", limit=1)
    assert b != a and '"all": 3' in b


def test_a_later_page_whose_request_is_gone_stops(root):
    with pytest.raises(service.Cancelled):
        service.runs_json(root, None, experiment="nb", limit=1, offset=1,
                          cancelled=lambda: True)
    # a first page is never given up (the listing's own first paint waits on it)
    assert '"n": 1' in service.runs_json(root, None, experiment="nb", limit=1,
                                         cancelled=lambda: True)


def test_the_change_feed_ignores_a_writers_temporary_file(root):
    home = root / ".mlops_nb"
    token, stamp = service.store_token(home), service.store_stamp(home)
    folder = next((home / "sessions").iterdir())
    seg = next(folder.glob("*.json"))
    (folder / f".{seg.name}.x1y2.tmp").write_text("{}")
    assert service.store_token(home) == token  # not a change yet: the segment is not in place
    assert service.store_stamp(home) != stamp  # though the folder moved: the token is asked
