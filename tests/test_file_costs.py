"""A crafted checkpoint costs only what it holds: numbers read from a file are bounded before they are
used, tensors must hold their own finite values, optimizer state must fit the parameters. Each refusal
runs in a real process whose peak memory and time are measured."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from seq2seq.train import train

from .helpers import PEAK_MB, SECONDS, TINY_ADDITION, compose_train, measured


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished addition run and a finished language-model run (its saved task config kept)."""
    root = tmp_path_factory.mktemp("costs")
    addition = root / "addition"
    train(compose_train(addition, *TINY_ADDITION, "trainer.max_epochs=1"))
    data = root / "ptb"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"ptb.{split}.txt").write_text(" a b c d e f \n" * 30)
    lm = root / "lm"
    sizes = ["task.batch_size=2", "task.time_size=4", "task.eval_batch_size=2", "model.wordvec_size=8"]
    quick = ["model.hidden_size=8", "trainer.max_epochs=1", "trainer.device=cpu", "trainer.progress=false"]
    train(compose_train(lm, "experiment=rnnlm_ptb", f"task.data_dir={data}", *sizes, *quick))
    return addition, lm


def refused(path: Path, message: str, *args: str) -> None:
    result, peak, seconds = measured("seq2seq.generate", f"checkpoint={path}", *(args or ("question=1+2",)))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert message in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert peak < PEAK_MB and seconds < SECONDS, (peak, seconds)


def save(state: dict, path: Path) -> Path:
    torch.save(state, path)
    return path


@pytest.mark.slow
def test_expanded_weights_declaring_huge_sizes_are_refused_in_bounded_memory(runs, tmp_path):
    """A small file whose weights are torch.zeros(1).expand(shape) for hidden_size=12000 once allocated
    4.7 GB: the views are refused before the model is built."""
    state = torch.load(runs[0] / "best.pt", weights_only=True)
    hidden = 12000
    state["model"]["args"]["hidden_size"] = hidden
    with torch.device("meta"):
        from seq2seq.models import Seq2seq

        shapes = {k: v.shape for k, v in Seq2seq(**state["model"]["args"]).state_dict().items()}
    state["model_state"] = {k: torch.zeros(1).expand(shape) for k, shape in shapes.items()}
    path = save(state, tmp_path / "expanded.pt")
    assert path.stat().st_size < 200_000  # the optimizer state included
    refused(path, "is an expanded or strided view")


@pytest.mark.slow
def test_sizes_beyond_the_caps_are_refused_before_any_build(runs, tmp_path):
    lm = torch.load(runs[1] / "best.pt", weights_only=True)
    lm["model"]["args"]["num_layers"] = 2**31  # hung inside the meta build
    refused(save(lm, tmp_path / "layers.pt"), "num_layers=2147483648 must be from 1 to 64", "prompt=a")
    addition = torch.load(runs[0] / "best.pt", weights_only=True)
    addition["task"]["answer_width"] = 10**9  # a decode of 10**9 steps
    refused(save(addition, tmp_path / "width.pt"), "task state does not make a codec")
    addition = torch.load(runs[0] / "best.pt", weights_only=True)
    addition["config"]["task"]["num_examples"] = 10**9  # generate index=0 rebuilt the task: 10**9 questions
    refused(save(addition, tmp_path / "examples.pt"), "num_examples=1000000000 must be from 1 to 10,000,000",
            "index=0")  # fmt: skip


@pytest.mark.slow
def test_non_finite_weights_are_refused(runs, tmp_path):
    for bad in (float("nan"), float("inf")):
        state = torch.load(runs[0] / "best.pt", weights_only=True)
        name = next(iter(state["model_state"]))
        state["model_state"][name] = state["model_state"][name].clone().fill_(bad)
        refused(save(state, tmp_path / "bad.pt"), "holds NaN or infinite values")


