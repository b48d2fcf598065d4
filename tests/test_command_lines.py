"""The command lines as a newcomer meets them, in real processes: a mistake ends in one line on stderr
and exit code 2 (never a traceback, never a silent wrong setting or answer), nothing is left behind by
a refused run, `checkpoint=` finds runs, results go to stdout and logs to stderr."""

import re
from pathlib import Path

import pytest

import seq2seq
from seq2seq.core.errors import ConfigError, DataError

from .helpers import TINY_ADDITION, assert_ok, compose_train, run_module

ADDITION = [*TINY_ADDITION, "task.max_digits=3", "trainer.max_epochs=1"]


def one_error_line(result, exit_code: int = 2) -> str:
    """The single `error: ...` line of a refused command."""
    assert result.returncode == exit_code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("note: ")]
    assert len(lines) == 1 or lines[0].startswith("error:"), lines
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A directory with outputs/peeky_addition/<run> (an older, unfinished run beside a finished one)."""
    root = tmp_path_factory.mktemp("cli")
    finished = root / "outputs" / "peeky_addition" / "2026-01-02_00-00-00"
    assert_ok(
        run_module("seq2seq.train", "experiment=peeky_addition", *ADDITION, f"hydra.run.dir={finished}", cwd=root)
    )
    return root


@pytest.mark.slow
def test_an_unknown_key_is_refused_before_anything_is_written(tmp_path):
    for arg, key, meant in (
        ("+trainer.epochs=3", "trainer.epochs", "trainer.max_epochs"),
        ("+epochs=3", "epochs", "trainer.max_epochs"),
        ("+optimizer.weightdecay=0.1", "optimizer.weightdecay", "optimizer.weight_decay"),
        ("epochs=3", "epochs", "trainer.max_epochs"),  # without +: Hydra's own refusal, in the same words
    ):
        result = run_module("seq2seq.train", "experiment=peeky_addition", arg, cwd=tmp_path)
        assert one_error_line(result).startswith(f"error: {key}: unknown key; did you mean {meant}")
        assert not (tmp_path / "outputs").exists()  # refused before Hydra made the run directory


@pytest.mark.slow
def test_mistakes_in_sweeps_interpolations_and_hydra_help_are_one_line(tmp_path):
    """Hydra resolves interpolations lazily and composes each sweep job on its own, so these mistakes
    ended inside the run, in Hydra's multi-line report; --hydra-help with a bad override, in a traceback."""
    for args, says in (
        (["name=${oops}"], "error: name=${oops}: Interpolation key 'oops' not found"),
        (["-m", "trainer.max_epochs=1,abc"], "error: Error merging override trainer.max_epochs=abc"),
        (["-m", "trainer.foo=1,2"], "error: trainer.foo: unknown key"),
        (["-m", "experiment=peeky_addition,peeky"], "error: experiment=peeky: no such option; did you mean"),
        (["-m", "seed=0,1", "name=a,${oops}"], "error: name=${oops}: Interpolation key 'oops' not found"),
        (["--hydra-help", "trainer.foo=1"], "error: trainer.foo: unknown key"),
        (["experiment=rnnlm_ptb", "debug=huge"], "error: debug=huge: no such option; debug is one of tiny"),
    ):
        result = run_module("seq2seq.train", *args, "hydra.sweep.dir=sweep", "hydra.run.dir=run", cwd=tmp_path)
        assert one_error_line(result).startswith(says), result.stderr
        assert list(tmp_path.iterdir()) == []


def test_a_sweep_is_checked_value_by_value():
    from seq2seq.cli.common import sweep_variants

    assert sweep_variants(["a=1", "b=2,3", "c=range(4,6)", "d=interval(0,1)"]) == [
        ["a=1", "b=2", "c=4"], ["a=1", "b=3", "c=4"], ["a=1", "b=2", "c=5"]]  # fmt: skip
    assert sweep_variants(["name='x y',z"]) == [["name='x y'"], ["name=z"]]
    long = sweep_variants(["seed=range(0,100000)", "task.batch_size=32,0"])  # a long list crowds out no other
    assert long[:3] == [["seed=0", "task.batch_size=32"], ["seed=1", "task.batch_size=32"],
                        ["seed=0", "task.batch_size=0"]]  # fmt: skip


