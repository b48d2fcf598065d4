"""Sharing a model: a run exported as a folder (config.json, model.safetensors, generation_config.json,
README.md) loads through every entry point with no pickle, answers exactly as its checkpoint does,
comes back from an offline Hugging Face Hub cache, and a crafted folder is refused in one line, in
bounded memory."""

import json
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import seq2seq
from seq2seq.core import files
from seq2seq.core.errors import CheckpointError
from seq2seq.inference import pretrained
from seq2seq.training.loop import train

from .helpers import PEAK_MB, SECONDS, TINY_ADDITION, assert_refused_alike, compose_train, measured, run_module

QUESTIONS = [f"{a}+{b}" for a in range(0, 100, 7) for b in range(0, 100, 9)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A finished run of each family: addition (Peeky), addition with attention, a language model with
    tied weights (its embedding and output layer are one tensor)."""
    root = tmp_path_factory.mktemp("sharing")
    out = {"peeky": root / "peeky", "attention": root / "attention", "lm": root / "lm"}
    peeky = ["experiment=peeky_addition", *TINY_ADDITION, "trainer.max_epochs=2", f"hydra.run.dir={out['peeky']}"]
    assert run_module("seq2seq.train", *peeky, cwd=root).returncode == 0  # Hydra records the command line
    train(compose_train(out["attention"], "experiment=attention_addition", *TINY_ADDITION, "trainer.max_epochs=1"))
    data = root / "ptb"
    data.mkdir()
    words = ["the", "cat", "sat", "on", "a", "mat", "while", "dogs", "ran", "to", "park", "and", "birds"]
    for split, n in (("train", 200), ("valid", 30), ("test", 30)):
        lines = [" " + " ".join(words[(i + k) % len(words)] for k in range(6)) + " " for i in range(n)]
        (data / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    sizes = ["task.batch_size=4", "task.time_size=5", "task.eval_batch_size=2", "model.wordvec_size=16"]
    train(compose_train(out["lm"], "experiment=better_rnnlm_ptb", f"task.data_dir={data}", *sizes,
                        "model.hidden_size=16", "model.num_layers=1", "trainer.max_epochs=1", "trainer.device=cpu",
                        "trainer.progress=false"))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def folders(runs, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exported")
    return {name: pretrained.save(run / "best.pt", root / name) for name, run in runs.items()}


def test_each_family_exports_and_answers_exactly_as_its_checkpoint(runs, folders):
    for name in ("peeky", "attention"):
        a, b = seq2seq.load(runs[name], device="cpu"), seq2seq.load(folders[name], device="cpu")
        assert a.generate(QUESTIONS) == b.generate(QUESTIONS)
        beam = {"strategy": "beam", "beam_size": 3, "n_best": 2}
        assert a.generate(QUESTIONS[:20], **beam) == b.generate(QUESTIONS[:20], **beam)
        for (key, x), (_, y) in zip(a.module.state_dict().items(), b.module.state_dict().items(), strict=True):
            assert torch.equal(x, y), key
    a, b = seq2seq.load(runs["lm"], device="cpu"), seq2seq.load(folders["lm"], device="cpu")
    assert b.module.out.weight is b.module.embed.weight  # still tied after the round trip
    for seed in (0, 1):
        options = {"max_new_tokens": 30, "seed": seed, "num_samples": 2, "skip": []}
        assert a.generate("the cat", **options) == b.generate("the cat", **options)


def test_the_folder_holds_what_the_hub_expects(runs, folders):
    folder = folders["peeky"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*pretrained.FILES, files.MANIFEST])
    written = json.loads((folder / files.MANIFEST).read_text())  # what it wrote there, with each file's digest
    assert sorted(written) == sorted(pretrained.FILES)
    assert all(written[name] == files.digest(folder / name) for name in written)
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == pretrained.FORMAT and config["model"]["name"] == "Seq2seq"
    assert config["model"]["args"]["decoder"] == "peeky" and config["family"] == "seq2seq"
    assert config["source"]["experiment"] == "peeky_addition" and config["source"]["epoch"] in (1, 2)
    assert "val/acc" in config["source"]["metrics"] and config["source"]["seq2seq_version"] == seq2seq.__version__
    assert json.loads((folder / "generation_config.json").read_text())["strategy"] == "greedy"
    card = (folder / "README.md").read_text()
    assert "# peeky_addition: Seq2seq" in card and "seq2seq.load(" in card and "| `val/acc` |" in card
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as f:  # the weights and nothing else
        assert set(f.keys()) == set(seq2seq.load(runs["peeky"], device="cpu").module.state_dict())
    lm = json.loads((folders["lm"] / "config.json").read_text())
    assert lm["family"] == "lm" and lm["model"]["args"]["tie_weights"] is True


@pytest.mark.slow
def test_the_command_lines_take_a_folder(runs, tmp_path):
    out = tmp_path / "shared"
    result = run_module("seq2seq.export", f"checkpoint={runs['peeky']}", f"out={out}", cwd=tmp_path)
    assert result.returncode == 0 and "model.safetensors" in result.stdout, result.stderr[-2000:]
    assert "python -m seq2seq.train experiment=peeky_addition debug=tiny" in (out / "README.md").read_text()
    from_run = run_module("seq2seq.generate", f"checkpoint={runs['peeky']}", "question=12+34", "strategy=beam")
    from_folder = run_module("seq2seq.generate", f"checkpoint={out}", "question=12+34", "strategy=beam")
    assert from_folder.returncode == 0 and from_folder.stdout == from_run.stdout, from_folder.stderr[-2000:]
    chat = run_module("seq2seq.chat", f"checkpoint={out}", stdin="12+34\n")
    greedy = run_module("seq2seq.generate", f"checkpoint={runs['peeky']}", "question=12+34")
    assert chat.returncode == 0 and chat.stdout == greedy.stdout, chat.stderr[-2000:]
    again = run_module("seq2seq.export", f"checkpoint={runs['peeky']}", f"out={out}", cwd=tmp_path)
    assert again.returncode == 0  # a folder of its own files is rewritten
    (out / "notes.txt").write_text("mine")
    refused = run_module("seq2seq.export", f"checkpoint={runs['peeky']}", f"out={out}", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ") and "notes.txt" in refused.stderr


def hub_cache(root: Path, repo: str, folder: Path) -> Path:
    """The Hugging Face Hub cache layout (huggingface_hub's docs, "Manage the cache"): a snapshot per
    commit, and refs/main naming the commit."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = root / f"models--{repo.replace('/', '--')}"
    snapshot = base / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)
    return root


def test_a_model_comes_back_from_an_offline_hub_cache(folders, tmp_path, monkeypatch):
    from huggingface_hub import constants

    for name in ("attention", "lm"):  # every family comes back whole
        hub_cache(tmp_path / "hub", f"someone/{name}", folders[name])
    cache = hub_cache(tmp_path / "hub", "someone/peeky-addition", folders["peeky"])
    # huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE when imported; in this process, its constants
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = seq2seq.load("hf://someone/peeky-addition", device="cpu")
    assert model.generate(QUESTIONS) == seq2seq.load(folders["peeky"], device="cpu").generate(QUESTIONS)
    for name in ("attention", "lm"):
        a, b = seq2seq.load(f"hf://someone/{name}", device="cpu"), seq2seq.load(folders[name], device="cpu")
        prompt, options = ("the cat", {"seed": 1, "skip": []}) if name == "lm" else (QUESTIONS, {})
        assert a.generate(prompt, **options) == b.generate(prompt, **options)
    with pytest.raises(CheckpointError, match="hf://someone/missing: not in the Hub cache"):
        seq2seq.load("hf://someone/missing")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "seq2seq.generate", "checkpoint=hf://someone/peeky-addition",
                             "question=12+34"], capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == model.generate("12+34"), result.stderr[-2000:]


