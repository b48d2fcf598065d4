"""Mistakes of a user's own get one clear line, never a traceback: data files, seeds, optimizer values,
run directories, generation options."""

import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ConfigKeyError, ValidationError

from seq2seq.core.errors import ConfigError, DataError
from seq2seq.data.addition import load_fixed_width
from seq2seq.data.text import load_tsv
from seq2seq.training.loop import train

from .helpers import TINY_ADDITION, run_module


def test_a_byte_order_mark_is_not_data(tmp_path):
    (tmp_path / "a.txt").write_bytes("\ufeff16+75  _91  \n1+2    _3   \n".encode())
    assert load_fixed_width(tmp_path / "a.txt").questions == ["16+75  ", "1+2    "]
    (tmp_path / "p.tsv").write_bytes("\ufeffhi\tthere\n".encode())
    assert load_tsv(tmp_path / "p.tsv") == [("hi", "there")]


def test_a_huge_line_is_refused_without_echoing_it(tmp_path):
    (tmp_path / "a.txt").write_text("16+75  _91  \n" + "1" * 5_000_000 + "\n")
    message = r"a.txt:2: line is 5,000,000 characters wide; this format takes at most 1000"
    with pytest.raises(DataError, match=message) as e:
        load_fixed_width(tmp_path / "a.txt")
    assert len(str(e.value)) < 300
    (tmp_path / "b.txt").write_text("16+75  _91  \n" + "9" * 900 + "\n")  # wide, but no separator
    with pytest.raises(DataError, match=r"\(900 characters\)") as e:
        load_fixed_width(tmp_path / "b.txt")
    assert len(str(e.value)) < 300


def test_ptb_files_smaller_than_one_batch(make_cfg, tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text(" a b \n" if split == "train" else " a b a b a b a b a b \n" * 5)
    with pytest.raises(DataError, match=r"ptb.train.txt: 3 tokens, too few for 20 rows"):
        train(make_cfg("experiment=rnnlm_ptb", f"task.data_dir={tmp_path}"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=4611686018427387904", r"seed=4611686018427387904: must be from 0 to 2\*\*32 - 1"),
        ("+optimizer.weight_decay=abc", r"optimizer.weight_decay='abc': must be a number"),
        ("+optimizer.weight_decay=-1", r"optimizer or scheduler: Invalid weight_decay value: -1"),  # torch's own check
        ("task.batch_size=0", r"task\.batch_size"),
        ("model.hidden_size=-4", r"model\.hidden_size"),
        ("trainer.max_epochs=0", r"trainer\.max_epochs"),
        ("optimizer.lr=-1", r"optimizer\.lr"),
        ("task.val_fraction=1.5", r"task\.val_fraction"),
        ("trainer.grad_clip=0", r"trainer\.grad_clip"),
        ("model.init=xavier", r"model\.init"),
    ],
)
def test_impossible_values_fail_before_training(make_cfg, override, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        train(make_cfg(*TINY_ADDITION, override, out=tmp_path / "run"))
    if "weight_decay=-1" not in override:  # torch checks that one when the optimizer is built
        assert not (tmp_path / "run").exists()  # refused before the run directory is made


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["experiment=rnnlm_ptb", "model=seq2seq"],
            "Seq2seq is an Encoder-Decoder, but task LanguageModelTask trains "
            "a language model: use model=better_rnnlm or model=rnnlm",
        ),
        (
            ["model=rnnlm"],
            "Rnnlm is a language model, but task AdditionTask trains an Encoder-Decoder: use model=seq2seq",
        ),
        (
            ["model=image_captioner"],
            "ImageCaptioner is an image captioner, but task AdditionTask trains an Encoder-Decoder",
        ),
        (["experiment=captions", "model=seq2seq"], "CaptionsTask trains an image captioner: use model=image_captioner"),
    ],
)
def test_a_model_of_another_family_is_refused_before_any_data_loads(make_cfg, tmp_path, overrides, message):
    no_data = f"task.data_dir={tmp_path / 'no-ptb-here'}" if "rnnlm_ptb" in overrides[0] else "seed=0"
    with pytest.raises(ConfigError, match=message):
        train(make_cfg(*overrides, no_data, "trainer.device=cpu"))  # no PTB data there: nothing was read


def test_tasks_have_the_task_interface(tmp_path):
    from seq2seq.core.registry import FAMILIES
    from seq2seq.tasks import AdditionTask, Task, TsvTask

    (tmp_path / "p.tsv").write_text("".join(f"a{i}\tb{i}\n" for i in range(20)))
    for task in (AdditionTask(num_examples=100), TsvTask(str(tmp_path / "p.tsv"), tokenize="char")):
        assert isinstance(task, Task) and task.family in FAMILIES and task.mode in ("min", "max")
    assert not isinstance(object(), Task)


def test_an_unwritable_run_directory(make_cfg, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigError, match=r"cannot write to the run directory .*file/run"):
        train(make_cfg(*TINY_ADDITION, out=tmp_path / "file" / "run"))