def test_a_long_sweep_starts_its_first_jobs_at_once():
    """Hydra composes every job of a batch before running it: batches are capped for the basic sweeper (a
    sweep of 100,000 seeds starts at once), left alone for a sweeper or batch size the user chose."""
    from seq2seq.training.launch import SWEEP_BATCH, Launch

    capped = f"hydra.sweeper.max_batch_size={SWEEP_BATCH}"
    assert capped in Launch.from_command_line(["-m", "seed=range(0,100000)"]).args
    for chosen in ("hparams_search=addition_optuna", "hydra.sweeper.max_batch_size=3", "hydra/sweeper=basic"):
        assert capped not in Launch.from_command_line(["-m", "seed=0,1", chosen]).args
    assert capped not in Launch.from_command_line(["seed=1"]).args


def test_keys_that_a_target_takes_are_valid_and_others_are_not(tmp_path):
    from seq2seq.training.config import check_keys

    check_keys(compose_train(tmp_path, "+optimizer.weight_decay=0.1", "scheduler=onecycle", "+scheduler.div_factor=5"))
    check_keys(compose_train(tmp_path, "logger=[tensorboard,csv]", "logger.csv.filename=m.csv"))
    for override, message in (
        ("+task.revers=true", "task.revers: unknown key; did you mean task.reverse?"),
        ("+model.hidden=3", "model.hidden: unknown key; did you mean model.hidden_size?"),
        ("+trainer.early_stopping.patiense=2", "did you mean trainer.early_stopping.patience"),
        ("+logger.tensorboard.flush_secs=3", "logger.tensorboard.flush_secs: unknown key"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_keys(compose_train(tmp_path, override))


@pytest.mark.slow
def test_a_run_refused_for_its_data_leaves_no_directory(tmp_path):
    run = tmp_path / "outputs" / "run"
    missing = tmp_path / "missing.tsv"
    result = run_module("seq2seq.train", "task=pairs", f"task.train={missing}", f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and str(missing) in result.stderr
    assert not run.exists()
    run.mkdir(parents=True)  # a directory the user made is never removed
    (run / "notes.txt").write_text("mine")
    run_module("seq2seq.train", "task=pairs", f"task.train={missing}", f"hydra.run.dir={run}", cwd=tmp_path)
    assert (run / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_questions_must_have_the_trained_shape(workdir):
    checkpoint = "checkpoint=outputs/peeky_addition"
    for question in ("16 + 75", "16+75+1", "+16", "16+"):
        line = one_error_line(run_module("seq2seq.generate", checkpoint, f"question='{question}'", cwd=workdir))
        assert line == (
            f"error: input {question!r}: this model answers a+b, two numbers of at most 3 digits joined by +, "
            "without spaces (e.g. 16+75)"
        )
    ok = run_module("seq2seq.generate", checkpoint, "question=' 16+75 '", cwd=workdir)  # outer spaces are fine
    assert_ok(ok)
    assert re.fullmatch(r"\d*\n", ok.stdout) and "note: checkpoint=outputs/peeky_addition" in ok.stderr
    wide = one_error_line(run_module("seq2seq.generate", checkpoint, "question=1000+1", cwd=workdir))
    assert "1000 has 4 digits" in wide
    model = seq2seq.load(workdir / "outputs" / "peeky_addition")
    with pytest.raises(ValueError, match=r"this model answers a\+b") as error:
        model.generate("16 + 75")
    assert isinstance(error.value, DataError)


@pytest.mark.slow
def test_usage_mistakes_of_generate_and_chat(workdir, tmp_path):
    for module in ("seq2seq.generate", "seq2seq.chat"):
        result = run_module(module, cwd=workdir)
        line = one_error_line(result)
        assert line == "error: checkpoint= is missing."
        assert f"usage: python -m {module} checkpoint=" in result.stderr and "example:" in result.stderr
        version = run_module(module, "--version")
        assert_ok(version)
        assert version.stdout == f"{module} {seq2seq.__version__}\n"
    bare = one_error_line(run_module("seq2seq.generate", "checkpoint=latest", "16+75", cwd=workdir))
    assert bare == "error: '16+75' is not key=value: give question=16+75 (quote it if it has spaces or commas), " \
        "or put the text after --: -- 16+75"  # fmt: skip
    unknown = one_error_line(run_module("seq2seq.generate", "checkpoint=latest", "+max_tokens=3", cwd=workdir))
    assert unknown == "error: max_tokens: unknown key; did you mean max_new_tokens?"
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    not_one = one_error_line(run_module("seq2seq.generate", f"checkpoint={tmp_path / 'notes.txt'}", "question=1+1"))
    assert not_one.startswith(f"error: {tmp_path / 'notes.txt'}: not a readable checkpoint")
    empty = one_error_line(run_module("seq2seq.generate", f"checkpoint={tmp_path}", "question=1+1"))
    assert empty == f"error: checkpoint={tmp_path}: no run with a best.pt in {tmp_path} and three folders below it"


@pytest.mark.slow
def test_checkpoint_latest_and_an_experiment_folder_take_the_newest_finished_run(workdir):
    unfinished = workdir / "outputs" / "peeky_addition" / "2026-01-03_00-00-00"  # newer, but never finished
    unfinished.mkdir()
    finished = workdir / "outputs" / "peeky_addition" / "2026-01-02_00-00-00"
    (unfinished / "best.pt").write_bytes((finished / "best.pt").read_bytes())
    for value in ("latest", "outputs/peeky_addition"):
        result = run_module("seq2seq.generate", f"checkpoint={value}", "question=16+75", cwd=workdir)
        assert_ok(result)
        searched = "outputs" if value == "latest" else value
        assert f"note: checkpoint={value}: the newest finished run of 2 in {searched} is" in result.stderr
        assert result.stderr.rstrip().endswith(finished.name)
    (unfinished / "best.pt").unlink()
    unfinished.rmdir()


@pytest.mark.slow
def test_train_version_positional_and_stdout(tmp_path):
    version = run_module("seq2seq.train", "--version")
    assert_ok(version)
    assert version.stdout == f"seq2seq.train {seq2seq.__version__}\n"
    stray = one_error_line(run_module("seq2seq.train", "peeky_addition", cwd=tmp_path))
    assert stray.startswith("error: 'peeky_addition' is not key=value: choose with group=option")
    run = tmp_path / "run"
    result = run_module("seq2seq.train", *ADDITION, "trainer.max_steps=3", f"hydra.run.dir={run}", cwd=tmp_path)
    assert_ok(result)
    assert result.stdout.startswith("done: best val/acc ") and result.stdout.count("\n") == 1  # stdout: the result
    assert "epoch 1" in result.stderr and "done: best" not in result.stderr  # stderr: the log
    assert "done: best val/acc" in (run / "train.log").read_text()


def test_api_misuse_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="load takes a checkpoint path"):
        seq2seq.load(123)
    with pytest.raises(ConfigError, match=r"no run with a best\.pt"):
        seq2seq.load(tmp_path)
    for bad in (91, None, iter(["1+2"])):  # an input that is not text: the API's own error, not a TypeError
        with pytest.raises(DataError, match="generate takes a string or a non-empty list of strings"):
            seq2seq.TrainedModel.generate(type("M", (), {"family": "seq2seq", "defaults": None})(), bad)


def test_every_trainer_option_has_its_help_text():
    """--help and the docs read each option's meaning from its declaration (help=...), and show it."""
    import dataclasses

    from seq2seq.training.config import EarlyStoppingConfig, TrainerConfig, options_help

    composed = compose_train(Path("unused"))
    listed = options_help(composed)
    for cls in (TrainerConfig, EarlyStoppingConfig):
        for f in dataclasses.fields(cls):
            if f.name != "early_stopping":
                assert f.metadata["help"] and f.metadata["help"] in listed, f.name


def test_facts_of_the_trainer_options_are_declared_at_their_fields():
    """What may change on resume, what is a hyperparameter and what names the run directory are read
    from the options' declarations; Hydra's run-directory naming (hydra/default.yaml) agrees."""
    from omegaconf import OmegaConf

    from seq2seq.training import config

    facts = config.facts()
    assert facts["trainer.max_epochs"]["resumable"] and not facts["trainer.precision"]["resumable"]
    assert "trainer.max_epochs" in config.RESUMABLE and "trainer.precision" not in config.RESUMABLE
    assert "trainer.threads" in config.NOT_HPARAMS and "trainer.grad_clip" not in config.NOT_HPARAMS
    assert config.CHECKS["trainer.save_top_k"] is facts["trainer.save_top_k"]["check"]
    hydra = OmegaConf.load(config.CONFIG_DIR / "hydra" / "default.yaml")
    assert set(hydra.job.config.override_dirname.exclude_keys) == set(config.NOT_IN_RUN_NAME)
