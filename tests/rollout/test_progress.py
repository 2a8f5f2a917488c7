"""Progress per prompt: an engine reports each prompt's group as it completes, and the eval
harness advances its bar per problem rather than per batch of problems."""

from rl_reason.data_pipelines import load_dataset
from rl_reason.eval import harness
from rl_reason.models import tiny_model
from rl_reason.rollout import SamplingParams
from rl_reason.rollout.hf_engine import HFEngine
from tests.eval.fakes import FakeEngine, FakeSampling


def test_hf_engine_reports_every_group_once_when_it_is_complete():
    model, tokenizer = tiny_model("llama", seed=0)
    engine = HFEngine(model, tokenizer, max_batch_size=4)  # 2 prompts per batch at n=2: several batches
    done = []

    def on_group_done(i):
        done.append(i)

    prompts = ["a", "bb bb", "c c c", "d", "e e"]
    groups = engine.generate(prompts, 2, SamplingParams(temperature=1.0, max_new_tokens=6, seed=1),
                             on_group_done=on_group_done)
    assert sorted(done) == list(range(len(prompts)))
    # Groups of the first batch complete before any prompt of a later batch.
    assert set(done[:2]) == {0, 1} and set(done[2:4]) == {2, 3}
    assert all(len(c.token_ids) <= 6 for g in groups for c in g)


def test_eval_bar_advances_per_problem(monkeypatch):
    updates = []

    class Bar:
        def update(self, k=1):
            updates.append(k)

        def close(self):
            pass

    monkeypatch.setattr(harness, "_progress", lambda *a, **k: Bar())
    examples = load_dataset("arithmetic:heldout", limit=7)
    harness.evaluate(FakeEngine(), examples, n=2, ks=[1], sampling_params=FakeSampling(seed=0), template="base_boxed",
                     suite="arith", batch_size=4)
    assert updates == [1] * 7
