"""A hostile user's command lines in real processes: paths that climb out, files that claim too much, a
kill or a signal in the middle of a write, a disk that fills. Each ends in one line and loses nothing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seq2seq.core.files import CRASH_ENV

from .helpers import run_module


def one_line(result, says: str, exit_code: int = 2) -> None:
    """A refused command: the exit code, no traceback, and a single line saying `says`."""
    assert result.returncode == exit_code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("note: ")]
    assert says in result.stderr and len([line for line in lines if "error" in line.lower()]) == 1, lines


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.slow
def test_a_run_name_cannot_climb_out_of_outputs(tmp_path):
    result = run_module("seq2seq.train", "debug=tiny", "name=../../x", cwd=tmp_path)
    one_line(result, "must be a plain name")
    assert list(tmp_path.parent.glob("x")) == [] and not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_kill_mid_export_keeps_the_old_folder_and_the_next_export_clears_up(peeky_run, tmp_path):
    """kill -9 after the new folder is staged, before it takes the old one's place: the old folder stays
    byte for byte, and the next export removes the dead process's staging folder."""
    out = tmp_path / "shared"
    assert run_module("seq2seq.export", f"checkpoint={peeky_run}", f"out={out}").returncode == 0
    before = tree(out)
    cmd = [sys.executable, "-m", "seq2seq.export", f"checkpoint={peeky_run}", f"out={out}"]
    env = {**os.environ, CRASH_ENV: "export-staged"}
    killed = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert killed.returncode == -signal.SIGKILL
    assert tree(out) == before
    assert [p.name for p in tmp_path.glob(".shared.staged-*")]  # the dead process's staging folder
    again = run_module("seq2seq.export", f"checkpoint={peeky_run}", f"out={out}")
    assert again.returncode == 0, again.stderr
    assert list(tmp_path.glob(".shared.staged-*")) == [] and set(tree(out)) == set(before)


@pytest.mark.slow
def test_sigterm_during_an_onnx_export_is_one_line_and_leaves_nothing(peeky_run, tmp_path):
    pytest.importorskip("onnx")
    out = tmp_path / "graphs"
    cmd = [sys.executable, "-m", "seq2seq.export", f"checkpoint={peeky_run}", f"out={out}", "format=onnx"]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".graphs.staged-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the export writes its staging folder
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    if process.returncode == 0:  # the export won the race: a finished folder, which is fine too
        assert (out / "decoder_step.onnx").is_file()
        return
    assert process.returncode == 128 + signal.SIGTERM and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "seq2seq.export: stopped by SIGTERM"
    assert not out.exists() and list(tmp_path.glob(".graphs.staged-*")) == []


@pytest.mark.slow
def test_files_that_claim_too_much_are_refused_in_one_line(peeky_run, tmp_path):
    """An exported generation config asking for beam search over 100,000 tokens, or holding 1e999999999; a
    call asking for 10,000 samples of 100,000 tokens; a sweep with one bad value among many."""
    folder = tmp_path / "shared"
    assert run_module("seq2seq.export", f"checkpoint={peeky_run}", f"out={folder}").returncode == 0
    path = folder / "generation_config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "strategy": "beam", "max_new_tokens": 100_000}))
    one_line(run_module("seq2seq.generate", f"checkpoint={folder}", "question=16+75"), "at most 1,000")
    path.write_text(path.read_text().replace("100000", "1e999999999"))
    one_line(run_module("seq2seq.generate", f"checkpoint={folder}", "question=16+75"), "not a finite number")
    budget = ["strategy=sample", "num_samples=10000", "max_new_tokens=100000"]
    started = time.monotonic()
    one_line(run_module("seq2seq.generate", f"checkpoint={peeky_run}", "question=16+75", *budget), "at most 2,000,000")
    values = ["seed=range(0,100000)", "task.batch_size=32,0"]
    sweep = run_module("seq2seq.train", "-m", "debug=tiny", *values, cwd=tmp_path)
    one_line(sweep, "task.batch_size=0: must be a positive number")
    assert time.monotonic() - started < 60 and not (tmp_path / "multirun").exists()  # before any job ran


@pytest.mark.slow
def test_tiny_probabilities_and_penalties(peeky_run):
    sample = ["strategy=sample", "top_p=1e-46"]
    tiny_p = run_module("seq2seq.generate", f"checkpoint={peeky_run}", "question=16+75", *sample)
    greedy = run_module("seq2seq.generate", f"checkpoint={peeky_run}", "question=16+75")
    assert tiny_p.returncode == 0 and tiny_p.stdout == greedy.stdout, tiny_p.stderr  # the likeliest token is kept
    penalty = run_module("seq2seq.generate", f"checkpoint={peeky_run}", "question=16+75", "repetition_penalty=1e-39")
    one_line(penalty, "must be from 0.01 to 100")