def test_push_uploads_the_folder_and_fails_in_one_line_offline(runs, tmp_path, monkeypatch):
    import huggingface_hub

    from seq2seq.cli import export
    from seq2seq.cli.common import compose_config
    from seq2seq.core.errors import ConfigError

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo, **kw: calls.append(("create", repo)))

    def upload(self, **kw):
        calls.append(("upload", kw["repo_id"], kw["folder_path"]))
        return "url"

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload)
    cfg = compose_config("export", [f"checkpoint={runs['peeky']}", f"out={tmp_path / 'm'}", "push=me/peeky"], [])
    export.run(cfg)
    assert calls == [("create", "me/peeky"), ("upload", "me/peeky", str(tmp_path / "m"))]
    bad = compose_config("export", [f"checkpoint={runs['peeky']}", f"out={tmp_path / 'n'}", "push=nouser"], [])
    with pytest.raises(ConfigError, match="push=nouser: name a Hub repository as"):
        export.run(bad)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    args = [f"checkpoint={runs['peeky']}", f"out={tmp_path / 'o'}", "push=me/peeky"]
    result = subprocess.run([sys.executable, "-m", "seq2seq.export", *args], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and result.stderr.startswith("error: push=me/peeky: the upload failed")
    assert result.stderr.count("\n") == 1 and (tmp_path / "o" / "model.safetensors").is_file()


# Crafted folders: (what is changed, the message). Each is refused by pretrained.load and, through
# seq2seq.load, by every entry point.
def config_change(change):
    def apply(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        change(config)
        (folder / "config.json").write_text(json.dumps(config))

    return apply


def header_change(change):
    """Rewrite model.safetensors' header (the data bytes kept)."""

    def apply(folder: Path) -> None:
        raw = (folder / "model.safetensors").read_bytes()
        (length,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + length])
        change(header)
        text = json.dumps(header).encode()
        (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length :])

    return apply


