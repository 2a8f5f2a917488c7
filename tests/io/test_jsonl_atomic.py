import json
import os

import pytest

from rl_reason.io import JsonlAppender, JsonlError, atomic_dir, atomic_write_json, read_jsonl, read_jsonl_records


def test_read_jsonl_reports_bad_lines_and_keeps_good_ones(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"a": 1}\nnot json\n\n[1, 2]\n{"a": 2}\n')
    rows = list(read_jsonl(p))
    assert [n for n, _ in rows] == [1, 2, 4, 5]
    assert rows[0][1] == {"a": 1} and rows[3][1] == {"a": 2}
    assert isinstance(rows[1][1], JsonlError) and f"{p}:2:" in str(rows[1][1])
    assert "expected a JSON object" in str(rows[2][1])
    with pytest.raises(JsonlError, match=":2:"):
        read_jsonl_records(p)


def test_torn_tail_is_skipped_and_cut_on_append(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"i": 0}\n{"i": 1}\n{"i": 2, "tex')  # a crash mid-write
    assert read_jsonl_records(p) == [{"i": 0}, {"i": 1}]
    with JsonlAppender(p) as w:
        w.write({"i": 2})
    assert read_jsonl_records(p) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert p.read_text().endswith('{"i": 2}\n')


def test_atomic_write_json_replaces_whole_file(tmp_path):
    p = tmp_path / "sub" / "x.json"
    atomic_write_json(p, {"v": 1})
    atomic_write_json(p, {"v": 2})
    assert json.loads(p.read_text()) == {"v": 2}
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]


def test_atomic_dir_keeps_old_checkpoint_when_save_fails(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_dir(target) as d:
        (d / "w.txt").write_text("one")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "w.txt").write_text("half")
            raise RuntimeError("crash during save")
    assert (target / "w.txt").read_text() == "one"
    with atomic_dir(target) as d:
        (d / "w.txt").write_text("two")
    assert (target / "w.txt").read_text() == "two"
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]
