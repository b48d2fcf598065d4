"""Every model family through every feature, each from its `debug=tiny` run (configs/debug/): the recurrent
cells (LSTM, GRU, plain RNN) and the Transformers, as encoder-decoders on addition and as language models on
Penn Treebank. Training and exact resume mid-epoch, every decoding strategy through the Python API, the
shared folder, ONNX export answering as PyTorch does, evaluation, the explorer's steps and attention, and bad
questions refused alike. Sweeps, torchrun and chat are in the slow set."""

import math
import os
import shutil
from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq.core.errors import DataError
from seq2seq.explore import analysis
from seq2seq.inference import pretrained, serving
from seq2seq.inference.evaluate import evaluate
from seq2seq.inference.serving import OnnxModel
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.loop import train

from .helpers import PTB_DIR, assert_ok, assert_refused_alike, assert_same_run, compose_train, run_module, scalars

# model.cell picks the recurrent family; the decoders vary so that each cell meets attention somewhere.
SEQ2SEQ = {
    "lstm": ["experiment=peeky_addition"],
    "gru": ["experiment=peeky_addition", "model.cell=gru"],
    "rnn": ["experiment=attention_addition", "model.cell=rnn"],
    "transformer": ["experiment=transformer_addition"],
}
LANGUAGE_MODELS = {
    "lstm": ["experiment=rnnlm_ptb"],
    "gru": ["experiment=rnnlm_ptb", "model.cell=gru"],
    "rnn": ["experiment=rnnlm_ptb", "model.cell=rnn"],
    "transformer": ["experiment=transformer_ptb"],
}
QUESTIONS = [f"{a}+{b}" for a in range(0, 100, 7) for b in range(0, 100, 9)]
EVERY_WAY = [
    {"strategy": "greedy"},
    {"strategy": "greedy", "max_new_tokens": 2, "skip": ["1"]},
    {"strategy": "beam", "beam_size": 3, "n_best": 2, "length_penalty": 0.5},
    {"strategy": "sample", "num_samples": 3, "seed": 1, "temperature": 0.7, "top_k": 5},
    {"strategy": "sample", "seed": 2, "top_p": 0.9, "repetition_penalty": 1.3},
]


def needs_ptb():
    if not (PTB_DIR / "ptb.train.txt").is_file():
        pytest.skip(f"Penn Treebank not found in {PTB_DIR}: set PTB_DIR to the folder holding ptb.*.txt")


@pytest.fixture(scope="module", params=list(SEQ2SEQ))
def family(request, tmp_path_factory) -> tuple[str, list[str], Path]:
    """Each encoder-decoder family's debug=tiny run, two epochs."""
    name = request.param
    out = tmp_path_factory.mktemp(f"seq2seq_{name}") / "run"
    train(compose_train(out, *SEQ2SEQ[name], "debug=tiny", "trainer.max_epochs=2"))
    return name, SEQ2SEQ[name], out


def scrambled(run: Path, out: Path, seed: int = 0) -> Path:
    """A copy of a run whose best.pt holds its weights plus seeded noise: a tiny run answers most questions
    alike, these weights answer each differently, so that equal answers mean equal computations."""
    shutil.copytree(run, out)
    state = torch.load(out / "best.pt", weights_only=True)
    g = torch.Generator().manual_seed(seed)
    for key, value in state["model_state"].items():
        if value.is_floating_point():
            state["model_state"][key] = value + 0.5 * torch.randn(value.shape, generator=g)
    torch.save(state, out / "best.pt")
    return out


def test_each_family_trains_and_resumes_exactly_mid_epoch(family, tmp_path):
    _, overrides, run = family
    split = tmp_path / "split"
    train(compose_train(split, *overrides, "debug=tiny", "trainer.max_epochs=2", "trainer.max_steps=13"))
    assert ckpt.read(split / "last.pt")["progress"]["epoch"] == 1  # cut inside the second epoch
    train(compose_train(split, *overrides, "debug=tiny", "trainer.max_epochs=2", f"trainer.resume={split}/last.pt"))
    assert_same_run(run, split, ["train/loss", "val/loss", "val/acc"])


