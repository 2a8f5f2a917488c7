import pytest
import torch

from rl_reason.algorithms import filter_groups_by_std, overlong_filter_mask, soft_overlong_penalty


def test_filter_groups_by_std():
    # group 9: all 1 -> dropped; group 4: 0/1 -> kept; group 2: spread 1e-9 (float noise) -> dropped;
    # group 5: a single response -> dropped; group 0: 0.2/0.7 (non-binary) -> kept
    scores = torch.tensor([1.0, 1.0, 0.0, 0.5, 1.0, 0.5 + 1e-9, 1.0, 3.0, 0.2, 0.7])
    groups = torch.tensor([9, 9, 4, 2, 4, 2, 9, 5, 0, 0])
    f = filter_groups_by_std(scores, groups, eps=1e-6)
    assert f.keep.tolist() == [False, False, True, False, True, False, False, False, True, True]
    assert f.kept_groups.tolist() == [4, 0]  # first-appearance order
    assert f.dropped_groups.tolist() == [9, 2, 5]


def test_filter_shape_error():
    with pytest.raises(ValueError, match="must both be"):
        filter_groups_by_std(torch.zeros(3), torch.zeros(2, dtype=torch.long))


def test_soft_overlong_penalty():
    # max_len 10, buffer 4: free up to 6, then linear to -factor at 10
    lengths = torch.tensor([5, 6, 7, 9, 10, 12])
    got = soft_overlong_penalty(lengths, max_len=10, buffer=4, penalty_factor=0.5)
    expected = torch.tensor([0.0, 0.0, -(7 - 6) / 4 * 0.5, -(9 - 6) / 4 * 0.5, -0.5, -0.5])
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("buffer", [0, -1, 11])
def test_soft_overlong_penalty_rejects_bad_buffer(buffer):
    with pytest.raises(ValueError, match="overlong buffer must be in"):
        soft_overlong_penalty(torch.tensor([1]), max_len=10, buffer=buffer)


def test_overlong_filter_mask():
    keep = overlong_filter_mask(finish_reasons=["stop", "length", "stop"])
    assert keep.tolist() == [True, False, True]
    keep = overlong_filter_mask(response_lengths=torch.tensor([3, 8, 9]), max_len=8)
    assert keep.tolist() == [True, False, False]
    with pytest.raises(ValueError, match="'stop' or 'length'"):
        overlong_filter_mask(finish_reasons=["stop", "eos"])
    with pytest.raises(ValueError, match="pass finish_reasons"):
        overlong_filter_mask(response_lengths=torch.tensor([3]))
