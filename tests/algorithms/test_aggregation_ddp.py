"""Two real ranks (gloo on loopback, torch DDP): the averaged gradient equals the full batch's."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rl_reason.algorithms import AGGREGATION_MODES, aggregate_loss, all_reduce_normalisers, step_normalisers

pytestmark = [pytest.mark.distributed, pytest.mark.slow]  # two spawned torch processes: ~20 s
B, T, D = 6, 5, 3
LENGTHS = [5, 1, 3, 0, 4, 2]
# rank 0 gets rows 0-3 in micro-batches of 3 and 1; rank 1 rows 4-5 in one micro-batch
RANK_MICRO_BATCHES = [[[0, 1, 2], [3]], [[4, 5]]]


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, D, generator=g, dtype=torch.float64)
    target = torch.randn(B, T, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1.0] * n + [0.0] * (T - n) for n in LENGTHS], dtype=torch.float64)
    return x, target, mask


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(D, 1, dtype=torch.float64)


def _loss_mat(model, x, target):
    return (model(x).squeeze(-1) - target) ** 2


def _worker(rank, port, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        x, target, mask = _data()
        ddp = torch.nn.parallel.DistributedDataParallel(_model())
        micro = RANK_MICRO_BATCHES[rank]
        norm = all_reduce_normalisers(step_normalisers(mask[rows] for rows in micro))
        grads = {}
        for mode in AGGREGATION_MODES:
            ddp.zero_grad()
            for i, rows in enumerate(micro):
                # no_sync on all but the last micro-batch: DDP all-reduces (averages) once per step
                ctx = ddp.no_sync() if i < len(micro) - 1 else torch.enable_grad()
                with ctx:
                    loss = aggregate_loss(_loss_mat(ddp, x[rows], target[rows]), mask[rows], mode, max_len=T,
                                          global_num_tokens=norm.num_tokens, global_num_seqs=norm.num_seqs,
                                          dp_size=2)
                    loss.backward()
            # plain lists: tensors in a queue are shared by fd and vanish when this process exits
            grads[mode] = [p.grad.tolist() for p in ddp.module.parameters()]
        queue.put((rank, norm.num_tokens, norm.num_seqs, grads))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_rank_ddp_gradients_equal_full_batch():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(rank, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results = dict((r[0], r[1:]) for r in (queue.get(timeout=120) for _ in procs))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    x, target, mask = _data()
    assert results[0][:2] == results[1][:2] == (int(mask.sum()), sum(n > 0 for n in LENGTHS))
    for mode in AGGREGATION_MODES:
        model = _model()
        aggregate_loss(_loss_mat(model, x, target), mask, mode, max_len=T).backward()
        for rank in (0, 1):
            for got, expected in zip(results[rank][2][mode], model.parameters()):
                got = torch.tensor(got, dtype=torch.float64)
                torch.testing.assert_close(got, expected.grad, rtol=1e-12, atol=1e-14)
