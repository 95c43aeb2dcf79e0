"""Per-client model copies are counted before they exist: a run that cannot fit is refused in one line."""

from __future__ import annotations

import subprocess
import sys

import torch
from cli_checks import refused

from pslsched.models.zoo import build_blocks, split
from pslsched.training import memory


def _parts() -> dict[str, torch.nn.Module]:
    sp = split(build_blocks("cnn", (1, 8, 8), 10), 1, 3)
    return {"head": sp.head, "body": sp.body, "tail": sp.tail}


def test_copies_need_counts_each_strategys_client_parts():
    parts = _parts()
    sizes = {p: memory.parameter_bytes(m) for p, m in parts.items()}
    need, what = memory.copies_need("splitfed1", parts, 10, "adam")
    # a parameter, its gradient and Adam's two moments, plus a module's bookkeeping, per part and client
    assert need == 10 * sum(4 * sizes[p] + memory.MODULE_BYTES for p in ("head", "body", "tail"))
    assert what == "10 clients x head + body + tail"
    sgd, _ = memory.copies_need("splitfed1", parts, 10, "sgd")
    assert sgd == 10 * sum(2 * sizes[p] + memory.MODULE_BYTES for p in ("head", "body", "tail"))
    two, what2 = memory.copies_need("splitfed2", parts, 10, "sgd", momentum=0.9)
    assert two == 10 * sum(3 * sizes[p] + memory.MODULE_BYTES for p in ("head", "tail"))
    assert what2 == "10 clients x head + tail"
    assert memory.copies_need("psl", parts, 10_000, "adam") == (0, "")
    assert memory.copies_need("sglr", parts, 10_000, "adam") == (0, "")


_MEASURE = """
import copy, sys, tracemalloc, torch
from pslsched.models.zoo import build_blocks, split
from pslsched.training import memory
torch.set_num_threads(1)
sp = split(build_blocks("mlp", (1, 28, 28), 10), 1, 3)
parts = {"head": sp.head, "body": sp.body, "tail": sp.tail}
k = 150
need, _ = memory.copies_need("splitfed1", parts, k, "adam")
x = torch.zeros(2, 1, 28, 28)
tracemalloc.start()
held = []
for _ in range(k):
    c = {p: copy.deepcopy(m) for p, m in parts.items()}
    opt = torch.optim.Adam([q for m in c.values() for q in m.parameters()])
    c["tail"](c["body"](c["head"](x))).sum().backward()
    opt.step()
    held.append((c, opt))
python_objects = tracemalloc.get_traced_memory()[0]
tensors = {}
for c, opt in held:
    for m in c.values():
        for q in m.parameters():
            tensors[q.untyped_storage().data_ptr()] = q.untyped_storage().nbytes()
            tensors[q.grad.untyped_storage().data_ptr()] = q.grad.untyped_storage().nbytes()
    for state in opt.state.values():
        for v in state.values():
            if torch.is_tensor(v):
                tensors[v.untyped_storage().data_ptr()] = v.untyped_storage().nbytes()
print(need, sum(tensors.values()) + python_objects)
"""


def test_the_estimate_is_at_most_what_the_copies_really_take():
    # the check must never refuse a run that fits: its count is a lower bound of the memory the copies take,
    # counted exactly (distinct tensor storages plus the Python objects traced), not from a noisy RSS
    run = subprocess.run([sys.executable, "-c", _MEASURE], capture_output=True, text=True, check=True)
    need, took = map(int, run.stdout.split())
    assert need > 50_000_000
    assert need <= took, (need, took)
    assert took < 2 * need, (need, took)  # and not a vacuous one


def test_a_run_that_cannot_fit_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1_000_000)
    out = tmp_path / "run"
    line = refused(
        capsys,
        [*"train --clients 40 --dataset digits --rounds 1 --threads 1 --out".split(), str(out)],
        "--clients",
        "splitfed1 keeps 40 clients x head + body + tail",
        "would need at least",
        "1.0 MB available",
    )
    assert "psl and sglr share one client model" in line
    assert not out.exists() or not any(out.iterdir())


def test_a_shared_client_model_is_not_refused(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1)
    memory.check_copies_fit("psl", _parts(), 10_000, "adam")


def test_available_memory_is_known_here():
    have = memory.available_bytes()
    assert have is None or have > 0


def test_stacked_rows_are_counted_without_module_copies():
    parts = {**_parts(), "decoder": _parts()["body"]}
    sizes = {p: memory.parameter_bytes(m) for p, m in parts.items()}
    need, what = memory.copies_need("locfedmix", parts, 10, "adam")
    assert need == 10 * 3 * sum(sizes[p] for p in ("head", "tail", "decoder"))
    assert what == "10 clients x head + tail + decoder"
