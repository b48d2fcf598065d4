"""Sweeps on Hydra's launchers and sweepers: joblib, submitit (local), Optuna."""

import os

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

from seq2seq.training import checkpoint as ckpt
from seq2seq.training.config import CONFIG_DIR

from .helpers import TINY_ADDITION, assert_ok, run_module


def sweep(tmp_path, *overrides):
    args = ["-m", *TINY_ADDITION, "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}", *overrides]
    assert_ok(run_module("seq2seq.train", *args, cwd=tmp_path))
    return sorted(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.slow
def test_joblib_runs_jobs_in_parallel_each_on_its_share_of_the_cores(tmp_path):
    runs = sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1")
    assert [r.name[:2] for r in runs] == ["0_", "1_"]
    share = max(1, (os.cpu_count() or 1) // 2)
    for run in runs:
        assert (run / "last.pt").is_file() and list(run.glob("events.out.tfevents.*"))
        log = (run / "train.log").read_text()
        threads = int(log.split(" CPU threads")[0].rsplit(" ", 1)[-1])
        assert threads <= share


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path):
    runs = sweep(tmp_path, "hydra/launcher=submitit_local", "seed=0,1")
    assert len(runs) == 2 and all((r / "best.pt").is_file() for r in runs)


@pytest.mark.slow
def test_optuna_search_optimises_best_val_acc(tmp_path):
    runs = sweep(
        tmp_path,
        "experiment=peeky_addition",
        "hparams_search=addition_optuna",
        "hydra.sweeper.n_trials=3",
        "model.wordvec_size=8",
        "task.batch_size=32",
        "model.hidden_size=32",
    )
    assert len(runs) == 3
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    bests = [ckpt.read(r / "last.pt")["progress"]["best"] for r in runs]
    assert results["best_value"] == max(bests)
    # The command line pins batch and hidden size, which leaves the learning rate searched.
    assert set(results["best_params"]) == {"optimizer.lr"}
    lrs = {ckpt.read(r / "last.pt")["config"]["optimizer"]["lr"] for r in runs}
    assert len(lrs) == 3


def test_slurm_launcher_config_composes():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.array_parallelism == 16


@pytest.mark.slow
def test_different_seeds_in_a_multirun_give_different_runs(tmp_path):
    args = ["-m", "seed=0,1", *TINY_ADDITION, "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}"]
    assert_ok(run_module("seq2seq.train", *args, cwd=tmp_path))
    a, b = (ckpt.read(p / "last.pt") for p in sorted(p for p in tmp_path.iterdir() if p.is_dir()))
    assert (a["config"]["seed"], b["config"]["seed"]) == (0, 1)
    assert not torch.equal(a["model_state"]["encoder.embed.weight"], b["model_state"]["encoder.embed.weight"])
    assert a["metrics"]["val/loss"] != b["metrics"]["val/loss"]