def test_meta_sparse_and_complex_tensors_are_refused(runs):
    from seq2seq import checkpoint as ckpt
    from seq2seq.errors import CheckpointError

    weight = torch.zeros(3, 4)
    for tensor, says in (
        (torch.empty(3, 4, device="meta"), "not a dense CPU tensor"),
        (weight.to_sparse(), "not a dense CPU tensor"),
        (torch.zeros(3, 4, dtype=torch.complex64), "is of type torch.complex64"),
        (torch.zeros(3, 4, dtype=torch.float8_e4m3fn), "is of type torch.float8_e4m3fn"),
        (torch.zeros(4, 3).t(), "expanded or strided view"),
    ):
        with pytest.raises(CheckpointError, match=says):
            ckpt.check_tensor("w", tensor, "file.pt")
    ckpt.check_tensor("w", weight, "file.pt")


@pytest.mark.slow
def test_an_optimizer_state_of_the_wrong_shapes_is_refused_not_a_segfault(runs, tmp_path):
    """Adam's exp_avg of other shapes crashed the fused Adam (exit 139) on resume."""
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(runs[0] / "last.pt", weights_only=True)
    first = next(iter(state["optimizer"]["state"].values()))
    first["exp_avg"] = torch.zeros(3)
    first["exp_avg_sq"] = torch.zeros(3)
    save(state, run / "last.pt")
    args = [*TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}"]
    result = subprocess.run([sys.executable, "-m", "seq2seq.train", *args], capture_output=True, text=True,
                            cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "optimizer state 0.exp_avg is (3,) torch.float32, its parameter" in result.stderr


def test_the_archive_is_checked_before_any_entry_is_read(runs, tmp_path):
    import struct
    import zipfile

    from seq2seq import checkpoint as ckpt
    from seq2seq.errors import CheckpointError

    raw = bytearray((runs[0] / "best.pt").read_bytes())
    at = raw.find(b"PK\x01\x02")  # the first central-directory record: uncompressed size at offset 24
    raw[at + 24 : at + 28] = struct.pack("<I", 0xFFFFFFF0)
    (tmp_path / "lying.pt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"its entries declare [\d,]+ bytes in a file of"):
        ckpt.load(tmp_path / "lying.pt")
    with zipfile.ZipFile(tmp_path / "deflated.pt", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * 10_000_000)  # 10 MB that compress to a few KB
    with pytest.raises(CheckpointError, match=r"compressed entry 'archive/data\.pkl'"):
        ckpt.load(tmp_path / "deflated.pt")
    state = torch.load(runs[0] / "best.pt", weights_only=True)
    state["payload"] = "anything"
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match="unknown top-level key 'payload'"):
        ckpt.load(tmp_path / "extra.pt")


def nan_metrics(state: dict) -> None:
    state["metrics"] = {"val/acc": float("nan")}  # a diverged run's metrics: kept, not refused


# A resumable checkpoint's other states, crafted: each is refused with its own message before anything
# is loaded (they ended in tracebacks inside torch, or trained on: a negative learning rate did).
RESUME_STATES = {
    "carry on a task that carries none": (lambda s: s.__setitem__("carry", "x"), "this task carries none"),
    "a learning rate that is text": (
        lambda s: s["optimizer"]["param_groups"][0].__setitem__("lr", "a"), "param_groups[0].lr=a is not a number"),
    "a negative learning rate": (
        lambda s: s["optimizer"]["param_groups"][0].__setitem__("lr", -5.0), "param_groups[0].lr=-5.0 is negative"),
    "betas missing": (
        lambda s: s["optimizer"]["param_groups"][0].__setitem__("betas", None), "betas is not a list of 2"),
    "a step that is text": (
        lambda s: s["optimizer"]["state"][0].__setitem__("step", "x"), "optimizer state 0.step is not a tensor"),
    "a step count of -1": (
        lambda s: s["optimizer"]["state"][0].__setitem__("step", torch.tensor(-1.0)), "0.step is not a count"),
    "a random generator's state cut short": (
        lambda s: s["progress"].__setitem__("rng", torch.zeros(5, dtype=torch.uint8)), "progress.rng is not"),
    "no random generator's state": (lambda s: s["progress"].pop("rng"), "progress.rng is not"),
    "a CUDA generator's state that is text": (
        lambda s: s["progress"].__setitem__("cuda_rng", "x"), "progress.cuda_rng is not"),
    "a schedule where the run has none": (
        lambda s: s.__setitem__("scheduler", {"x": 1}), "the saved learning-rate schedule is not this run's"),
    "metrics that are text": (lambda s: s.__setitem__("metrics", "x"), "metrics is not a mapping"),
    "a top-k entry without its epoch": (
        lambda s: s["progress"].__setitem__("top", [[1.0]]), "progress.top holds [1.0]"),
    "no config": (lambda s: s.__setitem__("config", "x"), "holds no config to compare"),
    "NaN metrics (accepted)": (nan_metrics, None),
}  # fmt: skip


@pytest.mark.parametrize("case", list(RESUME_STATES))
def test_crafted_resume_states_are_refused_before_loading(runs, tmp_path, case):
    from seq2seq.errors import CheckpointError

    change, says = RESUME_STATES[case]
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(runs[0] / "last.pt", weights_only=True)
    state["progress"]["finished"] = False
    change(state)
    save(state, run / "last.pt")
    cfg = compose_train(run, *TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}")
    if says is None:
        assert train(cfg)["epoch"] == 2
        return
    with pytest.raises(CheckpointError, match=re.escape(says)):
        train(cfg)
    assert sorted(p.name for p in run.iterdir()) == ["last.pt"]  # nothing written


def test_a_language_models_carried_state_must_have_its_shapes(runs, tmp_path):
    """A language model saved mid-epoch carries its LSTM state (h, c): shapes other than this run's
    (num_layers, batch, hidden) are refused; its own shapes resume."""
    from seq2seq.errors import CheckpointError

    base = OmegaConf.load(runs[1] / "config.yaml")
    overrides = ["experiment=rnnlm_ptb", f"task.data_dir={base.task.data_dir}", "task.batch_size=2",
                 "task.time_size=4", "task.eval_batch_size=2", "model.wordvec_size=8", "model.hidden_size=8",
                 "trainer.device=cpu", "trainer.progress=false", "trainer.max_epochs=2"]  # fmt: skip
    for carry, says in (
        ((torch.zeros(1, 3, 8), torch.zeros(1, 3, 8)), "carry[0] is (1, 3, 8) torch.float32, this run's (1, 2, 8)"),
        ((torch.zeros(1, 2, 8),), "the carried state is not 2 tensors"),
        ((torch.zeros(1, 2, 8), torch.full((1, 2, 8), float("nan"))), "carry[1] holds NaN"),
        ((torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)), None),
    ):
        run = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        run.mkdir()
        state = torch.load(runs[1] / "last.pt", weights_only=True)
        state["progress"].update(finished=False, batch=1)
        state["carry"] = carry
        save(state, run / "last.pt")
        cfg = compose_train(run, *overrides, f"trainer.resume={run}")
        if says is None:
            assert train(cfg)["epoch"] == 2
        else:
            with pytest.raises(CheckpointError, match=re.escape(says)):
                train(cfg)


