"""Checkpoint files, normal and crafted, through every entry point that reads one. Nothing in a file is
imported or instantiated by name: each payload below runs code when Hydra instantiates it or pickle
loads it (the first test proves that), and must be refused, with the marker file never created. A
crafted file costs only what it holds: numbers read from it are bounded before they are used, tensors
hold their own finite values, optimizer state fits the parameters; refusals in real processes have
their peak memory and time measured. (Crafted resume states: test_resume.py.)"""

import base64
import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import seq2seq
from seq2seq.cli import chat, generate
from seq2seq.core.errors import CheckpointError, Seq2seqError
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.config import CONFIG_DIR
from seq2seq.training.loop import train

from .helpers import PEAK_MB, REPO, SECONDS, TINY_ADDITION, compose_train, measured, run_module, write_state


class Touch:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def hydra_payload(marker: Path) -> dict:
    """The payload of the hostile report: torch.load(weights_only=False) of a pickle, built by Hydra."""
    buffer = io.BytesIO()
    torch.save(Touch(marker), buffer)  # loading it with weights_only=False calls Path.touch(marker)
    data = base64.b64encode(buffer.getvalue()).decode()
    decoded = {"_target_": "base64.b64decode", "_args_": [data]}
    return {"_target_": "torch.load", "weights_only": False, "f": {"_target_": "io.BytesIO", "_args_": [decoded]}}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real attention-model checkpoint (so the heatmap script accepts it), loaded as a dict."""
    out = tmp_path_factory.mktemp("good")
    train(compose_train(out, *TINY_ADDITION, "experiment=attention_addition", "trainer.max_epochs=1"))
    return out / "best.pt", torch.load(out / "best.pt", weights_only=True)


def test_the_payload_is_live(tmp_path):
    marker = tmp_path / "ran"
    instantiate(hydra_payload(marker))
    assert marker.exists()  # so the tests below would see it if anything instantiated it


def crafted(name: str, saved: dict, marker: Path) -> dict:
    """A copy of a real checkpoint with one field replaced by a payload."""
    payload = hydra_payload(marker)
    c = {**saved, "config": {**saved["config"]}, "model": {**saved["model"], "args": {**saved["model"]["args"]}}}
    if name == "config.task.train":  # a known task class whose fields hide a payload
        c["config"]["task"] = {"_target_": "seq2seq.tasks.TsvTask", "train": payload}
    elif name.startswith("config."):
        c["config"][name.removeprefix("config.")] = payload
    elif name == "model":
        c["model"] = payload
    elif name == "model.args":
        c["model"]["args"]["init"] = payload
    elif name == "model.os_system":
        c["model"] = {"name": "os.system", "args": {"command": f"touch {marker}"}}
    elif name == "v1_target":
        c["version"], c["model"] = 1, {"_target_": "os.system", "command": f"touch {marker}"}
    elif name == "task":
        c["task"] = {**saved["task"], "vocab": payload}
    return c


FIELDS = [
    "config.task",
    "config.task.train",
    "config.model",
    "config.optimizer",
    "config.scheduler",
    "config.trainer",
    "model",
    "model.args",
    "model.os_system",
    "v1_target",
    "task",
]


def entry_points(path: Path, out: Path):
    """Every way the project reads a checkpoint, each a callable that must raise a Seq2seqError or
    finish without running the payload."""

    def cli_cfg(name: str, *overrides: str):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(name, overrides=[f"checkpoint={path}", "device=cpu", *overrides])

    spec = importlib.util.spec_from_file_location("attention_heatmap", REPO / "scripts" / "attention_heatmap.py")
    heatmap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(heatmap)
    questions = out / "questions.txt"
    questions.write_text("1+2\n")
    return {
        "api": lambda: seq2seq.load(path).generate("1+2"),
        "generate question": lambda: generate.run(cli_cfg("generate", "question=1+2")),
        "generate file": lambda: generate.run(cli_cfg("generate", f"file={questions}")),
        "generate index": lambda: generate.run(cli_cfg("generate", "index=0")),
        "chat": lambda: chat.chat_from_config(cli_cfg("chat")).reply("1+2"),
        "heatmap questions": lambda: heatmap.heatmaps(path, ["1+2"], []),
        "heatmap val-index": lambda: heatmap.heatmaps(path, [], [0]),
        "resume": lambda: train(
            compose_train(
                out / "resumed",
                *TINY_ADDITION,
                "experiment=attention_addition",
                "trainer.max_epochs=1",
                f"trainer.resume={path}",
            )
        ),
    }


@pytest.mark.parametrize("field", FIELDS)
def test_crafted_fields_run_nothing_through_any_entry_point(good, tmp_path, field):
    _, saved = good
    marker = tmp_path / "pwned"
    path = tmp_path / "crafted.pt"
    torch.save(crafted(field, saved, marker), path)
    refused = []
    for name, call in entry_points(path, tmp_path).items():
        try:
            call()
        except Seq2seqError:
            refused.append(name)
        except SystemExit:  # an argparse refusal of the heatmap script: also nothing ran
            refused.append(name)
        assert not marker.exists(), f"{name} ran the payload in {field}"
    # A payload in the model spec or the task state makes the file unusable everywhere; one in the saved
    # config (a record) only where that part is read: the task (config.task) rebuilt for index= / --val-index.
    if field.startswith("config.task"):
        assert {"generate index", "heatmap val-index"} <= set(refused)
    elif field.startswith("config."):
        assert "heatmap val-index" in refused
    else:
        assert len(refused) == 8, refused


def test_pickle_payload_is_refused_everywhere(good, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "seq2seq-checkpoint", "version": 2, "payload": Touch(marker)}, path)
    for name, call in entry_points(path, tmp_path).items():
        with pytest.raises(CheckpointError, match="not a readable checkpoint"):
            call()
        assert not marker.exists(), name


@pytest.mark.slow
def test_real_processes_refuse_the_payload_in_one_line(good, tmp_path):
    _, saved = good
    marker = tmp_path / "pwned"
    path = tmp_path / "crafted.pt"
    torch.save(crafted("config.task", saved, marker), path)
    result = run_module("seq2seq.generate", f"checkpoint={path}", "index=0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not one of seq2seq.tasks" in result.stderr, result.stderr
    assert not marker.exists()
    script = REPO / "scripts" / "attention_heatmap.py"
    result = subprocess.run(
        [sys.executable, str(script), str(path), "--val-index", "0", "--out", str(tmp_path / "a.png")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr and not marker.exists()


def retyped(checkpoint: dict, dtype: torch.dtype) -> None:
    name = next(iter(checkpoint["model_state"]))
    checkpoint["model_state"][name] = checkpoint["model_state"][name].to(dtype)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["model"].update(name="Nope"), "unknown model 'Nope'"),
        (lambda c: c["model"]["args"].update(extra=1), "unknown key extra"),
        (lambda c: c["model"]["args"].pop("vocab_size"), "missing vocab_size"),
        (lambda c: c["model"]["args"].update(hidden_size="32"), "hidden_size='32' is not of type int"),
        (lambda c: c["model"]["args"].update(hidden_size=-4), "hidden_size=-4 is not a positive size"),
        (lambda c: c["model"]["args"].update(hidden_size=64), "weights do not fit"),
        (
            lambda c: c["model"]["args"].update(vocab_size=99),
            "vocabulary has 13 tokens but the model's vocab_size is 99",
        ),
        (lambda c: c["task"].update(kind="os"), "task kind 'os'"),
        (lambda c: c["task"].update(question_width="5"), "question_width='5' is not of type int"),
        (lambda c: c["task"].pop("reverse"), "missing reverse"),
        (lambda c: c["model_state"].update(extra=torch.zeros(1)), "weights do not fit"),
        (lambda c: c.update(model_state=[1, 2]), "model_state is not a mapping of names to tensors"),
        (lambda c: c["model_state"].update({0: c["model_state"].popitem()[1]}), "not a mapping of names to tensors"),
        (lambda c: retyped(c, torch.float8_e4m3fn), "is of type torch.float8_e4m3fn, not one"),
        (lambda c: retyped(c, torch.float64), "weights do not fit"),  # loaded, it would be cast silently
        (lambda c: retyped(c, torch.int64), "weights do not fit"),
        (lambda c: c["task"]["vocab"].__setitem__(3, "ab"), "a fixed-width vocabulary is single characters"),
        (lambda c: c["task"]["vocab"].remove("_"), "vocabulary has 12 tokens"),
        (lambda c: c["task"]["vocab"].__setitem__(3, 5), r"vocab=.* is not of type list\[str\]"),
    ],
)
def test_malformed_specs_are_one_line_checkpoint_errors(good, tmp_path, change, message):
    _, saved = good
    c = {**saved, "model": {**saved["model"], "args": {**saved["model"]["args"]}}, "task": {**saved["task"]}}
    c["task"]["vocab"] = list(c["task"]["vocab"])
    c["model_state"] = dict(saved["model_state"])
    change(c)
    torch.save(c, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=message):
        ckpt.read_model(tmp_path / "bad.pt")


def test_a_malformed_spec_is_one_line_on_the_command_line(good, tmp_path):
    _, saved = good
    torch.save({**saved, "model": {"name": "os.system", "args": {}}}, tmp_path / "bad.pt")
    result = run_module("seq2seq.generate", f"checkpoint={tmp_path / 'bad.pt'}", "question=1+2")
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "unknown model 'os.system'" in result.stderr


def test_version_1_checkpoints_still_load(good, tmp_path):
    path, saved = good
    name, args = saved["model"]["name"], saved["model"]["args"]
    v1 = {**saved, "version": 1, "model": {"_target_": f"seq2seq.models.{name}", **args}}
    torch.save(v1, tmp_path / "v1.pt")
    assert seq2seq.load(tmp_path / "v1.pt").generate(["1+2", "33+4"]) == seq2seq.load(path).generate(["1+2", "33+4"])


def test_a_crafted_progress_is_refused_field_by_field():
    from seq2seq.training.state import RunState

    good = {**RunState(step=5, top=[[0.5, 1]]).as_dict(), "rng": torch.zeros(3)}
    assert RunState.from_saved(good, "x.pt").step == 5
    for bad, message in (
        ({**good, "step": "5"}, r"x.pt: progress: step='5' is not of type int"),
        ({**good, "evil": 1}, r"x.pt: progress: unknown key evil"),
        ({**good, "top": [["a", 1]]}, r"x.pt: progress: top=\[\['a', 1\]\] is not of type"),
        ([1, 2], r"x.pt: progress: expected a mapping"),
    ):
        with pytest.raises(CheckpointError, match=message):
            RunState.from_saved(bad, "x.pt")


def refused(path: Path, message: str, *args: str) -> None:
    result, peak, seconds = measured("seq2seq.generate", f"checkpoint={path}", *(args or ("question=1+2",)))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert message in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert peak < PEAK_MB and seconds < SECONDS, (peak, seconds)


@pytest.mark.slow
def test_expanded_weights_declaring_huge_sizes_are_refused_in_bounded_memory(tiny_run, tmp_path):
    """A small file whose weights are torch.zeros(1).expand(shape) for hidden_size=12000 once allocated
    4.7 GB: the views are refused before the model is built."""
    state = torch.load(tiny_run / "best.pt", weights_only=True)
    hidden = 12000
    state["model"]["args"]["hidden_size"] = hidden
    with torch.device("meta"):
        from seq2seq.models import Seq2seq

        shapes = {k: v.shape for k, v in Seq2seq(**state["model"]["args"]).state_dict().items()}
    state["model_state"] = {k: torch.zeros(1).expand(shape) for k, shape in shapes.items()}
    path = write_state(state, tmp_path / "expanded.pt")
    assert path.stat().st_size < 200_000  # the optimizer state included
    refused(path, "is an expanded or strided view")


@pytest.mark.slow
def test_sizes_beyond_the_caps_are_refused_before_any_build(tiny_run, tiny_lm_run, tmp_path):
    lm = torch.load(tiny_lm_run / "best.pt", weights_only=True)
    lm["model"]["args"]["num_layers"] = 2**31  # hung inside the meta build
    refused(write_state(lm, tmp_path / "layers.pt"), "num_layers=2147483648 must be from 1 to 64", "prompt=a")
    addition = torch.load(tiny_run / "best.pt", weights_only=True)
    addition["task"]["answer_width"] = 10**9  # a decode of 10**9 steps
    refused(write_state(addition, tmp_path / "width.pt"), "task state does not make a codec")
    addition = torch.load(tiny_run / "best.pt", weights_only=True)
    addition["config"]["task"]["num_examples"] = 10**9  # generate index=0 rebuilt the task: 10**9 questions
    refused(write_state(addition, tmp_path / "examples.pt"), "num_examples=1000000000 must be from 1 to 10,000,000",
            "index=0")  # fmt: skip


@pytest.mark.slow
def test_non_finite_weights_are_refused(tiny_run, tmp_path):
    for bad in (float("nan"), float("inf")):
        state = torch.load(tiny_run / "best.pt", weights_only=True)
        name = next(iter(state["model_state"]))
        state["model_state"][name] = state["model_state"][name].clone().fill_(bad)
        refused(write_state(state, tmp_path / "bad.pt"), "holds NaN or infinite values")


def test_meta_sparse_and_complex_tensors_are_refused():
    from seq2seq.core.errors import CheckpointError
    from seq2seq.training import checkpoint as ckpt

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
def test_an_optimizer_state_of_the_wrong_shapes_is_refused_not_a_segfault(tiny_run, tmp_path):
    """Adam's exp_avg of other shapes crashed the fused Adam (exit 139) on resume."""
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(tiny_run / "last.pt", weights_only=True)
    first = next(iter(state["optimizer"]["state"].values()))
    first["exp_avg"] = torch.zeros(3)
    first["exp_avg_sq"] = torch.zeros(3)
    write_state(state, run / "last.pt")
    args = [*TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={run}"]
    result = subprocess.run([sys.executable, "-m", "seq2seq.train", *args], capture_output=True, text=True,
                            cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "optimizer state 0.exp_avg is (3,) torch.float32, its parameter" in result.stderr


def test_the_archive_is_checked_before_any_entry_is_read(tiny_run, tmp_path):
    import struct
    import zipfile

    from seq2seq.core.errors import CheckpointError
    from seq2seq.training import checkpoint as ckpt

    raw = bytearray((tiny_run / "best.pt").read_bytes())
    at = raw.find(b"PK\x01\x02")  # the first central-directory record: uncompressed size at offset 24
    raw[at + 24 : at + 28] = struct.pack("<I", 0xFFFFFFF0)
    (tmp_path / "lying.pt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"its entries declare [\d,]+ bytes in a file of"):
        ckpt.read(tmp_path / "lying.pt")
    with zipfile.ZipFile(tmp_path / "deflated.pt", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * 10_000_000)  # 10 MB that compress to a few KB
    with pytest.raises(CheckpointError, match=r"compressed entry 'archive/data\.pkl'"):
        ckpt.read(tmp_path / "deflated.pt")
    state = torch.load(tiny_run / "best.pt", weights_only=True)
    state["payload"] = "anything"
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match="unknown top-level key 'payload'"):
        ckpt.read(tmp_path / "extra.pt")


@pytest.mark.slow
def test_a_long_input_file_is_answered_in_bounded_memory(tiny_run, tmp_path):
    """generate file= answered every line in one batch: 3,000,000 lines took 5.9 GB. Lines are read and
    answered CHUNK at a time, so 100 times more lines cost about the same memory."""
    peaks = []
    for n in (2_000, 200_000):
        path = tmp_path / f"{n}.txt"
        path.write_text("".join(f"{i % 100}+{i % 37}\n" for i in range(n)))
        result, peak, _ = measured("seq2seq.generate", f"checkpoint={tiny_run}", f"file={path}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(result.stdout.splitlines()) == n and result.stdout.startswith("0+0\t")
        peaks.append(peak)
    assert peaks[1] - peaks[0] < 60, peaks
