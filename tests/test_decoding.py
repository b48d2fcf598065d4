"""One set of decoding options for generate, chat and the Python API: defaults, refusals, and every
strategy for every model family."""

import dataclasses

import pytest
import torch

import seq2seq
from seq2seq.core import decoding
from seq2seq.core.errors import CheckpointError, ConfigError, DataError
from seq2seq.models.sampling import adjust_logits

from .helpers import run_module


def test_family_defaults():
    lm, s2s = decoding.resolve({}, "lm"), decoding.resolve({}, "seq2seq")
    assert (lm.strategy, lm.max_new_tokens, lm.skip) == ("sample", 100, ("N", "<unk>", "$"))
    assert (s2s.strategy, s2s.max_new_tokens, s2s.skip) == ("greedy", None, ())
    assert decoding.resolve({"strategy": "beam"}, "lm").beam_size == 5
    with pytest.raises(dataclasses.FrozenInstanceError):  # one resolved object, handed to the decoders as it is
        lm.seed = 1
    assert lm.replace(top_k=3, max_new_tokens=None).top_k == 3
    for change, message in (({"max_new_tokens": -5}, "max_new_tokens=-5"), ({"temperature": 0}, "temperature=0")):
        with pytest.raises(ConfigError, match=message):  # a copy is checked as a user's value is
            lm.replace(**change)


def test_context_only_for_a_model_trained_with_it(tiny_run):
    model = seq2seq.load(tiny_run, device="cpu")
    with pytest.raises(DataError, match=r"trained on single messages \(task.context_turns=0\)"):
        model.generate("12+3", context=["1+1"])


@pytest.mark.parametrize(
    ("options", "family", "message"),
    [
        ({"temperature": 2.0}, "seq2seq", "temperature applies to strategy=sample, not greedy"),
        ({"beam_size": 5}, "lm", "beam_size applies to strategy=beam, not sample"),
        ({"num_samples": 3, "strategy": "greedy"}, "lm", "num_samples applies to strategy=sample"),
        ({"seed": 1, "strategy": "beam"}, "seq2seq", "seed applies to strategy=sample"),
        ({"strategy": "nucleus"}, "lm", "strategy='nucleus': must be one of greedy, beam, sample"),
        ({"temperature": 1e-40}, "lm", "temperature=1e-40: must be in"),
        ({"max_new_tokens": 10_000_000}, "lm", "max_new_tokens=10000000: must be from 1 to 100,000"),
        ({"max_new_tokens": 1.5}, "lm", "max_new_tokens=1.5: must be int"),
        ({"strategy": "beam", "beam_size": 2, "n_best": 3}, "seq2seq", "n_best=3 exceeds beam_size=2"),
        ({"top_p": 0.0}, "lm", r"top_p=0.0: must be in \(0, 1\]"),
        ({"beam": 3}, "lm", "unknown decoding option 'beam'"),
        ({"skip": "N"}, "lm", "skip='N': must be a list of words"),
    ],
)
def test_refusals(options, family, message):
    with pytest.raises(ConfigError, match=message):
        decoding.resolve(options, family)


def test_every_strategy_for_seq2seq(peeky_run):
    model = seq2seq.load(peeky_run, device="cpu")
    questions = ["12+3", "7+70", "99+99"]
    greedy = model.generate(questions)
    assert model.generate(questions, strategy="beam", beam_size=1) == greedy
    assert all(len(a) == 3 for a in model.generate(questions, strategy="beam", beam_size=4, n_best=3))
    samples = model.generate(questions, strategy="sample", num_samples=4, temperature=2.0, seed=5)
    assert all(len(s) == 4 for s in samples) and samples == model.generate(
        questions, strategy="sample", num_samples=4, temperature=2.0, seed=5
    )
    assert model.generate("12+3", strategy="sample", top_k=1) == greedy[0]  # top-1 sampling is greedy
    with pytest.raises(DataError, match="not in the model's"):
        model.generate("12+3", skip=["<unk>"])
    digits = model.generate(questions, skip=[str(d) for d in range(10)])
    assert all(not any(c.isdigit() for c in a) for a in digits)


def test_repetition_penalty_lowers_seen_tokens():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    out = adjust_logits(logits, history=torch.tensor([[0, 1]]), repetition_penalty=2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5]]
    assert adjust_logits(logits, skip_ids=[2])[0, 2] == float("-inf")


@pytest.mark.slow
def test_chat_and_generate_refuse_the_same_options(peeky_run):
    for module, extra in (("seq2seq.generate", ["question=12+3"]), ("seq2seq.chat", [])):
        result = run_module(module, f"checkpoint={peeky_run}", "temperature=2.0", *extra, stdin="12+3\n")
        assert result.returncode == 2 and "temperature applies to strategy=sample" in result.stderr, module
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_load_refuses_what_generate_refuses(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    cli = run_module("seq2seq.generate", f"checkpoint={tmp_path / 'junk.pt'}", "question=1+2")
    with pytest.raises(CheckpointError) as api_error:
        seq2seq.load(tmp_path / "junk.pt")
    assert cli.stderr.strip() == f"error: {api_error.value}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="refusing CUDA needs a machine without it")
def test_cuda_is_refused_without_a_gpu():
    with pytest.raises(ConfigError, match="device=cuda"):
        seq2seq.inference.api.pick_device("cuda")


@pytest.mark.parametrize("command", ["generate", "chat"])
def test_the_commands_yaml_and_help_follow_the_declared_options(command):
    """generate.yaml and chat.yaml list every decoding option, unset (null: the declared default), and
    --help renders each option's declared default; chat (seq2seq models only) shows seq2seq's."""
    from omegaconf import OmegaConf

    from seq2seq.training.config import CONFIG_DIR

    yaml = OmegaConf.load(CONFIG_DIR / f"{command}.yaml")
    assert {name: yaml[name] for name in decoding.NAMES} == dict.fromkeys(decoding.NAMES)
    shown = run_module(f"seq2seq.{command}", "--help").stdout
    assert "beam_size           strategy=beam: beams per input (default: 5)" in shown
    lm_default = "strategy            greedy | beam | sample (default: sample for language models, greedy for seq2seq)"
    assert (lm_default in shown) == (command == "generate")