def copied(folder: Path, to: Path) -> Path:
    to.mkdir()
    for file in folder.iterdir():
        (to / file.name).write_bytes(file.read_bytes())
    return to


def first_tensor(header: dict) -> dict:
    return header[next(k for k in header if k != "__metadata__")]


CRAFTED = {
    "unknown model": (config_change(lambda c: c["model"].update(name="os.system")), "unknown model 'os.system'"),
    "extra argument": (config_change(lambda c: c["model"]["args"].update(extra=1)), "unknown key extra"),
    "missing argument": (config_change(lambda c: c["model"]["args"].pop("vocab_size")), "missing vocab_size"),
    "size disagreeing with the tensors": (
        config_change(lambda c: c["model"]["args"].update(hidden_size=64)), "weights do not fit the model"),
    "vocabulary of the wrong size": (
        config_change(lambda c: c["task"]["vocab"].append("x")), "the vocabulary has 14 tokens"),
    "not JSON": (lambda f: (f / "config.json").write_text("{'format': 1"), "not a JSON config"),
    "NaN in JSON": (lambda f: (f / "config.json").write_text('{"format": NaN}'), "not a JSON config"),
    "another format": (config_change(lambda c: c.update(format="x")), "not a seq2seq model folder"),
    "nested deep": (config_change(lambda c: c.update(source=json.loads("[" * 100 + "]" * 100))), "nested more"),
    "header lying about offsets": (
        header_change(lambda h: first_tensor(h)["data_offsets"].__setitem__(1, first_tensor(h)["data_offsets"][1] + 4)),
        "its offsets"),
    "header claiming huge shapes": (
        header_change(lambda h: first_tensor(h).update(shape=[2**20, 2**20])), "is 4,398,046,511,104 bytes"),
    "header of another dtype": (
        header_change(lambda h: first_tensor(h).update(dtype="F8_E4M3")), "has dtype 'F8_E4M3'"),
    "header length beyond the file": (
        lambda f: (f / "model.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}"), "its header claims"),
    "a tensor missing": (
        header_change(lambda h: h.pop(next(k for k in h if k != "__metadata__"))), "overlap or leave a gap"),
    "a lone surrogate in the vocabulary": (
        lambda f: (f / "config.json").write_text((f / "config.json").read_text().replace('"9"', '"\\ud800"')),
        "not a JSON config"),
    "a family the model is not": (config_change(lambda c: c.update(family="lm")), "family 'lm', but Seq2seq is a"),
    "a generation config of the wrong type": (
        lambda f: (f / "generation_config.json").write_text('{"max_new_tokens": true}'),
        "generation_config.json: max_new_tokens=True: must be int"),
    "a generation config that is a FIFO": (
        lambda f: ((f / "generation_config.json").unlink(), os.mkfifo(f / "generation_config.json")),
        "generation_config.json: not a regular file"),
    "a config too large": (
        lambda f: (f / "config.json").write_text(" " * (4 * 2**20 + 1)), "more than config may hold"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_folders_are_refused(folders, tmp_path, case):
    change, says = CRAFTED[case]
    folder = copied(folders["peeky"], tmp_path / "m")
    change(folder)
    from seq2seq.cli import chat, generate
    from seq2seq.cli.common import compose_config

    def cli_cfg(name: str, *overrides: str):
        return compose_config(name, [f"checkpoint={folder}", "device=cpu", *overrides], [])

    for entry in (
        lambda: seq2seq.load(folder, device="cpu"),
        lambda: generate.run(cli_cfg("generate", "question=1+2")),
        lambda: chat.chat_from_config(cli_cfg("chat")).reply("1+2"),
        lambda: pretrained.save(folder, tmp_path / "again"),  # re-exporting a folder checks it first
    ):
        with pytest.raises(CheckpointError, match=re.escape(says)):
            entry()


def test_non_finite_weights_and_oversized_configs_are_refused(folders, tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    folder = copied(folders["peeky"], tmp_path / "m")
    weights = load_file(folder / "model.safetensors")
    weights[next(iter(weights))][0] = float("nan")
    save_file(weights, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="holds NaN or infinite values"):
        seq2seq.load(folder)

    monkeypatch.setattr(files, "MAX_JSON", 100)
    with pytest.raises(CheckpointError, match="more than config may hold"):
        seq2seq.load(folder)


@pytest.mark.slow
def test_a_crafted_folder_costs_only_what_it_holds_through_every_entry_point(folders, tmp_path):
    """A header claiming a 4 TB tensor in a file of a few KB: refused before anything is read, in one
    line, by generate, chat and the API, each in bounded memory and time."""
    folder = copied(folders["peeky"], tmp_path / "m")
    header_change(lambda h: first_tensor(h).update(shape=[2**20, 2**20]))(folder)
    for module, *args in (("seq2seq.generate", "question=1+2"), ("seq2seq.chat",)):
        started = time.monotonic()
        result, peak, seconds = measured(module, f"checkpoint={folder}", *args)
        assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr[-2000:]
        assert "is 4,398,046,511,104 bytes" in result.stderr and result.stderr.count("\n") == 1
        assert peak < PEAK_MB and seconds < SECONDS and time.monotonic() - started < SECONDS, (peak, seconds)


@pytest.fixture(scope="module")
def onnx_folders(runs, tmp_path_factory) -> dict[str, Path]:
    from seq2seq.inference import serving

    root = tmp_path_factory.mktemp("onnx")
    return {name: serving.export(run, root / name) for name, run in runs.items()}


def test_onnx_answers_as_pytorch_does(runs, onnx_folders):
    """Greedy answers of the ONNX runner equal PyTorch's; a language model's next-word distribution
    agrees within 1e-4; the exported folder still loads in PyTorch."""
    from seq2seq.inference.serving import OnnxModel

    for name in ("peeky", "attention"):
        torch_model, onnx_model = seq2seq.load(runs[name], device="cpu"), OnnxModel(onnx_folders[name])
        assert onnx_model.generate(QUESTIONS) == torch_model.generate(QUESTIONS)
        assert seq2seq.load(onnx_folders[name], device="cpu").generate(QUESTIONS) == torch_model.generate(QUESTIONS)
        samples = onnx_model.generate(QUESTIONS[:10], strategy="sample", seed=3)
        assert samples == onnx_model.generate(QUESTIONS[:10], strategy="sample", seed=3)  # a seed fixes them
    lm, onnx_lm = seq2seq.load(runs["lm"], device="cpu"), OnnxModel(onnx_folders["lm"])
    for prompt in (["the"], ["the", "cat", "sat"], ["birds", "and", "the", "cat"]):
        ids = torch.tensor([lm.vocab.encode(prompt)])
        with torch.no_grad():
            logits, _ = lm.module(ids)
        expected = logits[0, -1].double().softmax(-1).numpy()
        assert abs(onnx_lm.next_word_probs(prompt) - expected).max() < 1e-4
    greedy = {"strategy": "greedy", "max_new_tokens": 12, "skip": []}
    assert onnx_lm.generate("the cat", **greedy) == lm.generate("the cat", **greedy)


def test_onnx_refuses_what_it_cannot_serve(runs, tmp_path):
    from seq2seq.core.errors import ConfigError
    from seq2seq.inference import serving
    from seq2seq.inference.serving import OnnxModel

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{a} {b}\t{b} {a}\n" for a in "abcd" for b in "abcd"))
    run = tmp_path / "pairs"
    sizes = ["task.batch_size=8", "model.hidden_size=8", "model.wordvec_size=8"]
    quick = ["trainer.device=cpu", "trainer.progress=false", "trainer.max_steps=2"]
    train(compose_train(run, "task=pairs", f"task.train={pairs}", *sizes, *quick))
    with pytest.raises(ConfigError, match="format=onnx exports fixed-width seq2seq models"):
        serving.export(run, tmp_path / "out")
    with pytest.raises(CheckpointError, match="not an exported ONNX folder"):
        OnnxModel(tmp_path)


def test_export_writes_only_its_own_files_and_says_why_it_cannot(runs, folders, onnx_folders, tmp_path):
    from seq2seq.core.errors import ConfigError

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for planted in ("link", "directory", "file"):
        out = tmp_path / planted
        out.mkdir()
        if planted == "link":
            (out / "config.json").symlink_to(victim)
        elif planted == "directory":
            (out / "config.json").mkdir()
        else:  # a user's own README beside nothing of an export
            (out / "README.md").write_text("my notes")
        name = "README.md" if planted == "file" else "config.json"
        for source in (runs["peeky"] / "best.pt", folders["peeky"]):  # from a checkpoint, and copying a folder
            with pytest.raises(ConfigError, match=rf"already holds {name}, which this project did not write there"):
                pretrained.save(source, out)
    assert victim.read_text() == "keep me" and (tmp_path / "file" / "README.md").read_text() == "my notes"
    mine = copied(folders["peeky"], tmp_path / "mine")
    (mine / "encoder.onnx").write_text("a user's graph")  # not in the export's list of its files
    with pytest.raises(ConfigError, match=r"already holds encoder\.onnx, which this project did not write"):
        pretrained.save(runs["peeky"] / "best.pt", mine)
    assert (mine / "encoder.onnx").read_text() == "a user's graph"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"cannot write there|not a directory"):
        pretrained.save(runs["peeky"] / "best.pt", tmp_path / "afile" / "sub")
    graphs = copied(onnx_folders["peeky"], tmp_path / "graphs")  # a plain export would drop its graphs: refused
    with pytest.raises(ConfigError, match="holds an ONNX export: export with format=onnx to replace it"):
        pretrained.save(runs["attention"] / "best.pt", graphs)
    assert all((graphs / name).is_file() for name in ("encoder.onnx", "decoder_step.onnx"))
    again = pretrained.save(runs["attention"] / "best.pt", copied(folders["peeky"], tmp_path / "again"))
    assert json.loads((again / "config.json").read_text())["model"]["args"]["decoder"] == "attention"  # replaced
    assert sorted(p.name for p in tmp_path.iterdir() if ".staged-" in p.name) == []  # no staging left


def test_the_onnx_runner_checks_what_it_reads(onnx_folders, tmp_path):
    from seq2seq.inference.serving import OnnxModel

    def crafted(name: str, change) -> Path:
        folder = copied(onnx_folders["peeky"], tmp_path / name)
        change(folder)
        return folder

    cases = {
        "no task": (config_change(lambda c: c.pop("task")), "task holds no vocab"),
        "widths out of range": (config_change(lambda c: c["task"].update(answer_width=10**9)), "widths out of range"),
        "reverse as text": (config_change(lambda c: c["task"].update(reverse="no")), "task holds no vocab"),
        "another format": (config_change(lambda c: c.update(format="evil")), "not a seq2seq model folder"),
        "a vocabulary the graphs do not score": (
            config_change(lambda c: c["task"]["vocab"].append("x")), "the graphs score 13 tokens"),
        "a damaged graph": (lambda f: (f / "encoder.onnx").write_bytes(b"\0" * 100), "encoder.onnx: not an ONNX graph"),
        "the graphs swapped": (
            lambda f: ((f / "encoder.onnx").rename(f / "x"), (f / "decoder_step.onnx").rename(f / "encoder.onnx"),
                       (f / "x").rename(f / "decoder_step.onnx")), "the graphs score 32 tokens"),
        "a config that is a FIFO": (lambda f: ((f / "config.json").unlink(), os.mkfifo(f / "config.json")),
                                    "not an exported ONNX folder"),
        "memory names swapped": (config_change(lambda c: c["onnx"].update(memory=["summary", "states"])),
                                 "the encoder graph gives ['states', 'summary', 'h', 'c'], its signature names"),
        "a 0.4 start without its summary": (config_change(lambda c: c["onnx"].update(memory=["states", "h"],
                                            state=["c"], initial="summary")), "needs a memory named summary"),
    }  # fmt: skip
    for name, (change, says) in cases.items():
        with pytest.raises(CheckpointError, match=re.escape(says)):
            OnnxModel(crafted(name.replace(" ", "_"), change)).generate("16+75")
    lm = copied(onnx_folders["lm"], tmp_path / "lm_of_petabytes")  # zeros of 8 PiB to start from: refused at once
    config_change(lambda c: c["onnx"]["initial"].update(h=[65536, "B", 65536, 65536, 8]))(lm)
    with pytest.raises(CheckpointError, match="a state of more than 268,435,456 values a row"):
        OnnxModel(lm)


def crafted_graph(nodes, initializers=(), inputs=("token",)):
    """A tiny ONNX graph in place of an export's decoder step."""
    from onnx import TensorProto, helper

    given = [helper.make_tensor_value_info(n, TensorProto.INT64, None) for n in inputs]
    out = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "crafted", given, out, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_crafted_onnx_graphs_cost_what_their_files_hold(onnx_folders, tmp_path):
    """Refusing a graph is bounded by its size: huge tensors it asks for at run time fail at once against the
    runner's memory (onnxruntime's arena), loops and foreign operators are refused before loading, tensors must
    hold the data they declare, and logits that are not finite are an error, never an empty answer."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from seq2seq.inference import serving
    from seq2seq.inference.serving import OnnxModel

    huge = numpy_helper.from_array(np.array([20_000, 20_000, 13], dtype=np.int64), "shape")  # 20.8 GB of floats
    index = numpy_helper.from_array(np.array(0, dtype=np.int64), "index")
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    declared = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[750_000_000])  # 750M values declared, none held
    loop = helper.make_node("Loop", ["n", "", ""], ["logits"], body=helper.make_graph([], "b", [], []))
    fill = [
        helper.make_node("ConstantOfShape", ["shape"], ["big"], value=one),
        helper.make_node("Gather", ["big", "index"], ["logits"]),
    ]  # (20000, 13): logits of the right width
    cases = {
        "a small file asking for 20 GB": (crafted_graph(fill, [huge, index]), "the graphs do not fit"),
        "a loop of 10**15 steps": (
            crafted_graph([loop], [numpy_helper.from_array(np.array(10**15), "n")]),
            "operator 'Loop' is not one a model here exports",
        ),
        "a tensor of 750M declared values": (
            crafted_graph([helper.make_node("Identity", ["w"], ["logits"])], [declared]),
            "declares 750,000,000 values and holds 0",
        ),
        "a foreign operator": (
            crafted_graph([helper.make_node("RandomNormal", [], ["logits"], shape=[10**9])]),
            "operator 'RandomNormal' is not one",
        ),
    }
    for name, (graph, says) in cases.items():
        folder = copied(onnx_folders["peeky"], tmp_path / name.replace(" ", "_"))
        (folder / "decoder_step.onnx").write_bytes(graph)
        started = time.monotonic()
        with pytest.raises(CheckpointError, match=re.escape(says)):
            OnnxModel(folder).generate("16+75")
        assert time.monotonic() - started < 10, name
    # Work bounded by time: 30 products of 2,000 x 2,000 matrices in a 1 KB file (about 500 GFLOP) are stopped
    # between two of them once the call has run max_seconds.
    square = numpy_helper.from_array(np.array([2000, 2000], dtype=np.int64), "square")
    chain = [helper.make_node("ConstantOfShape", ["square"], ["m0"], value=one)]
    chain += [helper.make_node("MatMul", [f"m{k}", "m0"], [f"m{k + 1}"]) for k in range(30)]
    slow = copied(onnx_folders["peeky"], tmp_path / "slow")
    cut = [numpy_helper.from_array(np.array([v], dtype=np.int64), n) for n, v in (("s0", 0), ("s13", 13), ("s1", 1))]
    chain.append(helper.make_node("Slice", ["m30", "s0", "s13", "s1"], ["logits"]))  # (2000, 13): logits' width
    (slow / "decoder_step.onnx").write_bytes(crafted_graph(chain, [square, *cut]))
    started = time.monotonic()
    with pytest.raises(CheckpointError, match=r"ran past 1 s and was stopped"):
        OnnxModel(slow, max_seconds=1).generate("16+75")
    assert time.monotonic() - started < 10
    scalar = copied(onnx_folders["peeky"], tmp_path / "scalar")  # logits of no dimension: no vocabulary to read
    graph = crafted_graph([helper.make_node("Constant", [], ["logits"], value=one)])
    import onnx

    model = onnx.load_from_string(graph)
    model.graph.output[0].type.tensor_type.shape.SetInParent()  # declared: rank 0
    (scalar / "decoder_step.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(CheckpointError, match="the step graph's first output is not logits over the vocabulary"):
        OnnxModel(scalar)
    nan = copied(onnx_folders["peeky"], tmp_path / "nan")

    graph = onnx.load(str(nan / "decoder_step.onnx"))
    for tensor in graph.graph.initializer:  # weights of NaN: every logit NaN
        if tensor.data_type == TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(tensor).shape, np.nan, np.float32),
                                                    tensor.name))  # fmt: skip
    onnx.save(graph, str(nan / "decoder_step.onnx"))
    with pytest.raises(CheckpointError, match="the step graph gives NaN or infinite logits"):
        OnnxModel(nan).generate("16+75")
    assert serving.MEMORY <= 4 * 2**30


def test_the_onnx_runner_refuses_the_questions_pytorch_refuses(runs, onnx_folders):
    from seq2seq.inference.serving import OnnxModel

    torch_model, onnx_model = seq2seq.load(runs["peeky"], device="cpu"), OnnxModel(onnx_folders["peeky"])
    assert_refused_alike(torch_model, onnx_model, ("1234+5", "16 + 75", "16-75", "", ["12+3", "9999+1"], 91))


def test_every_family_decoder_and_cell_exports_graphs_the_runner_accepts(tmp_path):
    """The runner's list of operators covers what every model of the project exports (so the list can stay
    closed): each family, decoder, cell, one and two layers, one and both directions, the Transformers."""
    import warnings

    from seq2seq.inference.serving import check_graph
    from seq2seq.models.rnnlm import Rnnlm
    from seq2seq.models.seq2seq import Seq2seq
    from seq2seq.models.transformer import Transformer
    from seq2seq.models.transformer_lm import TransformerLM

    models = [
        (Seq2seq(13, 8, 16, decoder=d, cell=c, bidirectional=b), 7)
        for d in ("plain", "peeky", "attention")
        for c in ("lstm", "gru", "rnn")
        for b in (False, True)
    ]
    cells = ("lstm", "gru", "rnn")
    models += [(Rnnlm(20, 8, 8, num_layers=n, cell=c, tie_weights=True), None) for n in (1, 2) for c in cells]
    models += [(Transformer(13, 16, 2, n, 32), 7) for n in (1, 3)] + [(TransformerLM(20, 16, 2, n, 32), None)
                                                                      for n in (1, 3)]  # fmt: skip
    for n, (model, width) in enumerate(models):
        exported = model.eval().onnx_export(width) if width else model.eval().onnx_export()
        for graph in exported.graphs:
            path = tmp_path / f"{n}_{graph.file}"
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                names = {"input_names": graph.input_names, "output_names": graph.output_names}
                torch.onnx.export(
                    graph.module, graph.inputs, str(path), **names, dynamic_axes=graph.dynamic_axes, dynamo=False
                )
            check_graph(path)


def test_the_watchdog_stops_each_threads_call_at_its_own_deadline():
    """Two runners in two threads: the call past its deadline is stopped, the other is left to finish."""
    import threading

    from seq2seq.inference.serving import WATCHDOG

    class Call:  # stands for onnxruntime's RunOptions: the watchdog sets its terminate flag
        terminate = False

    short, long = Call(), Call()

    def run(call, seconds):
        WATCHDOG.watch(call, seconds)
        time.sleep(0.6)
        WATCHDOG.watch(None, 0)

    threads = [threading.Thread(target=run, args=(short, 0.2)), threading.Thread(target=run, args=(long, 30))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert short.terminate and not long.terminate and WATCHDOG.calls == {}
