import subprocess
import sys
from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq.core.errors import CheckpointError, DataError
from seq2seq.data import ptb
from seq2seq.tasks.codec import codec_from_state
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.loop import train

from .helpers import TINY_ADDITION, run_module


def run_generate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return run_module("seq2seq.generate", *args, stdin=stdin)


def test_answers_match_the_validation_decoding(peeky_run):
    model, saved = ckpt.read_model(peeky_run / "best.pt")
    task = saved["task"]
    assert task["reverse"] is True
    questions = ["12+3", "7+70", "99+99"]
    x, lengths = codec_from_state(task).encode(questions)
    assert x.shape == (3, 5) and lengths is None
    vocab = task["vocab"]
    assert "".join(vocab[i] for i in x[0].tolist()) == "12+3 "[::-1]  # padded, then reversed as in training
    answers = seq2seq.load(peeky_run).generate(questions)
    assert len(answers) == 3 and all(a == a.strip() for a in answers)
    # the API's greedy answers are the model's own greedy decoding of the encoded questions
    codec = codec_from_state(task)
    assert answers == [codec.decode(row) for row in model.generate(x, codec.start_id, codec.steps).tolist()]


@pytest.mark.parametrize(
    ("questions", "message"),
    [
        (["1+2345"], "has 6 characters; this model takes at most 5"),
        (["1*2"], r"characters \['\*'\] are not in the model's vocabulary"),
        (["   "], "is empty"),
        ([], "no questions"),
    ],
)
def test_bad_questions_are_refused(peeky_run, questions, message):
    _, saved = ckpt.read_model(peeky_run / "best.pt")
    with pytest.raises(DataError, match=message):
        codec_from_state(saved["task"]).encode(questions)


@pytest.mark.slow
def test_cli_answers_a_question_and_standard_input_in_a_fresh_process(peeky_run):
    one = run_generate(f"checkpoint={peeky_run / 'best.pt'}", "question=12+3")
    assert one.returncode == 0, one.stderr
    assert one.stdout.strip() == seq2seq.load(peeky_run / "best.pt").generate("12+3")
    many = run_generate(f"checkpoint={peeky_run}", "file=-", stdin="12+3\n7+70\n")
    assert many.returncode == 0, many.stderr
    assert [line.split("\t")[0] for line in many.stdout.strip().split("\n")] == ["12+3", "7+70"]


@pytest.mark.slow
def test_cli_reports_bad_input_without_a_traceback(peeky_run, tmp_path):
    bad = run_generate(f"checkpoint={peeky_run / 'best.pt'}", "question=1*2")
    assert bad.returncode == 2 and "not in the model's vocabulary" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    junk = run_generate(f"checkpoint={tmp_path / 'junk.pt'}", "question=1+2")
    assert junk.returncode == 2 and "not a readable checkpoint" in junk.stderr