def test_each_family_decodes_every_way_and_is_shared_and_evaluated(family, tmp_path):
    _, _, run = family
    model = seq2seq.load(run, device="cpu")
    folder = pretrained.save(run / "best.pt", tmp_path / "shared")
    shared = seq2seq.load(folder, device="cpu")
    for options in EVERY_WAY:
        answers = model.generate(QUESTIONS[:12], **options)
        assert len(answers) == 12, options
        assert answers == model.generate(QUESTIONS[:12], **options), options  # seeded sampling repeats
        assert shared.generate(QUESTIONS[:12], **options) == answers, options
    result = evaluate(run / "best.pt", device="cpu")
    logged = ckpt.read(run / "best.pt")["metrics"]
    assert result.metrics["val/acc"] == logged["val/acc"]
    assert result.metrics["val/loss"] == pytest.approx(logged["val/loss"], rel=1e-5)
    with pytest.raises(DataError) as by_torch:
        model.generate("16+a")
    assert "not in the model's vocabulary" in str(by_torch.value)


def test_each_family_answers_the_same_through_onnx(family, tmp_path):
    """Greedy answers of the ONNX runner equal PyTorch's on weights that answer each question differently."""
    name, _, run = family
    noisy = scrambled(run, tmp_path / "noisy")
    folder = serving.export(noisy, tmp_path / "onnx")
    torch_model, onnx_model = seq2seq.load(noisy, device="cpu"), OnnxModel(folder)
    expected = torch_model.generate(QUESTIONS)
    assert len(set(expected)) > 10, expected[:10]  # varied answers: equality says something
    card = (folder / "README.md").read_text()
    assert f"tags: [seq2seq, {name}" in card and "OnnxModel" in card  # the card names the family and the graphs
    assert onnx_model.generate(QUESTIONS) == expected
    assert seq2seq.load(folder, device="cpu").generate(QUESTIONS) == expected
    sampled = onnx_model.generate(QUESTIONS[:10], strategy="sample", seed=3, top_k=4)
    assert sampled == onnx_model.generate(QUESTIONS[:10], strategy="sample", seed=3, top_k=4)
    assert_refused_alike(torch_model, onnx_model, ("16+a", "1234567+1", ""))


def test_each_family_shows_its_steps_and_attention_in_the_explorer(family):
    name, _, run = family
    model = seq2seq.load(run, device="cpu")
    answer = analysis.ask(model, "16+75", {})
    assert answer.text == model.generate("16+75")
    assert all(0 <= step.prob <= 1 and step.top[0][1] >= step.prob for step in answer.steps)
    module = model.module
    assert (answer.attention is not None) == module.has_attention
    if not module.has_attention:
        return
    layers, heads = module.attention_heads
    assert (layers, heads) == ((2, 2) if name == "transformer" else (1, 1))
    for layer in range(1, layers + 1):
        for head in (None, *range(1, heads + 1)):
            shown = analysis.ask(model, "16+75", {}, layer=layer, head=head)
            assert torch.allclose(torch.tensor(shown.attention).sum(-1), torch.ones(len(shown.steps)))
            if heads > 1:
                assert f"layer {layer} of {layers}" in shown.attention_of
                assert (f"head {head} of {heads}" if head else f"mean of {heads} heads") in shown.attention_of
    if heads > 1:  # the mean of the heads is the mean of what each head shows
        each = [torch.tensor(analysis.ask(model, "16+75", {}, head=h).attention) for h in range(1, heads + 1)]
        assert torch.allclose(torch.stack(each).mean(0), torch.tensor(answer.attention), atol=1e-6)
    if layers == 1:  # one layer and head: shown whatever is asked (models side by side share the page's fields)
        assert analysis.ask(model, "16+75", {}, layer=3, head=2).attention == answer.attention
        return
    for bad in ({"layer": layers + 1}, {"head": heads + 1}, {"layer": 0}, {"layer": True}, {"head": 10**5000}):
        with pytest.raises(DataError, match=f"attention {next(iter(bad))} .*: this model has"):
            analysis.ask(model, "16+75", {}, **bad)


