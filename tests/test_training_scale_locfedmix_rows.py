"""LocFedMix's stacked rows (``locfedmix:path=batched``): the row optimizer, float64 equality, replay, resume.

Tolerances: ``RowOptimizer`` does ``torch.optim``'s elementwise arithmetic in its order with each row's scalars as
a column of the same float values, so one update equals torch's bit for bit (asserted). The runs compare the
batched path with the per-client reference in float64 (model and data): what is left is the reduction order of
the batched kernels (sums over clients, vmapped convolutions), ~1e-16 relative per operation, which Adam's steps
amplify over 3 rounds to ~1e-13 (measured: at most 3.2e-13 over these cases); ``TOL64 = 1e-12``.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from test_training import SYN, greedy, tiny
from test_training_locfedmix_batched import all_parts
from test_training_sync_batched import QUANT, both, run

import pslsched.training.runner as runner
from pslsched.simulator import SimConfig, parse_stragglers
from pslsched.training import TrainConfig, run_training
from pslsched.training.strategies.base import OptimizerSpec
from pslsched.training.strategies.locfedmix_rows import ClientRows, RowOptimizer

torch.set_num_threads(1)

TOL64 = 1e-12
ADAM = {"optimizer": "adam", "lr": 0.01, "momentum": 0.0}


@pytest.mark.parametrize(
    "spec",
    [OptimizerSpec("adam", 0.01, 0.0, 0.01), OptimizerSpec("sgd", 0.1, 0.9, 0.01), OptimizerSpec("sgd", 0.1)],
    ids=["adam-wd", "sgd-momentum-wd", "sgd"],
)
def test_row_optimizer_steps_each_row_as_torch_optim_bit_for_bit(spec):
    """Three clients taking different numbers of steps, in mixed groups: each row equals a torch.optim copy."""
    torch.manual_seed(0)
    template = {"head": torch.nn.Linear(3, 4), "tail": torch.nn.Sequential(torch.nn.Linear(4, 2))}
    rows = ClientRows(template, 3)
    opt = RowOptimizer(spec, rows, 3)
    copies = [{p: copy.deepcopy(m) for p, m in template.items()} for _ in range(3)]
    refs = [spec.make([q for m in c.values() for q in m.parameters()]) for c in copies]
    for group in ([0, 1, 2], [0, 2], [2, 0], [1], [0, 1, 2]):
        grads = {j: {k: torch.randn(rows.row(*k).shape[1:]) for k in rows.keys()} for j in group}
        gathered = rows.gather(torch.as_tensor(group))
        for (part, n), stacked in ((k, gathered[k[0]][k[1]]) for k in rows.keys()):
            stacked.grad = torch.stack([grads[j][(part, n)] for j in group])
            if part == "tail":  # a part without a gradient is not stepped
                stacked.grad = None if group == [1] else stacked.grad
        opt.step(np.array(group), gathered)
        for j in group:
            for part, m in copies[j].items():
                for n, q in m.named_parameters():
                    q.grad = None if (part == "tail" and group == [1]) else grads[j][(part, n)].clone()
            refs[j].step()
            refs[j].zero_grad(set_to_none=True)
    for j in range(3):
        for part, m in copies[j].items():
            for n, q in m.named_parameters():
                assert torch.equal(rows.row(part, n)[j], q.detach()), (j, part, n)


def _float64_data(monkeypatch) -> None:
    """The runs' dataset in float64 (``runner.load_dataset`` wrapped)."""
    load = runner.load_dataset

    def wide(*args, **kwargs):
        data = load(*args, **kwargs)
        return dataclasses.replace(data, x_train=data.x_train.double(), x_test=data.x_test.double())

    monkeypatch.setattr(runner, "load_dataset", wide)


