"""Step-DPO pairs: step splitting, the first-wrong-step search, and pair building with a scripted sampler."""

import pytest

from rl_reason.data_pipelines.steps import build_step_pairs, first_wrong_step, split_steps


@pytest.mark.parametrize(
    "text, steps",
    [
        ("3*4 = 12\n2 + 12 = 14\n\nanswer \\boxed{14}", ["3*4 = 12\n", "2 + 12 = 14\n\n", "answer \\boxed{14}"]),
        ("  lead\nnext\n", ["  lead\n", "next\n"]),
        # One line: sentences, after . ! ? ; and whitespace; a decimal point does not split.
        (
            "First 3.5 * 2 = 7. Then 7 + 1 = 8! So \\boxed{8}",
            ["First 3.5 * 2 = 7. ", "Then 7 + 1 = 8! ", "So \\boxed{8}"],
        ),
        ("one line, one step\n", ["one line, one step\n"]),
        ("  \n", []),
    ],
)
def test_split_steps_rule_and_lossless_join(text, steps):
    assert split_steps(text) == steps
    assert "".join(steps) == (text if steps else "")


def test_first_wrong_step_is_where_the_success_rate_falls_to_the_fail_rate():
    calls = []

    def rates(values):
        def rate_of(i):
            calls.append(i)
            return values[i]

        return rate_of

    # Prefix rates 0.75 (bare problem), 0.5 (after step 0), 0.0 (after step 1): step 1 is wrong;
    # the scan stops there, never probing the prefix after step 2.
    assert first_wrong_step(rates([0.75, 0.5, 0.0, 0.25]), 4) == 1 and calls == [0, 1, 2]
    calls.clear()
    # A drop to 0.25 is not a failure at fail_rate 0, it is at fail_rate 0.25.
    assert first_wrong_step(rates([1.0, 0.25, 0.5]), 3) == 2
    assert first_wrong_step(rates([1.0, 0.25, 0.5]), 3, fail_rate=0.25) == 0
    # No prefix fails: the last step is wrong (the full wrong solution counts as rate 0).
    assert first_wrong_step(rates([0.5, 0.5]), 2) == 1
    # The bare problem is never solved: nothing to prefer, no pair.
    calls.clear()
    assert first_wrong_step(rates([0.0, 1.0]), 2) is None and calls == [0]
    with pytest.raises(ValueError):
        first_wrong_step(rates([1.0]), 0)


def test_build_step_pairs_with_a_scripted_sampler():
    # Q: 2 + 3 * 4 = 14. The wrong solution goes wrong at its second step.
    wrong = "3*4 = 12\n2 + 12 = 15\nanswer 15"
    script = {
        "Q:": ["3*4 = 12\n2 + 12 = 14\nanswer 14", "3*4 = 7\nanswer 9"],  # 1 of 2 verified
        "Q:3*4 = 12\n": ["2 + 12 = 15\nanswer 15", "2 + 12 = 14\nanswer 14"],  # 1 of 2: step 0 is fine
        "Q:3*4 = 12\n2 + 12 = 15\n": ["answer 15", "answer 15"],  # 0 of 2: step 1 is the wrong one
    }
    asked = []

    def sample(text, k):
        asked.append(text)
        assert k == 2
        return script[text]

    def grade(pid, solutions):
        assert pid == "p1"
        return [s.strip().endswith("14") for s in solutions]

    rows = build_step_pairs([("p1", "Q:", [wrong])], sample, grade, k=2)
    assert rows == [
        {
            "id": "p1",
            "prompt": "Q:3*4 = 12\n",
            "chosen": "2 + 12 = 14\n",
            "rejected": "2 + 12 = 15\n",
            "step": 1,
            "rates": [0.5, 0.5, 0.0],
        }
    ]
    assert asked == list(script)
    # A verified continuation that repeats the wrong step is no contrast: no pair.
    script["Q:3*4 = 12\n"] = ["2 + 12 = 15\nanswer 14", "2 + 12 = 13\nanswer 13"]
    assert build_step_pairs([("p1", "Q:", [wrong])], sample, grade, k=2) == []
    # max_pairs_per_problem stops the search once reached.
    asked.clear()
    assert build_step_pairs([("p1", "Q:", [wrong, wrong])], sample, grade, k=2, max_pairs_per_problem=0) == []
    assert asked == []
