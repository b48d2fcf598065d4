"""The speed paths compute what the plain formulas compute."""

import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from seq2seq.models import Rnnlm
from seq2seq.models.loss import linear_cross_entropy

from .helpers import assert_ok


def plain_and_fast(x, weight, bias, target):
    """Loss and gradients of the plain formula and of linear_cross_entropy, on fresh leaves."""
    out = []
    for fn in (lambda *a: F.cross_entropy(F.linear(*a[:3]), a[3]), linear_cross_entropy):
        leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
        loss = fn(*leaves, target)
        out.append((loss.detach(), torch.autograd.grad(3.0 * loss, leaves)))
    return out


@pytest.mark.parametrize("n,h,v", [(70, 12, 500), (3, 5, 7)])
def test_linear_cross_entropy_equals_the_plain_formula(n, h, v):
    torch.manual_seed(0)
    x, weight, bias = torch.randn(n, h), torch.randn(v, h), torch.randn(v)
    target = torch.randint(v, (n,))
    target[0] = target[1]  # a repeated class
    (loss, grads), (fast_loss, fast_grads) = plain_and_fast(x, weight, bias, target)
    assert fast_loss.item() == pytest.approx(loss.item(), rel=1e-6)
    for g, fast in zip(grads, fast_grads, strict=True):
        assert fast.shape == g.shape and fast.is_contiguous()
        torch.testing.assert_close(fast, g, rtol=1e-5, atol=1e-6)


def test_linear_cross_entropy_where_the_target_probability_underflows():
    """A target 200 logits below the best has probability exp(-200) = 0 in fp32: the loss of its row
    must still be exact (about 200), not inf."""
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    weight, bias = torch.tensor([[100.0, 0.0], [-100.0, 0.0], [0.0, 0.5]]), torch.zeros(3)
    target = torch.tensor([1, 2])  # row 0: logits (100, -100, 0), target -100
    (loss, grads), (fast_loss, fast_grads) = plain_and_fast(x, weight, bias, target)
    assert 100 < loss.item() < 101 and fast_loss.item() == pytest.approx(loss.item(), rel=1e-6)
    for g, fast in zip(grads, fast_grads, strict=True):
        torch.testing.assert_close(fast, g)


def test_rnnlm_loss_and_gradients_with_targets_equal_the_logits_path():
    """Tied weights: the output layer's gradient adds to the embedding's."""
    torch.manual_seed(0)
    model = Rnnlm(50, 16, 16, tie_weights=True)
    tokens, targets = torch.randint(50, (4, 9)), torch.randint(50, (4, 9))
    logits, _ = model(tokens)
    plain = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    plain_grads = torch.autograd.grad(plain, list(model.parameters()))
    fast, state = model(tokens, targets=targets)
    fast_grads = torch.autograd.grad(fast, list(model.parameters()))
    assert fast.item() == pytest.approx(plain.item(), rel=1e-6) and state[0].shape == (1, 4, 16)
    for g, f in zip(plain_grads, fast_grads, strict=True):
        torch.testing.assert_close(f, g, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        assert model(tokens, targets=targets)[0].item() == pytest.approx(plain.item(), rel=1e-6)


def test_bf16_autocast_takes_the_plain_path():
    torch.manual_seed(0)
    x, weight, bias = torch.randn(8, 4, requires_grad=True), torch.randn(10, 4), torch.randn(10)
    target = torch.zeros(8, dtype=torch.long)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = linear_cross_entropy(x, weight, bias, target)
        plain = F.cross_entropy(F.linear(x, weight, bias), target)
    assert fast.item() == plain.item()


FAULTS = """
import ctypes, resource
from seq2seq.memory import keep_freed_memory
if {keep}:
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
SIZE = 28 << 20  # PTB's logits: 700 x 10,000 floats

def step():  # three such buffers alive at once, written, then freed, as in a language model's step
    blocks = [libc.malloc(SIZE) for _ in range(3)]
    for block in blocks:
        libc.memset(block, 1, SIZE)
    for block in blocks:
        libc.free(block)

for _ in range(3):
    step()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keep_freed_memory_stops_page_faults_of_big_buffers():
    """Without it, glibc hands big freed blocks back to the OS and each step faults all three buffers in
    again (3 x 7,168 pages); with it, the pages stay mapped and are reused."""
    faults = {}
    for keep in (False, True):
        result = subprocess.run([sys.executable, "-c", FAULTS.format(keep=keep)], capture_output=True, text=True)
        assert_ok(result)
        faults[keep] = int(result.stdout.split()[-1])
    assert faults[False] > 10 * 3 * 7_000 and faults[True] < 100, faults  # over 10 steps


def test_precision_auto_picks_bf16_only_on_amx_cpus(monkeypatch, tmp_path, caplog):
    import logging

    from seq2seq import device

    cpu = torch.device("cpu")
    for flags, expected in (("fpu avx512f amx_bf16 amx_tile", "bf16"), ("fpu avx2 avx512f avx512_bf16", "fp32")):
        (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(device, "CPUINFO", tmp_path / "cpuinfo")
        with caplog.at_level(logging.INFO, logger="seq2seq.device"):
            assert device.resolve_precision("auto", cpu) == expected
        assert f"trainer.precision=auto: {expected}" in caplog.records[-1].getMessage()
    monkeypatch.setattr(device, "CPUINFO", tmp_path / "missing")  # not Linux: fp32
    assert device.resolve_precision("auto", cpu) == "fp32"
    assert device.resolve_precision("bf16", cpu) == "bf16" and device.resolve_precision("fp32", cpu) == "fp32"


def test_compare_speed_script_refuses_a_folder_that_is_not_the_books(tmp_path):
    from .helpers import REPO

    script = REPO / "scripts" / "compare_speed.py"
    result = subprocess.run([sys.executable, str(script), "--book", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1 and "is not the chapter's code (common/trainer.py missing)" in result.stderr
    assert "oreilly-japan/deep-learning-from-scratch-2" in result.stderr and "Traceback" not in result.stderr


def test_compare_speed_plain_language_model_runs():
    """The plain PyTorch model the script times has rnnlm_ptb's shapes, and its timing loop runs."""
    import runpy

    from .helpers import REPO

    script = runpy.run_path(str(REPO / "scripts" / "compare_speed.py"))
    torch.manual_seed(0)
    stream = torch.arange(20 * 35 * 8 + 1) % 7  # a periodic stream: easy to learn
    assert script["plain_lm_step_s"](stream, 7, steps=4, warmup=1) > 0
    model = script["PlainLM"](7, 8, 8)
    x = torch.zeros(35, 20, dtype=torch.long)
    logits, (h, c) = model(x, None)
    assert logits.shape == (35, 20, 7) and h.shape == c.shape == (1, 20, 8)