@pytest.fixture(scope="module", params=list(LANGUAGE_MODELS))
def language_model(request, tmp_path_factory) -> tuple[str, list[str], Path]:
    """Each language model family's debug=tiny run on Penn Treebank (30 steps)."""
    needs_ptb()
    name = request.param
    out = tmp_path_factory.mktemp(f"lm_{name}") / "run"
    train(compose_train(out, *LANGUAGE_MODELS[name], "debug=tiny", f"task.data_dir={PTB_DIR}"))
    return name, [*LANGUAGE_MODELS[name], "debug=tiny", f"task.data_dir={PTB_DIR}"], out


def test_each_language_model_resumes_decodes_shares_and_answers_through_onnx(language_model, tmp_path, monkeypatch):
    _, overrides, run = language_model
    split = tmp_path / "split"
    train(compose_train(split, *overrides, "trainer.max_steps=13"))
    train(compose_train(split, *overrides, f"trainer.resume={split}/last.pt"))
    assert_same_run(run, split, ["train/loss"])  # weights, learning rate, the loss curve
    assert scalars(run, "val_step/ppl")[-1] == scalars(split, "val_step/ppl")[-1]  # (the split validated at 13 too)
    model = seq2seq.load(run, device="cpu")
    shared = seq2seq.load(pretrained.save(run / "best.pt", tmp_path / "shared"), device="cpu")
    for options in ({"strategy": "greedy", "max_new_tokens": 8}, {"strategy": "beam", "n_best": 2, "max_new_tokens": 5},
                    {"seed": 4, "num_samples": 2, "max_new_tokens": 8, "top_p": 0.9}):  # fmt: skip
        assert shared.generate("the market", **options) == model.generate("the market", **options), options
    onnx_lm = OnnxModel(serving.export(run, tmp_path / "onnx"))
    for prompt in (["the"], ["the", "market", "is"], ["<unk>", "of", "the", "company"]):
        with torch.no_grad():
            logits, _ = model.module(torch.tensor([model.vocab.encode(prompt)]))
        expected = logits[0, -1].double().softmax(-1).numpy()
        assert abs(onnx_lm.next_word_probs(prompt) - expected).max() < 1e-5, prompt
    greedy = {"strategy": "greedy", "max_new_tokens": 12, "skip": []}
    assert onnx_lm.generate("the market", **greedy) == model.generate("the market", **greedy)
    monkeypatch.chdir(tmp_path)  # data is read from the folder the command runs in, or PTB_DIR
    monkeypatch.setenv("PTB_DIR", str(PTB_DIR))
    result = evaluate(run / "best.pt", split="test", device="cpu")
    assert result.metrics["test/ppl"] == pytest.approx(scalars(run, "test/ppl")[-1][1], rel=1e-6)  # as logged
    # Each sentence scored as evaluation reads the split (a Transformer's windows on their own, no cache
    # growing over the whole split): together they come to the split's perplexity but for window edges.
    words = sum(row["tokens"] for row in result.rows)
    stream = math.exp(sum(row["loss"] * row["tokens"] for row in result.rows) / words)
    assert stream == pytest.approx(result.metrics["test/ppl"], rel=0.15)  # (test/ppl: its first 2,000 words)


@pytest.mark.slow
def test_a_sweep_crosses_families_and_cells(tmp_path):
    """One multirun over experiments of different families and one over cells, each job with the small
    sizes of its own family (debug=tiny), then ranked and picked as any sweep."""
    families, cells = tmp_path / "families", tmp_path / "cells"
    assert_ok(run_module("seq2seq.train", "-m", "experiment=peeky_addition,transformer_addition", "debug=tiny",
                         "trainer.max_epochs=1", f"hydra.sweep.dir={families}", cwd=tmp_path))  # fmt: skip
    assert_ok(run_module("seq2seq.train", "-m", "experiment=attention_addition", "model.cell=gru,rnn", "debug=tiny",
                         "trainer.max_epochs=1", f"hydra.sweep.dir={cells}", cwd=tmp_path))  # fmt: skip
    built = {}
    for job in [*families.iterdir(), *cells.iterdir()]:
        if (job / "best.pt").is_file():
            saved = ckpt.read(job / "best.pt")
            built[job.name] = (saved["model"]["name"], saved["model"]["args"].get("cell"))
    assert sorted(built.values(), key=str) == sorted(
        [("Seq2seq", "lstm"), ("Transformer", None), ("Seq2seq", "gru"), ("Seq2seq", "rnn")], key=str)  # fmt: skip
    table = run_module("seq2seq.runs", str(families), cwd=tmp_path)
    assert_ok(table)
    assert "transformer_addition" in table.stdout and "peeky_addition" in table.stdout
    picked = run_module("seq2seq.evaluate", f"checkpoint=best@{cells}", f"out={tmp_path / 'best.jsonl'}", cwd=tmp_path)
    assert_ok(picked)
    assert "val/acc" in picked.stdout