@pytest.mark.slow
def test_a_crafted_resume_state_is_one_line_in_a_real_process(runs, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(runs[0] / "last.pt", weights_only=True)
    state["progress"]["finished"] = False
    state["optimizer"]["param_groups"][0]["betas"] = "x"
    save(state, run / "last.pt")
    args = [*TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}"]
    result, peak, seconds = measured("seq2seq.train", *args, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line or line.startswith("error")]
    assert len(errors) == 1 and "param_groups[0].betas is not a list of 2" in errors[0], result.stderr
    assert peak < PEAK_MB and seconds < SECONDS, (peak, seconds)


@pytest.mark.slow
def test_a_long_input_file_is_answered_in_bounded_memory(runs, tmp_path):
    """generate file= answered every line in one batch: 3,000,000 lines took 5.9 GB. Lines are read and
    answered CHUNK at a time, so 100 times more lines cost about the same memory."""
    peaks = []
    for n in (2_000, 200_000):
        path = tmp_path / f"{n}.txt"
        path.write_text("".join(f"{i % 100}+{i % 37}\n" for i in range(n)))
        result, peak, _ = measured("seq2seq.generate", f"checkpoint={runs[0]}", f"file={path}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(result.stdout.splitlines()) == n and result.stdout.startswith("0+0\t")
        peaks.append(peak)
    assert peaks[1] - peaks[0] < 60, peaks
