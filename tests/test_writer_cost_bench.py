"""The writer-cost benchmark runs end to end on a few records and reports what it measured."""

from __future__ import annotations

import json

from benchmarks.writer_cost import main


def test_reports_cpu_per_record_against_json_dumps_of_the_same_records(tmp_path, capsys):
    out = tmp_path / "w.json"
    got = main(["--records", "20", "--out", str(out)])
    assert json.loads(out.read_text()) == got
    assert got["records"] == 20
    assert got["writer_cpu_per_record_s"] > 0 and got["json_dumps_per_record_s"] > 0
    assert got["ratio"] == got["writer_cpu_per_record_s"] / got["json_dumps_per_record_s"]
    assert "20 records flushed every 10" in capsys.readouterr().out