DISTRIBUTED = {
    "transformer": ["experiment=transformer_addition", "trainer.max_epochs=2"],
    "gru": ["experiment=peeky_addition", "model.cell=gru", "trainer.max_epochs=2"],
    "transformer_lm": ["experiment=transformer_ptb", f"task.data_dir={PTB_DIR}"],
    # (SGD at the chapter's learning rate of 20 amplifies float rounding between the two: a gentler one here)
    "rnn_lm": ["experiment=rnnlm_ptb", "model.cell=rnn", "optimizer.lr=1", f"task.data_dir={PTB_DIR}"],
}


@pytest.mark.slow
@pytest.mark.parametrize("family", list(DISTRIBUTED))
def test_two_processes_train_each_family_as_one_does(tmp_path, family):
    if "lm" in family:
        needs_ptb()
    common = [*DISTRIBUTED[family], "debug=tiny"]
    one = train(compose_train(tmp_path / "one", *common))
    args = ["--standalone", "--nproc_per_node=2", "-m", "seq2seq.train", *common, f"hydra.run.dir={tmp_path / 'two'}"]
    assert_ok(run_module("torch.distributed.run", *args, cwd=tmp_path))
    two = ckpt.read(tmp_path / "two" / "last.pt")
    assert two["metrics"]["val/loss"] == pytest.approx(one["val/loss"], rel=1e-3)


CHATTERS = {
    "transformer": ["model=transformer", "model.d_model=16", "model.num_heads=2", "model.dim_feedforward=32"],
    "gru": ["model.cell=gru", "model.decoder=attention", "model.wordvec_size=16", "model.hidden_size=32"],
    "rnn": ["model.cell=rnn", "model.decoder=peeky", "model.wordvec_size=16", "model.hidden_size=32"],
}


@pytest.mark.slow
@pytest.mark.parametrize("family", list(CHATTERS))
def test_each_family_chats(tmp_path, family):
    """Each family on the chitchat corpus (variable lengths: padding masks, for the Transformer in its
    encoder and in cross-attention) answers through seq2seq-chat, seeded sampling repeating, and keeps the
    context turns it was trained with."""
    sizes = ["task=chitchat", *CHATTERS[family], "task.max_conversations=80", "task.min_freq=1", "task.context_turns=1",
             "trainer.max_epochs=1", "trainer.device=cpu", "trainer.progress=false"]  # fmt: skip
    metrics = train(compose_train(tmp_path / "run", *sizes))
    assert {"val/loss", "val/bleu"} <= set(metrics)
    chat = [f"checkpoint={tmp_path / 'run'}", "strategy=sample", "seed=3", "max_new_tokens=4"]  # short replies fit
    a = run_module("seq2seq.chat", *chat, stdin="hi !\nhow are you ?\n", cwd=tmp_path)
    b = run_module("seq2seq.chat", *chat, stdin="hi !\nhow are you ?\n", cwd=tmp_path)
    assert_ok(a)
    assert a.stdout == b.stdout and len(a.stdout.split("\n")[:-1]) == 2
    from seq2seq.inference.chat import Chat

    talk = Chat(seq2seq.load(tmp_path / "run", device="cpu"), {"strategy": "greedy"})
    talk.reply("hi !")
    assert talk.context == 1 and len(talk.history) == 2
    assert os.path.exists(tmp_path / "run" / "best.pt")


