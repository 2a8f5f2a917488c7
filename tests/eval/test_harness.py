"""evaluate(): sampling, grading, records, and resume equality after a kill or a torn line."""


import pytest

from rl_reason.data_pipelines import load_dataset
from rl_reason.eval import SAMPLES_FILE, evaluate, read_samples
from tests.eval.fakes import FakeEngine, FakeSampling

pytest.importorskip("rl_reason.verifiers")

EXAMPLES = load_dataset("arithmetic:heldout", limit=10)
RUN = dict(n=4, ks=[1, 2, 4], sampling_params=FakeSampling(seed=3), template="base_boxed", suite="arith", batch_size=3, progress=False)


def lines(path):
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    summary = evaluate(FakeEngine(), EXAMPLES, out_dir=out, **RUN)
    return out, summary


def test_records_and_summary(full_run):
    out, summary = full_run
    records = read_samples(out / SAMPLES_FILE)
    assert len(records) == 10 * 4
    assert {(r["id"], r["sample"]) for r in records} == {(ex.id, i) for ex in EXAMPLES for i in range(4)}
    for r in records:
        assert r["suite"] == "arith" and r["finish_reason"] in ("stop", "length") and r["tokens"] > 0
        if r["text"] == "I am not sure":
            assert (r["status"], r["extracted"], r["correct"]) == ("no_answer", None, False)
        else:
            assert r["status"] in ("correct", "wrong") and r["extracted"] is not None
            gold = next(ex.answer for ex in EXAMPLES if ex.id == r["id"])
            assert r["correct"] == (f"\\boxed{{{gold}}}" in r["text"])
    assert summary["num_problems"] == 10 and summary["num_samples"] == 40
    assert summary["status_counts"]["no_answer"] == sum(r["status"] == "no_answer" for r in records)
    assert 0 < summary["metrics"]["pass@1"]["mean"] < summary["metrics"]["pass@4"]["mean"] <= 1


def test_in_memory_run_equals_file_run(full_run):
    _, summary = full_run
    assert evaluate(FakeEngine(), EXAMPLES, **RUN) == summary


def test_resume_after_kill_gives_the_same_summary(full_run, tmp_path):
    _, summary = full_run
    with pytest.raises(KeyboardInterrupt):
        evaluate(FakeEngine(fail_after_calls=2), EXAMPLES, out_dir=tmp_path, **RUN)
    assert len(lines(tmp_path / SAMPLES_FILE)) == 2 * 3 * 4  # two chunks of 3 problems were written
    engine = FakeEngine()
    assert evaluate(engine, EXAMPLES, out_dir=tmp_path, **RUN) == summary
    assert engine.calls == 2  # only the two missing chunks were sampled
    assert sorted(lines(tmp_path / SAMPLES_FILE)) == sorted(lines(full_run[0] / SAMPLES_FILE))


def test_resume_after_torn_last_line(full_run, tmp_path):
    out, summary = full_run
    data = (out / SAMPLES_FILE).read_bytes()
    cut = [i for i, b in enumerate(data) if b == ord("\n")][13] + 20  # 14 whole lines + a torn 15th
    (tmp_path / SAMPLES_FILE).write_bytes(data[:cut])
    engine = FakeEngine()
    assert evaluate(engine, EXAMPLES, out_dir=tmp_path, **RUN) == summary
    assert engine.calls == 3  # chunk 1 (partial) and chunks 2, 3; chunk 0 (12 lines) was complete
    assert sorted(lines(tmp_path / SAMPLES_FILE)) == sorted(lines(out / SAMPLES_FILE))


def test_resume_refuses_samples_from_other_settings(full_run, tmp_path):
    (tmp_path / SAMPLES_FILE).write_text((full_run[0] / SAMPLES_FILE).read_text())
    with pytest.raises(ValueError, match="fresh --out"):
        evaluate(FakeEngine(), EXAMPLES, out_dir=tmp_path, **{**RUN, "n": 2, "ks": [1]})


def test_k_larger_than_n_is_an_error():
    with pytest.raises(ValueError, match="larger than n"):
        evaluate(FakeEngine(), EXAMPLES, **{**RUN, "ks": [8]})
