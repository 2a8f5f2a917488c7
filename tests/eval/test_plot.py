"""The eval PNG draws both graders and, when the samples carry it, the extraction-rule shares."""

import pytest

from rl_reason.data_pipelines import Example
from rl_reason.eval import summarize

pytest.importorskip("matplotlib")


def _summary(with_rules: bool):
    examples = {"p1": Example("p1", "q1", "4"), "p2": Example("p2", "q2", "9")}
    records = []
    for pid, correct, strict, by in (("p1", True, True, "boxed"), ("p2", True, False, "last_number")):
        rec = {"id": pid, "sample": 0, "text": "", "extracted": "4", "correct": correct, "score": 1.0, "status": "correct",
               "correct_strict": strict, "status_strict": "correct" if strict else "no_answer"}
        if with_rules:
            rec["extracted_by"] = by
        records.append(rec)
    s = summarize(records, examples, ks=[1])
    if not with_rules:
        s["extracted_by"] = {}
    return s


def test_plot_has_a_rule_panel_when_rules_are_known(tmp_path):
    from matplotlib.image import imread

    from rl_reason.eval.plot import plot_summaries

    with_rules = imread(plot_summaries({"math": _summary(True)}, tmp_path / "a.png"))
    without = imread(plot_summaries({"math": _summary(False)}, tmp_path / "b.png"))
    assert with_rules.shape[0] > without.shape[0]  # one more panel