@pytest.mark.parametrize("strategy", ["locfedmix", "locfedmix:mix=0", "locfedmix:loc=0", "locfedmix:fed=2"])
@pytest.mark.parametrize("helpers", [1, 3])
@pytest.mark.parametrize("compression", [None, QUANT], ids=["plain", "quant4"])
def test_stacked_rows_equal_per_client_in_float64_with_adam(monkeypatch, strategy, helpers, compression):
    """Adam (which float32 rounding makes noisy, see test_training_locfedmix_batched) compared in float64; global
    parts, bodies and every client's own head, tail and decoder, over 3 rounds (fed=2: rows kept across one)."""
    built = tiny(clients=6, helpers=helpers)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _float64_data(monkeypatch)
        sim = SimConfig(rounds=3, seed=2, stragglers=parse_stragglers("mild"))
        a, b, share = both(
            monkeypatch, built, greedy(built), strategy, sim=sim, compression=compression, **ADAM
        )
    finally:
        torch.set_default_dtype(before)
    assert share == 3  # every step of the 3 rounds ran as one batch
    assert "clients" in a.parts and not any(k.startswith("c0.") for k in a.parts)  # no module copies
    diff = max(float((x - y).abs().max()) for x, y in zip(all_parts(a.parts), all_parts(b.parts)))
    assert diff <= TOL64, diff
    assert a.record.timeline.equals(b.record.timeline)


def test_stacked_rows_with_unequal_counts_equal_per_client_in_float64(monkeypatch):
    """UGS gives a step's clients different counts (several row groups per step, each stepped by the row optimizer;
    some clients skip steps, so their Adam step counts differ): float64, the same models as the per-client path."""
    built = tiny(clients=7, helpers=2)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _float64_data(monkeypatch)
        kw = {"sim": SimConfig(rounds=2, seed=3), "sampler": "ugs", "global_batch": 16, **ADAM}
        a, b, share = both(monkeypatch, built, greedy(built), "locfedmix:fed=2", **kw)
    finally:
        torch.set_default_dtype(before)
    assert share == 2
    samples = a.seen["hooks"].plan.samples
    assert any(len(set(row[row > 0].tolist())) > 1 for row in samples)  # unequal counts within a step
    diff = max(float((x - y).abs().max()) for x, y in zip(all_parts(a.parts), all_parts(b.parts)))
    assert diff <= TOL64, diff


def test_replayed_steps_on_the_rows_equal_per_client(monkeypatch):
    """Dropouts mid-step and a round timeout: those steps are replayed client after client from modules made of
    each client's rows, stepped by the row optimizer; the same models and clock as the per-client path."""
    built = tiny(clients=5, helpers=2)
    schedule = greedy(built)
    a, b, batched = both(
        monkeypatch, built, schedule, "locfedmix:fed=2", sim=SimConfig(rounds=3, seed=2, dropout=0.3)
    )
    assert 0 < batched < 3 and a.seen["replayed"] > 0  # some steps batched, some replayed
    diff = max(float((x - y).abs().max()) for x, y in zip(all_parts(a.parts), all_parts(b.parts)))
    assert diff <= 1e-5, diff
    assert a.record.timeline.equals(b.record.timeline)
    full = run(monkeypatch, built, schedule, "locfedmix", sim=SimConfig(rounds=1, seed=2))[0]
    tl = full.record.timeline
    cut = float(tl[tl.batch == tl.batch.max()].start.min()) + 1.0
    a, b, _ = both(
        monkeypatch, built, schedule, "locfedmix", sim=SimConfig(rounds=2, seed=2, round_timeout_ms=cut)
    )
    assert a.seen["cut"] == 2  # the last step of both rounds
    diff = max(float((x - y).abs().max()) for x, y in zip(all_parts(a.parts), all_parts(b.parts)))
    assert diff <= 1e-5, diff


