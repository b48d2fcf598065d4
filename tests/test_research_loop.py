"""After training: evaluate a checkpoint (the numbers its run logged, predictions written out, errors by
group), pick runs by metric (`best`, `best:<metric>@<folder>`, `latest` skipping debug runs), list them
(`seq2seq-runs`) and say what was searched."""

import json
import math
from pathlib import Path

import pytest

from seq2seq.core.errors import ConfigError, DataError
from seq2seq.inference import find
from seq2seq.inference.evaluate import evaluate
from seq2seq.train import train
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.events import curves
from seq2seq.training.runs import read_status

from .helpers import compose_train, run_module

SMALL = ["task.num_examples=400", "task.max_digits=2", "task.batch_size=32", "model.wordvec_size=8",
         "model.hidden_size=32", "trainer.device=cpu", "trainer.progress=false"]  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """outputs/ of two Peeky runs (seeds 0 and 1, two and three epochs) and a debug run, the newest."""
    root = tmp_path_factory.mktemp("loop")
    for seed, epochs in ((0, 2), (1, 3)):
        run = root / "outputs" / "peeky_addition" / f"seed{seed}"
        train(compose_train(run, "experiment=peeky_addition", *SMALL, f"seed={seed}", f"trainer.max_epochs={epochs}"))
    debug = root / "outputs" / "debug" / "peeky_addition" / "tiny"
    train(compose_train(debug, "experiment=peeky_addition", "debug=tiny", "trainer.max_epochs=1"))
    return root


def test_best_picks_by_the_metric_in_its_direction_and_skips_debug_runs(folder):
    outputs = folder / "outputs"
    values = {p.name: read_status(p)["best"] for p in (outputs / "peeky_addition").iterdir()}
    file, note = find.find("best", outputs=outputs)
    assert read_status(file.parent)["best"] == max(values.values())
    assert f"the best of 2 runs in {outputs}" in note and "1 debug run(s)" in note
    assert f"checkpoint=best@{outputs / 'debug'}" in note  # the way to the debug runs keeps the choice asked for
    _, note = find.find("best:val/loss", outputs=outputs)
    assert f"checkpoint=best:val/loss@{outputs / 'debug'}" in note
    latest, note = find.find("latest", outputs=outputs)
    assert latest.parent.parent.name == "peeky_addition" and "1 debug run(s)" in note  # the debug run is newer
    loss, _ = find.find(f"best:val/loss@{outputs / 'peeky_addition'}")
    lowest = min(min(v for _, v in curves(p, "val/loss")["val/loss"]) for p in (outputs / "peeky_addition").iterdir())
    assert min(v for _, v in curves(loss.parent, "val/loss")["val/loss"]) == lowest  # losses: lowest wins
    debug, _ = find.find(f"latest@{outputs / 'debug'}")
    assert debug.parent.name == "tiny"  # named on purpose, the debug folder is searched
    for bad, says in [("best:acc", "write latest"), ("latest:val/acc", "latest takes no metric"),
                      (f"best:val/bleu@{outputs}", "has a recorded val/bleu")]:  # fmt: skip
        with pytest.raises(ConfigError, match=says):
            find.find(bad, outputs=outputs)
    with pytest.raises(ConfigError, match=rf"{folder / 'nothing'} does not exist"):
        find.find("best", outputs=folder / "nothing")
    assert find.find("best", outputs=folder / "outputs" / "debug")[0] == debug  # a debug folder named: searched


def test_evaluate_prints_what_the_run_logged_and_writes_predictions(folder, tmp_path):
    run = folder / "outputs" / "peeky_addition" / "seed1"
    result = evaluate(run / "best.pt", device="cpu")
    status = read_status(run)
    assert result.metrics["val/acc"] == status["best"]  # the same greedy decoding, the same questions
    epoch = ckpt.read(run / "best.pt")["progress"]["epoch"]
    logged = dict(curves(run, "val/loss")["val/loss"])[epoch]  # the loss logged at best.pt's epoch
    assert math.isclose(result.metrics["val/loss"], logged, rel_tol=1e-5)
    assert len(result.rows) == 40 and set(result.rows[0]) == {"input", "target", "prediction", "correct", "loss"}
    right = sum(row["correct"] for row in result.rows)
    assert right / 40 == pytest.approx(result.metrics["val/acc"])
    assert all(str(int(r["input"].split("+")[0]) + int(r["input"].split("+")[1])) == r["target"] for r in result.rows)
    digits = result.breakdown["digits"]
    assert sum(total for _, total in digits.values()) == 40 and set(result.breakdown) == {"digits", "carries"}
    # a file of one's own: the same format as training, widths and characters checked
    mine = tmp_path / "small.txt"
    mine.write_text("".join(f"{a}+{b}".ljust(5) + f"_{a + b}".ljust(4) + "\n" for a in range(10) for b in range(10)))
    small = evaluate(run, file=str(mine), device="cpu")
    assert set(small.metrics) == {"file/loss", "file/acc", "file/char_acc"} and len(small.rows) == 100
    assert small.breakdown["digits"] == {"digits=1": (sum(r["correct"] for r in small.rows), 100)}
    (tmp_path / "wide.txt").write_text("1+1      _2  \n")
    with pytest.raises(DataError, match="characters wide; this model was trained on 5 and 4"):
        evaluate(run, file=str(tmp_path / "wide.txt"), device="cpu")
    with pytest.raises(DataError, match=r"split=train: this checkpoint's task \(AdditionTask\) has split val"):
        evaluate(run, split="train", device="cpu")