@pytest.mark.slow
def test_generate_refuses_bad_files_and_options_in_one_line(make_cfg, tmp_path):
    run = tmp_path / "run"
    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", out=run))
    (tmp_path / "latin1.txt").write_bytes("1+2\n3+4\n5\xe9+6\n".encode("latin-1"))
    cases = [
        ([f"file={tmp_path / 'latin1.txt'}"], "latin1.txt:3: not UTF-8 text"),
        (["question=1+2", "max_new_tokens=10000000"], "max_new_tokens=10000000: must be from 1 to 100,000"),
        (["question=1+2", "num_words=1.5"], "max_new_tokens"),  # the old name, translated, then typed
        (["question=1+2", "num_words=1", "max_new_tokens=4"], "num_words= and max_new_tokens= are the same option"),
        (["question=1+2", "max_new_tokens=${oc.env:HOME}"], "max_new_tokens=${oc.env:HOME}: "),  # typed interpolation
        (["question=1+2", "strategy=sample", "temperature=1e-40"], "temperature=1e-40: must be in"),
    ]
    for args, message in cases:
        result = run_module("seq2seq.generate", f"checkpoint={run}", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert torch.load(run / "best.pt", weights_only=True)["format"] == "seq2seq-checkpoint"  # untouched


def test_config_files_hold_only_what_differs_from_the_constructors():
    """One source of defaults: a task or model YAML sets no option to its constructor's default."""
    import yaml

    from seq2seq.core.options import options
    from seq2seq.models import MODELS
    from seq2seq.tasks import TASKS
    from seq2seq.training.config import CONFIG_DIR

    for group, table in (("task", TASKS), ("model", MODELS)):
        for path in sorted((CONFIG_DIR / group).glob("*.yaml")):
            node = yaml.safe_load(path.read_text())
            (schema,) = [d for d in node.pop("defaults") if d.startswith("/schema/")]
            cls = table[schema.split("/")[-1].split("@")[0]]
            defaults = {o.name: o.default for o in options(cls)}
            assert set(node) <= set(defaults), path
            same = [k for k, v in node.items() if defaults[k] == v]
            assert not same, f"{path.name} repeats the defaults of {same}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.decoder=peeky2", r"model.decoder='peeky2': must be one of plain, peeky, attention"),
        ("task.batch_size=0", r"task.batch_size=0: must be a positive number"),
        ("task.val_fraction=1.5", r"task.val_fraction=1.5: out of range"),
        ("task.split_seed=-1", r"task.split_seed=-1: must be from 0 to 2\*\*32 - 1"),
        ("trainer.val_every_n_steps=0", r"trainer.val_every_n_steps=0: must be a positive number"),
    ],
)
def test_each_component_checks_its_own_options(make_cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        train(make_cfg(*TINY_ADDITION, override))


def test_help_shows_every_option_with_its_meaning(tmp_path):
    from seq2seq.core.options import comments, options
    from seq2seq.models import Seq2seq
    from seq2seq.tasks import ChitchatTask, PairsTask
    from seq2seq.training.config import EarlyStoppingConfig, TrainerConfig

    result = run_module("seq2seq.train", "experiment=chitchat", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = {line.split("=")[0].strip(): line for line in result.stdout.splitlines() if line.startswith("  ")}
    for group, cls, notes in (
        ("task", ChitchatTask, {**comments(PairsTask.__init__), **comments(ChitchatTask.__init__)}),
        ("model", Seq2seq, comments(Seq2seq.__init__)),
    ):
        for o in options(cls):
            assert notes[o.name] and notes[o.name] in shown[f"{group}.{o.name}"], o.name
    assert "task.tokenize=wordpunct" in shown["task.tokenize"]  # the composed value, not the default
    for prefix, cls in (("trainer", TrainerConfig), ("trainer.early_stopping", EarlyStoppingConfig)):
        for name, note in comments(cls).items():
            assert note in shown[f"{prefix}.{name}"], name


@pytest.mark.parametrize(
    ("override", "error", "names"),
    [
        ("trainer.max_epoch=3", ConfigCompositionException, "max_epoch"),
        ("trainer.max_epochs=ten", ConfigCompositionException, "max_epochs"),
        ("model.hiden_size=3", ConfigCompositionException, "hiden_size"),
        ("task.reverse=maybe", ConfigCompositionException, "reverse"),
        ("experiment=peeky_adition", MissingConfigException, "peeky_adition"),
        ("model=peeky", MissingConfigException, "peeky"),
    ],
)
def test_bad_overrides_fail_at_composition_naming_the_key(make_cfg, override, error, names):
    with pytest.raises((error, ConfigKeyError, ValidationError)) as err:
        make_cfg(override)
    text = str(err.value) + str(err.value.__cause__)
    assert names in text


def test_cli_config_errors_are_one_clear_message(tmp_path):
    result = run_module("seq2seq.train", "task.batch_size=0", cwd=tmp_path)
    assert result.returncode == 2
    assert "task.batch_size=0: must be a positive number" in result.stderr
    assert "Traceback" not in result.stderr
