"""The installed package works like a library: console scripts from a directory with no configs/,
configs found inside the package, optional features naming their pip extra. CI runs this suite
against a wheel installed without -e (see .ci/run)."""

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import seq2seq
from seq2seq.core import extras

from .helpers import TINY_ADDITION, assert_ok


def script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.mark.slow
def test_console_scripts_and_api_from_an_empty_directory(tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    args = ["experiment=peeky_addition", *TINY_ADDITION, "trainer.max_epochs=1", "hydra.run.dir=run"]
    trained = subprocess.run([script("seq2seq-train"), *args], cwd=cwd, capture_output=True, text=True)
    assert_ok(trained)
    assert {"best.pt", "last.pt", "config.yaml"} <= {p.name for p in (cwd / "run").iterdir()}
    answer = subprocess.run(
        [script("seq2seq-generate"), "checkpoint=run", "question=12+3"], cwd=cwd, capture_output=True, text=True
    )
    assert_ok(answer)
    api = subprocess.run(
        [sys.executable, "-c", "import seq2seq; print(repr(seq2seq.load('run').generate('12+3')))"],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert_ok(api)
    assert api.stdout.strip() == repr(answer.stdout.rstrip("\n"))
    chat = subprocess.run(
        [script("seq2seq-chat"), "checkpoint=run"], cwd=cwd, input="12+3\n", capture_output=True, text=True
    )
    assert_ok(chat)
    assert chat.stdout == answer.stdout


def test_configs_ship_inside_the_package():
    configs = resources.files("seq2seq.configs")
    assert (configs / "train.yaml").is_file() and (configs / "generate.yaml").is_file()
    assert (configs / "experiment" / "peeky_addition.yaml").is_file()
    assert Path(seq2seq.__file__).parent / "configs" == Path(str(configs))


@pytest.mark.slow
def test_a_missing_extra_names_its_pip_install(tmp_path):
    code = (
        "import sys; sys.modules['chitchat_dataset'] = None; "
        "sys.argv = ['seq2seq-train', 'experiment=chitchat', 'trainer.progress=false']; "
        "from seq2seq.train import main; main()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    says = "task=chitchat needs the package chitchat-dataset: pip install '.[chat]' in the project's folder"
    assert result.stderr == f"error: {says}\n"
    assert not (tmp_path / "outputs").exists()  # refused before the run directory was made


def test_a_missing_hydra_plugin_names_its_pip_install(monkeypatch):
    monkeypatch.setattr(extras, "available", lambda module: False)
    message = extras.missing_plugin(["-m", "hparams_search=addition_optuna"])
    plugin = "hydra-optuna-sweeper: pip install '.[sweeps]' in the project's folder"
    assert message == f"hparams_search needs the Hydra plugin {plugin}"
    assert "'.[cluster]'" in extras.missing_plugin(["hydra/launcher=slurm"])
    assert extras.missing_plugin(["hparams_search=null", "seed=1"]) is None


@pytest.mark.slow
def test_help_of_every_command_lists_its_options():
    for module, expected in (
        ("seq2seq.train", "experiment"),
        ("seq2seq.generate", "repetition_penalty"),
        ("seq2seq.chat", "num_samples         strategy=sample: independent samples per input (default: 1)"),
    ):
        result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
        assert_ok(result)
        assert expected in result.stdout, module