@pytest.mark.slow
def test_the_evaluate_command_writes_jsonl_or_csv_and_says_where(folder):
    cwd = folder  # outputs/ is here: checkpoint=best searches it
    result = run_module("seq2seq.evaluate", "checkpoint=best", "split=test", cwd=cwd)
    assert result.returncode == 0, result.stderr
    best = max(read_status(p)["best"] for p in (folder / "outputs" / "peeky_addition").iterdir())
    assert f"val/acc {best:.6f}" in result.stdout.splitlines()
    assert "note: checkpoint=best: the best of 2 runs" in result.stderr and "the book's test set" in result.stderr
    written = next((folder / "evaluate").glob("seed*-val.jsonl"))
    assert len([json.loads(line) for line in written.read_text().splitlines()]) == 40
    as_csv = run_module("seq2seq.evaluate", "checkpoint=latest", f"out={folder / 'p.csv'}", cwd=cwd)
    assert as_csv.returncode == 0 and (folder / "p.csv").read_text().startswith("input,target,prediction,correct")
    bad = run_module("seq2seq.evaluate", "checkpoint=best", "out=p.txt", cwd=cwd)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: out=p.txt: name a .jsonl or .csv file"
    table = run_module("seq2seq.runs", "outputs", "--sort", "best", cwd=cwd)
    lines = table.stdout.splitlines()
    assert table.returncode == 0 and len(lines) == 3
    assert lines[0].split()[:4] == ["run", "experiment", "status", "metric"]
    assert "1 debug run(s) left out" in table.stderr and "peeky_addition/seed1" in table.stdout
    assert float(lines[1].split()[4]) >= float(lines[2].split()[4])  # best first


def test_language_models_evaluate_the_test_split_per_sentence(tiny_lm_run, monkeypatch):
    data = tiny_lm_run.parent / "ptb"
    import os

    here = os.getcwd()
    os.chdir(tiny_lm_run.parent)  # the checkpoint's data is read from the folder the command runs in
    try:
        result = evaluate(tiny_lm_run, split="test", device="cpu")
    finally:
        os.chdir(here)
    logged = curves(tiny_lm_run, "test/ppl")["test/ppl"][-1][1]
    assert result.metrics["test/ppl"] == pytest.approx(logged, rel=1e-6)
    sentences = (data / "ptb.test.txt").read_text().count("\n")
    assert len(result.rows) == sentences and {row["input"] for row in result.rows} == {"a b c d e f"}
    assert all(row["tokens"] == 7 for row in result.rows[1:])  # six words and the end of the sentence
    monkeypatch.setenv("PTB_DIR", str(data))  # where a user keeps Penn Treebank: read from there too
    assert evaluate(tiny_lm_run, split="test", device="cpu").metrics == result.metrics
    monkeypatch.delenv("PTB_DIR")
    with pytest.raises(Exception, match="lies outside"):
        evaluate(tiny_lm_run, split="test", device="cpu")  # neither here nor PTB_DIR


def test_small_sums_are_in_the_data_when_asked():
    from seq2seq.data.addition import generate_addition

    plain = generate_addition(200, 3, seed=0)
    small = generate_addition(200, 3, seed=0, small_sums=True)
    ones = {q.strip() for q in small.questions if len(q.strip()) == 3}
    assert len(ones) == 55 and len({q.strip() for q in plain.questions if len(q.strip()) == 3}) < 55
    assert generate_addition(200, 3, seed=0).questions == plain.questions  # the default data is unchanged


def test_the_explorer_opens_on_the_best_run_of_the_newest_experiment():
    from seq2seq.explore.page import opening
    from seq2seq.explore.runs import Run

    def run(id, experiment, best, metric="val/acc"):
        return Run(id, Path(id), "fixed_width", experiment=experiment, metric=metric, best=best)

    found = [run("debug/x", "peeky_addition", 0.0), run("b", "peeky_addition", 0.5), run("a", "peeky_addition", 0.9),
             run("old", "rnnlm_ptb", 120.0, "val/ppl")]  # fmt: skip
    assert opening(found).id == "a"
    assert opening([run("lm1", "rnnlm", 130.0, "val/ppl"), run("lm2", "rnnlm", 120.0, "val/ppl")]).id == "lm2"
    assert opening([run("new", "x", None)]).id == "new" and opening([]) is None