@pytest.mark.slow
def test_a_full_disk_is_one_line_in_training_and_generation(peeky_run, tmp_path):
    def limited(kb: int, command: str) -> subprocess.CompletedProcess:
        script = f'ulimit -f {kb}; exec "{sys.executable}" -m {command}'
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path)

    one_line(limited(20, f"seq2seq.train debug=tiny hydra.run.dir={tmp_path / 'run'}"), "ulimit -f")
    assert not (tmp_path / "run").exists()
    (tmp_path / "questions.txt").write_text("".join(f"{i % 100}+{i % 37}\n" for i in range(3000)))
    answers = limited(1, f"seq2seq.generate checkpoint={peeky_run} file=questions.txt > answers.txt")
    one_line(answers, "cannot write: File too large", exit_code=1)


@pytest.mark.slow
def test_refused_runs_leave_an_existing_folder_as_it_was(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    typo = run_module("seq2seq.train", "debug=tiny", "task.max_digitz=3", f"hydra.run.dir={run}", cwd=tmp_path)
    one_line(typo, "did you mean task.max_digits?")
    assert list(run.iterdir()) == []
    data = tmp_path / "ptb"
    data.mkdir()
    for split in ("train", "valid", "test"):  # a byte-order mark, then a word the training split lacks
        words = "zzz a b" if split == "test" else "a b c d e f"
        (data / f"ptb.{split}.txt").write_text("\ufeff" + f" {words} \n" + " a b c d e f \n" * 30, encoding="utf-8")
    sizes = ["task.batch_size=2", "task.time_size=4", "model.hidden_size=8", "model.wordvec_size=8"]
    refused = run_module("seq2seq.train", "experiment=rnnlm_ptb", f"task.data_dir={data}", *sizes,
                         f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "ptb.test.txt:1: 'zzz' is not in the training vocabulary" in refused.stderr
    assert list(run.iterdir()) == []  # no .lock, no .hydra/, no train.log


def test_a_file_added_while_exporting_is_kept_and_the_export_refused(tmp_path):
    """The target is checked again once the new folder has taken its place: a file someone put there
    meanwhile sends the old folder back, with that file, and the export is refused."""
    from seq2seq.core.errors import ConfigError
    from seq2seq.core.files import write_folder

    out = tmp_path / "shared"
    write_folder(out, lambda staging: (staging / "config.json").write_text("{}"))
    before = (out / "config.json").read_text()

    def fill(staging: Path) -> None:
        (staging / "config.json").write_text('{"new": 1}')
        (out / "thesis.txt").write_text("a user's work")  # arrives while the export writes

    with pytest.raises(ConfigError, match=r"thesis\.txt appeared there while exporting"):
        write_folder(out, fill)
    assert (out / "thesis.txt").read_text() == "a user's work" and (out / "config.json").read_text() == before


@pytest.mark.slow
def test_an_edited_generation_config_is_not_written_over(peeky_run, tmp_path):
    folder = tmp_path / "shared"
    assert run_module("seq2seq.export", f"checkpoint={peeky_run}", f"out={folder}").returncode == 0
    edited = json.dumps({"strategy": "beam", "beam_size": 3})
    (folder / "generation_config.json").write_text(edited)
    again = run_module("seq2seq.export", f"checkpoint={peeky_run}", f"out={folder}")
    one_line(again, "already holds generation_config.json, which this project did not write there (or which changed")
    assert (folder / "generation_config.json").read_text() == edited
    assert oct((folder / "model.safetensors").stat().st_mode & 0o777) == "0o644"  # as the other files


def test_weights_that_overflow_are_an_error_in_every_strategy(peeky_run):
    import torch

    import seq2seq
    from seq2seq.core.errors import CheckpointError

    model = seq2seq.load(peeky_run, device="cpu")
    with torch.no_grad():
        for p in model.module.parameters():
            p.fill_(3e38)  # finite, but every score overflows
    for options in ({}, {"strategy": "beam"}, {"strategy": "sample"}):
        with pytest.raises(CheckpointError, match="NaN or infinite scores"):
            model.generate("16+75", **options)


STARTS = [[sys.executable, "-m", "seq2seq.generate", "question=1+1"], ["seq2seq-train", "--help"]]


@pytest.mark.parametrize("command", STARTS)
def test_ctrl_c_while_a_command_starts_is_one_line(command):
    """Importing torch and Hydra takes a second or two before a command's own handlers are in place: a Ctrl-C
    then ends in one line too."""
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not on PATH (the package is not installed with its scripts)")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-1000:]
    assert stderr.strip().splitlines()[-1].endswith(("stopped by Ctrl-C while starting", "stopped by Ctrl-C"))