def test_resume_mid_epoch_keeps_the_rows_bit_identical(tmp_path):
    """fed=0 (the clients never federate: only the checkpointed rows hold them), Adam, an epoch cut into rounds of
    2 steps: stopped after round 2 of 4 and resumed, the run equals the uninterrupted one bit for bit."""
    built = tiny(clients=4, helpers=2)
    schedule = greedy(built)
    cfg = TrainConfig(
        dataset=SYN,
        model="mlp",
        strategy="locfedmix:fed=0",
        sampler="ugs",
        global_batch=16,
        steps_per_round=2,
        **ADAM,
    )
    full = run_training(built.instance, built.workload, schedule, SimConfig(rounds=4, seed=1), cfg)
    run_training(built.instance, built.workload, schedule, SimConfig(rounds=2, seed=1), cfg, out=tmp_path)
    resumed = run_training(
        built.instance, built.workload, schedule, SimConfig(rounds=4, seed=1), cfg, out=tmp_path, resume=True
    )
    assert resumed.metrics["test_loss"].tolist() == full.metrics["test_loss"].tolist()
    assert all(torch.equal(x, y) for x, y in zip(all_parts(full.parts), all_parts(resumed.parts)))


STACKED_CASES = {
    "conv-one-input-channel": (
        torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU()),
        (1, 6, 6),
    ),
    "conv-one-output-channel": (
        torch.nn.Sequential(torch.nn.Upsample(size=(6, 6)), torch.nn.Conv2d(3, 1, 3)),
        (3, 3, 3),
    ),
    "conv-strided": (torch.nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 5, 5)),
    "linear": (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)), (3, 4)),
    "fallback-batchnorm": (torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3).eval()), (4,)),
}


@pytest.mark.parametrize("case", list(STACKED_CASES))
@pytest.mark.parametrize("n", [1, 3])
def test_stacked_call_equals_vmap_in_float64(case, n):
    """``stacked_call`` (the rows' forward) against ``vmap(functional_call)``: outputs and the gradients of the
    inputs and of every row's parameters, float64 (only the kernels' summation order differs: ~1e-16 relative)."""
    from torch.func import functional_call, vmap

    from pslsched.training.strategies.stacked import stacked_call

    module, shape = STACKED_CASES[case]
    module = copy.deepcopy(module).double()
    g = torch.Generator().manual_seed(0)
    params = {
        k: (
            p.detach().unsqueeze(0) + 0.1 * torch.randn(4, *p.shape, generator=g, dtype=torch.float64)
        ).requires_grad_(True)
        for k, p in module.named_parameters()
    }
    x = torch.randn(4, n, *shape, generator=g, dtype=torch.float64, requires_grad=True)
    want = vmap(lambda p, inp: functional_call(module, p, (inp,)))(params, x)
    got = stacked_call(module, params, x)
    assert got.shape == want.shape
    assert float((got - want).detach().abs().max()) <= 1e-12
    weights = torch.randn(want.shape, generator=g, dtype=torch.float64)
    grads_want = torch.autograd.grad((want * weights).sum(), [x, *params.values()])
    grads_got = torch.autograd.grad((got * weights).sum(), [x, *params.values()])
    assert max(float((a - b).abs().max()) for a, b in zip(grads_want, grads_got)) <= 1e-12


def test_one_pass_body_backward_equals_two_passes_bit_for_bit():
    """Counts that are powers of two: one backward (weighted cut-b gradient, cut-a gradient divided back) gives the
    two-pass result bit for bit; with a count of 3 the two passes run (the same function, both branches)."""
    from pslsched.training.strategies.locfedmix_rows import _body_backward

    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten())
    for ns in ([1, 2, 4, 1], [1, 3, 2]):
        seg = torch.repeat_interleave(torch.arange(len(ns)), torch.as_tensor(ns))
        a = torch.randn(sum(ns), 2, 4, 4)
        grad_b = torch.randn(sum(ns), 48)
        results = []
        for one_pass in (True, False):
            body.zero_grad(set_to_none=True)
            sent_a = a.clone().requires_grad_(True)
            out = body(sent_a)
            if one_pass:
                grad_a = _body_backward([body], out, sent_a, grad_b, ns, seg)
            else:
                weight = torch.as_tensor(ns, dtype=grad_b.dtype)[seg].reshape(-1, 1)
                grad_a = torch.autograd.grad(out, sent_a, grad_b, retain_graph=True)[0]
                out.backward(grad_b * weight, inputs=list(body.parameters()))
            results.append([grad_a, *(p.grad.clone() for p in body.parameters())])
        assert all(torch.equal(x, y) for x, y in zip(*results)), ns
