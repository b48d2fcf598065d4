"""The speed paths compute what the plain formulas compute."""

import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from seq2seq.models import Rnnlm
from seq2seq.models.loss import linear_cross_entropy

from .helpers import assert_ok, needs_bf16


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


@needs_bf16
def test_bf16_autocast_runs_the_gemms_in_bf16_and_keeps_the_loss_and_gradients_fp32():
    """Under trainer.precision=bf16 the fused path multiplies bf16 operands (AMX where the CPU has it):
    its loss and gradients are those of the plain formula on bf16-rounded operands, to bf16 accuracy,
    and come back fp32 for the fp32 master weights."""
    from seq2seq.models.loss import fused_dtype

    torch.manual_seed(0)
    x, weight, bias = torch.randn(64, 16), torch.randn(300, 16) / 4, torch.randn(300)
    target = torch.randint(300, (64,))
    rounded = [t.bfloat16().float() for t in (x, weight, bias)]
    (loss, grads), _ = plain_and_fast(*rounded, target)
    leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fused_dtype(leaves[0]) == torch.bfloat16 and fused_dtype(leaves[0].bfloat16()) == torch.bfloat16
        fast = linear_cross_entropy(*leaves, target)
    fast_grads = torch.autograd.grad(3.0 * fast, leaves)
    assert fast.dtype == torch.float32 and fast.item() == pytest.approx(loss.item(), rel=1e-2)
    exact = linear_cross_entropy(*leaves, target)  # fp32 outside autocast: a different number
    assert fused_dtype(x) == torch.float32 and fused_dtype(x.bfloat16()) is None and exact.item() != fast.item()
    for g, f in zip(grads, fast_grads, strict=True):
        assert f.dtype == torch.float32
        torch.testing.assert_close(f, g, rtol=2e-2, atol=2e-3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # evaluation: no gradients
        assert linear_cross_entropy(x, weight, bias, target).item() == pytest.approx(loss.item(), rel=1e-2)


FAULTS = """
import ctypes, resource
from seq2seq.core.memory import keep_freed_memory
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
    again (3 x 7,168 pages of 4 KiB; fewer where transparent huge pages back malloc); with it, the pages
    stay mapped and are reused. The bounds hold for any page size: at least one fault per buffer and step
    without it, fewer than one per step with it (measured on an AVX2-only AMD EPYC: 214,720 and 0)."""
    faults = {}
    for keep in (False, True):
        result = subprocess.run([sys.executable, "-c", FAULTS.format(keep=keep)], capture_output=True, text=True)
        assert_ok(result)
        faults[keep] = int(result.stdout.split()[-1])
    assert faults[False] >= 10 * 3 and faults[True] < 10, faults  # over 10 steps


def test_bf16_is_refused_where_the_cpu_cannot_run_it(monkeypatch):
    from seq2seq.core import device
    from seq2seq.core.errors import ConfigError

    monkeypatch.setattr(device, "bf16_missing", lambda kind: "Some CPU has no bf16 kernels here")
    with pytest.raises(ConfigError, match=r"^trainer\.precision=bf16: Some CPU has no bf16 kernels here; use"):
        device.check_precision("bf16", torch.device("cpu"))
    device.check_precision("auto", torch.device("cpu"))  # auto measures instead (tests/test_threads.py)


def test_the_bf16_probe_agrees_with_a_bf16_step():
    """bf16_missing says None exactly where a bf16 LSTM step runs (on this CPU, whichever it is)."""
    from seq2seq.core.device import bf16_missing

    model = Rnnlm(vocab_size=30, wordvec_size=8, hidden_size=8)
    tokens = torch.randint(30, (2, 5))
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(tokens, targets=tokens)[0].backward()
        ran = True
    except RuntimeError:
        ran = False
    assert (bf16_missing("cpu") is None) == ran


def test_compare_speed_script_refuses_a_folder_that_is_not_the_books(tmp_path):
    from .helpers import REPO

    script = REPO / "scripts" / "compare_speed.py"
    result = subprocess.run([sys.executable, str(script), "--book", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1 and "is not the chapter's code (common/trainer.py missing)" in result.stderr
    assert "oreilly-japan/deep-learning-from-scratch-2" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_compare_speed_script_refuses_counts_below_one(tmp_path):
    from .helpers import REPO

    script = REPO / "scripts" / "compare_speed.py"
    for flag in ("--rounds", "--lm-steps", "--lm-rounds", "--threads"):
        result = subprocess.run(
            [sys.executable, str(script), "--book", str(tmp_path), flag, "0"], capture_output=True, text=True
        )
        assert result.returncode == 2 and f"argument {flag}: must be at least 1, got 0" in result.stderr
        assert "Traceback" not in result.stderr


def test_compare_speed_language_model_steppers_run():
    """The plain PyTorch model the script times has rnnlm_ptb's shapes, its stepper runs past the end
    of its stream, and the alternating windows report each side's best window."""
    import runpy

    from .helpers import REPO

    script = runpy.run_path(str(REPO / "scripts" / "compare_speed.py"))
    torch.manual_seed(0)
    model = script["PlainLM"](7, 8, 8)
    logits, (h, c) = model(torch.zeros(35, 20, dtype=torch.long), None)
    assert logits.shape == (35, 20, 7) and h.shape == c.shape == (1, 20, 8)
    stream = torch.arange(20 * 35 * 3 + 1) % 7  # three windows, then it wraps around
    calls = []
    plain = script["plain_lm_stepper"](stream, 7)
    times = iter([0.7, 0.5, 0.6])
    best = script["best_windows"]({"plain": plain, "other": lambda steps: calls.append(steps) or next(times)}, 2, 4)
    assert 0 < best["plain"] < float("inf") and best["other"] == 0.5 and calls == [3, 4, 4]


def test_the_benchmark_times_steps_and_evaluation_at_trainer_precision(monkeypatch):
    """bench --precision bf16 must time what training runs: its steps and validation under bf16 autocast."""
    from seq2seq.cli import bench
    from seq2seq.core.device import bf16_missing

    from .helpers import TINY_ADDITION

    seen = []
    precisions = (("fp32", False),) if bf16_missing("cpu") else (("bf16", True), ("fp32", False))
    for precision, expected in precisions:
        seen.clear()
        cfg = bench.compose_experiment("peeky_addition", [*TINY_ADDITION, f"trainer.precision={precision}"])
        setup = bench.build(cfg)
        for kind, name in (("step", "training_step"), ("eval", "evaluate")):
            method = getattr(setup.task, name)

            def spy(*args, kind=kind, method=method):
                seen.append((kind, torch.is_autocast_enabled("cpu")))
                return method(*args)

            monkeypatch.setattr(setup.task, name, spy)
        assert bench.time_steps(setup, cfg, setup.task.train_batches(0), warmup=1, steps=2) > 0
        assert bench.time_eval(setup, cfg, "val") > 0
        assert seen == [("step", expected)] * 3 + [("eval", expected)] * 2, precision


def test_the_benchmark_times_each_family_at_its_experiments_sizes():
    """bench --families builds each family from its own experiment and cell (the timing itself is the
    benchmark's, shared with its other rows)."""
    from seq2seq.cli import bench

    assert [bench.label(n, e) for n, e in bench.FAMILIES[0]] == [
        "peeky_addition cell=lstm train", "peeky_addition cell=gru train", "peeky_addition cell=rnn train",
        "transformer_addition train"]  # fmt: skip
    for name, extra in [*bench.FAMILIES[0], *bench.FAMILIES[1]]:
        cfg = bench.compose_experiment(name, extra)
        if extra:
            assert cfg.model.cell == extra[0].split("=")[1]
        else:
            assert cfg.model._target_.endswith(("Transformer", "TransformerLM"))