def test_debug_tiny_composes_with_every_experiment_and_shrinks_each_family():
    """debug=tiny takes every experiment file; a family with sizes in configs/debug/model/ gets them, the
    command line still overriding them."""
    from seq2seq.training.config import CONFIG_DIR

    tiny_models = {p.stem.removeprefix("tiny_") for p in (CONFIG_DIR / "debug" / "model").glob("tiny_*.yaml")}
    assert tiny_models == {p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")}  # every family has its sizes
    tiny_tasks = {p.stem.removeprefix("tiny_") for p in (CONFIG_DIR / "debug" / "task").glob("tiny_*.yaml")}
    assert tiny_tasks == {p.stem for p in (CONFIG_DIR / "task").glob("*.yaml")} - {"pairs"}  # pairs: the user's file
    for experiment in sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")):
        cfg = compose_train(Path("unused"), f"experiment={experiment}", "debug=tiny")
        assert cfg.trainer.device == "cpu" and cfg.trainer.progress is False, experiment
        model = cfg.model._target_.rsplit(".", 1)[-1]
        if model in ("Seq2seq", "Rnnlm", "ImageCaptioner"):
            assert cfg.model.hidden_size <= 32, experiment
        if model in ("Transformer", "TransformerLM"):
            assert cfg.model.d_model == 16, experiment
    cfg = compose_train(Path("unused"), "experiment=transformer_addition", "debug=tiny", "model.d_model=32")
    assert cfg.model.d_model == 32


def test_a_run_stopped_inside_its_first_epoch_shows_its_values(tmp_path):
    """debug=tiny's language models stop after 30 steps, inside epoch 1: no val/ curve, only val_step/. The
    explorer's table shows their best and final from status.json; plot says which tag they have."""
    from seq2seq.explore.runs import Runs
    from seq2seq.training.runs import read_status

    needs_ptb()
    run = tmp_path / "runs" / "lm"
    train(compose_train(run, *LANGUAGE_MODELS["transformer"], "debug=tiny", f"task.data_dir={PTB_DIR}"))
    shown = Runs(run.parent).scan()
    saved = read_status(run)
    assert [(r.best, r.final) for r in shown] == [(saved["best"], saved["final"])] and saved["best"] > 0
    result = run_module("seq2seq.plot", str(run), "--tag", "val/ppl", "--out", str(tmp_path / "x.png"))
    assert result.returncode == 1 and "--tag val_step/ppl" in result.stderr


def test_the_explorer_takes_whole_numbers_for_layer_and_head():
    from seq2seq.explore.app import whole

    assert [whole(v) for v in (None, "", 0, 2, 2.0)] == [None, None, 0, 2, 2]
    for bad, says in [(1.5, "not a whole number"), (float("nan"), "not a whole number"), (True, "not a whole"),
                      ("2", "not a whole"), (10**400, "beyond a million"), (1e308, "beyond a million")]:  # fmt: skip
        with pytest.raises(DataError, match=says):
            whole(bad)


def test_the_command_line_says_what_a_sweep_across_families_cannot_set(tmp_path):
    """debug=null (the default spelt out) runs as no debug; a key only some swept families have is refused
    in one line before any job, naming why (Hydra composes the sweep with the groups at their defaults)."""
    plain = run_module("seq2seq.train", "debug=null", "trainer.max_steps=1", "task.num_examples=400",
                       f"hydra.run.dir={tmp_path / 'plain'}", cwd=tmp_path)  # fmt: skip
    assert_ok(plain)
    assert ckpt.read(tmp_path / "plain" / "last.pt")["config"]["model"]["hidden_size"] == 128  # not debug's 32
    swept = run_module("seq2seq.train", "-m", "experiment=transformer_addition,transformer_ptb", "model.d_model=8",
                       cwd=tmp_path)  # fmt: skip
    assert swept.returncode == 2 and swept.stderr.count("\n") == 1, swept.stderr
    assert "model.d_model: not a key of the config Hydra composes before the sweep's lists" in swept.stderr
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "outputs").exists()