@pytest.mark.slow
def test_language_model_generation_from_a_checkpoint(tmp_path, make_cfg):
    for split in ptb.SPLITS:
        (tmp_path / f"ptb.{split}.txt").write_text(" the cat sat on the mat \n N dogs <unk> ran \n" * 10)
    cfg = make_cfg(
        "experiment=rnnlm_ptb",
        f"task.data_dir={tmp_path}",
        "task.batch_size=2",
        "task.time_size=5",
        "task.eval_batch_size=2",
        "trainer.max_epochs=1",
        "trainer.progress=false",
        out=tmp_path / "lm",
    )
    train(cfg)
    args = [f"checkpoint={tmp_path / 'lm'}", "prompt=the cat", "max_new_tokens=30", "num_samples=2", "seed=3"]
    first, again = run_generate(*args), run_generate(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout  # the seed fixes the samples
    free = run_generate(
        f"checkpoint={tmp_path / 'lm'}", "max_new_tokens=30", "num_samples=2", "seed=3", "--", "the", "cat"
    )
    assert free.stdout == first.stdout  # the prompt as free text after --
    samples = first.stdout.strip().split("\n\n")
    assert len(samples) == 2 and all(s.startswith("the cat") for s in samples)
    words = first.stdout.split()
    assert not {"N", "<unk>", "<eos>"} & set(words)
    unknown = run_generate(f"checkpoint={tmp_path / 'lm'}", "prompt=zebra")
    assert unknown.returncode == 2 and "zebra" in unknown.stderr
    empty = run_generate(f"checkpoint={tmp_path / 'lm'}", "prompt=''")
    assert empty.returncode == 2 and "prompt is empty" in empty.stderr
    for bad, message in (("temperature=0", "temperature=0"), ("temperature=1e-40", "temperature=1e-40")):
        cold = run_generate(f"checkpoint={tmp_path / 'lm'}", bad)
        assert cold.returncode == 2 and message in cold.stderr and "Traceback" not in cold.stderr
    # the same samples from Python, with the same seed
    lm = seq2seq.load(tmp_path / "lm")
    assert lm.generate("the cat", max_new_tokens=30, num_samples=2, seed=3) == samples
    # beam search and greedy decoding for language models
    beams = lm.generate("the cat", strategy="beam", beam_size=4, n_best=2, max_new_tokens=6)
    assert len(beams) == 2 and all(b.startswith("the cat") for b in beams)
    greedy = lm.generate("the cat", strategy="greedy", max_new_tokens=6)
    assert lm.generate("the cat", strategy="beam", beam_size=1, max_new_tokens=6) == greedy


def test_truncated_and_foreign_files_are_refused(peeky_run, tmp_path):
    data = (peeky_run / "best.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        ckpt.read(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a seq2seq checkpoint"):
        ckpt.read(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        ckpt.read(tmp_path / "missing.pt")


@pytest.mark.slow
def test_attention_heatmap_script(tmp_path, make_cfg, peeky_run):
    train(
        make_cfg(
            *TINY_ADDITION,
            "experiment=attention_addition",
            "model.wordvec_size=8",
            "model.hidden_size=32",
            "trainer.max_epochs=1",
            out=tmp_path / "attention",
        )
    )
    script = Path(__file__).resolve().parents[1] / "scripts" / "attention_heatmap.py"
    out = tmp_path / "attention.png"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "attention" / "best.pt"), "12+3", "7+70", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    # a model without attention is refused with a message, not a traceback
    plain = subprocess.run(
        [sys.executable, str(script), str(peeky_run / "best.pt"), "1+2"], capture_output=True, text=True
    )
    assert plain.returncode == 1 and "has no attention" in plain.stderr and "Traceback" not in plain.stderr


@pytest.mark.slow
def test_cli_beam_search_with_n_best(peeky_run):
    model = seq2seq.load(peeky_run)
    greedy = model.generate("12+3")
    assert model.generate("12+3", strategy="beam", beam_size=1) == greedy
    result = run_generate(f"checkpoint={peeky_run}", "question=12+3", "strategy=beam", "beam_size=4", "n_best=3")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.rstrip("\n").split("\t")) == 3  # an untrained model's answers may be blank
    bad = run_generate(f"checkpoint={peeky_run}", "question=12+3", "strategy=beam", "beam_size=2", "n_best=3")
    assert bad.returncode == 2 and "n_best" in bad.stderr


@pytest.mark.slow
def test_old_cli_spellings_still_work_with_a_note(peeky_run):
    old = run_generate(f"checkpoint={peeky_run}", "question=12+3", "decode.beam_size=4", "decode.n_best=2")
    assert old.returncode == 0, old.stderr
    assert "decode.beam_size= is now beam_size=" in old.stderr
    new = run_generate(f"checkpoint={peeky_run}", "question=12+3", "strategy=beam", "beam_size=4", "n_best=2")
    assert old.stdout == new.stdout


@pytest.mark.slow
def test_free_text_after_a_double_dash_needs_no_quoting(peeky_run):
    plain = run_generate(f"checkpoint={peeky_run}", "question=12+3")
    free = run_generate(f"checkpoint={peeky_run}", "--", "12+3")
    assert free.returncode == 0 and free.stdout == plain.stdout, free.stderr
    date = run_generate(f"checkpoint={peeky_run}", "--", "september", "27,", "1994")
    assert date.returncode == 2 and "input 'september 27, 1994' has 18 characters" in date.stderr  # not a lexer error
    both = run_generate(f"checkpoint={peeky_run}", "question=1+2", "--", "12+3")
    assert both.returncode == 2 and "give the input once" in both.stderr
