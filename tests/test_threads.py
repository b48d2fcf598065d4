"""Threads that fit the cores other work leaves free (seq2seq.core.threads), and trainer.precision=auto from a
measurement (seq2seq.training.precision)."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest
import torch

from seq2seq.core import threads
from seq2seq.core.errors import ConfigError
from seq2seq.training import precision

from .helpers import TINY_ADDITION, compose_train

CORES = threads.usable_cores()


@pytest.fixture
def no_thread_env(monkeypatch):
    """The tests' workers set OMP_NUM_THREADS=1 (a count given): these tests are about the default."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_free_cores_decide_the_count(no_thread_env, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    counts = {load: threads.fit(load).threads for load in (0.0, 0.3, 0.45, 1.0, 1.7, 2.2, 9.0)}
    # a neighbour at 0.4 of a core or more takes that core; never fewer than one thread
    assert counts == {0.0: 4, 0.3: 4, 0.45: 3, 1.0: 3, 1.7: 2, 2.2: 2, 9.0: 1}
    assert threads.fit(1.0).adapts and "other work keeps 1.0 of 4 cores busy" in threads.fit(1.0).why
    assert threads.fit(None).threads == 4 and not threads.fit(None).adapts  # no /proc/stat: every core
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun's ranks on this machine share what is free
    assert threads.fit(0.0).threads == 2 and threads.fit(1.0).threads == 1 and threads.fit(3.0).threads == 1


def test_a_count_given_is_honoured_and_absurd_ones_are_capped_or_refused(no_thread_env, monkeypatch, caplog):
    assert threads.given(None) is None  # nothing given: the load decides
    assert threads.given(3).threads == 3 and threads.given(3).why == "trainer.threads=3, as given"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.given(None).threads == 1 and "OMP_NUM_THREADS=1" in threads.given(None).why
    assert threads.given(2).threads == 2  # trainer.threads wins over the environment
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # OpenMP's nested levels: the first is torch's
    assert threads.given(None).threads == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "100000")  # libgomp segfaulted creating them
    with caplog.at_level(logging.WARNING, logger="seq2seq.core.threads"):
        choice = threads.given(None)
    assert choice.threads == threads.max_threads() == threads.MAX_PER_CORE * CORES
    assert "OMP_NUM_THREADS=100000 is more than 4 threads a core" in caplog.text
    assert os.environ["OMP_NUM_THREADS"] == str(threads.max_threads())  # what this process starts gets it too
    for bad in ("abc", "0", "-2"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        with pytest.raises(ConfigError, match=rf"^OMP_NUM_THREADS='{bad}': must be a positive number of threads"):
            threads.given(None)
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # empty is unset
    assert threads.given(None) is None
    assert threads.given(None, deterministic=True).threads == CORES  # the load never changes it
    assert not threads.given(None, deterministic=True).adapts


class FakeMeter:
    """Other work's load as a list of readings, one per measurement."""

    def __init__(self, loads):
        self.loads = list(loads)

    def others(self):
        return self.loads.pop(0)


def test_the_count_follows_a_neighbour_down_at_once_and_up_when_two_readings_agree(no_thread_env, monkeypatch, caplog):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr(threads, "LoadMeter", lambda: FakeMeter([0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    with caplog.at_level(logging.INFO, logger="seq2seq.core.threads"):
        job = threads.Threads(what="training")
        assert job.start() == 2 == torch.get_num_threads()
        seen = [job.check() for _ in range(6)]
    assert seen == [1, 1, 1, 1, 2, 2]  # down at the first busy reading; up after two free ones in a row
    assert torch.get_num_threads() == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "threads: 2 for training (2 cores free; measured again every 0 s)"
    assert messages[1:] == ["threads: 2 -> 1 for training (other work keeps 1.0 of 2 cores busy)",
                            "threads: 1 -> 2 for training (2 cores free)"]  # fmt: skip


def test_a_given_count_never_changes_and_warns_beside_busy_work(no_thread_env, monkeypatch, caplog):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "LoadMeter", lambda: FakeMeter([1.0]))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    with caplog.at_level(logging.INFO, logger="seq2seq.core.threads"):
        job = threads.Threads(2)
        assert job.start() == 2
        assert [job.check() for _ in range(3)] == [2, 2, 2]
    assert "threads: 2 for training (trainer.threads=2, as given)" in caplog.text
    assert "other work keeps 1.0 of 2 cores busy, and 2 threads wait for each other's cores" in caplog.text


def test_the_load_of_a_real_busy_process_is_measured():
    meter = threads.LoadMeter()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # its start-up
        meter.others()
        time.sleep(0.5)
        load = meter.others()
    finally:
        busy.kill()
        busy.wait()
    assert load is not None and 0.6 <= load <= CORES + 0.1  # the neighbour's core (and any other work's)
    assert threads.process_ticks(os.getpid()) > 0 and threads.process_ticks(busy.pid) == 0  # gone: nothing


@pytest.mark.slow
@pytest.mark.skipif(CORES < 2, reason="one core: every count is one")
def test_a_run_beside_a_busy_process_takes_the_free_cores_and_omp_100000_is_capped(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        args = [*TINY_ADDITION, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"]
        result = subprocess.run([sys.executable, "-m", "seq2seq.train", *args], capture_output=True, text=True, env=env)
    finally:
        busy.kill()
        busy.wait()
    assert result.returncode == 0, result.stderr[-2000:]
    chosen = int(result.stderr.split("threads: ")[1].split()[0])
    assert 1 <= chosen <= CORES - 1 and "busy; measured again every 1 s)" in result.stderr  # the neighbour's core
    env["OMP_NUM_THREADS"] = "100000"
    result = subprocess.run([sys.executable, "-m", "seq2seq.train", *args[:-1], f"hydra.run.dir={tmp_path / 'big'}"],
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]  # it segfaulted
    assert f"OMP_NUM_THREADS=100000 is more than 4 threads a core on {CORES} cores" in result.stderr
    assert f"threads: {4 * CORES} for training (OMP_NUM_THREADS=100000, capped)" in result.stderr
    env["OMP_NUM_THREADS"] = "lots"
    result = subprocess.run([sys.executable, "-m", "seq2seq.generate", f"checkpoint={tmp_path / 'run'}",
                             "question=1+1"], capture_output=True, text=True, env=env)  # fmt: skip
    last = result.stderr.strip().splitlines()[-1]  # after libgomp's own word on the value
    assert result.returncode == 2 and last.startswith("error: OMP_NUM_THREADS='lots': must be a positive")
    assert "Traceback" not in result.stderr


def test_training_adapts_its_threads_while_it_runs(no_thread_env, monkeypatch, tmp_path, caplog):
    """A neighbour arriving mid-run (a mocked reading) takes a core at the next check; the run says so."""
    from seq2seq.training.loop import train

    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr(threads, "LoadMeter", lambda: FakeMeter([0.0, 0.0] + [1.0] * 100))
    seen = []
    monkeypatch.setattr(threads, "apply", lambda n: seen.append(n))
    with caplog.at_level(logging.INFO, logger="seq2seq.core.threads"):
        train(compose_train(tmp_path / "run", *TINY_ADDITION, "trainer.max_steps=4"))
    assert seen == [2, 1]
    assert "threads: 2 -> 1 for training (other work keeps 1.0 of 2 cores busy)" in caplog.text


def test_deterministic_runs_keep_one_count(no_thread_env, monkeypatch, tmp_path, caplog):
    from seq2seq.training.loop import train

    monkeypatch.setattr(threads, "CHECK_SECONDS", 0.0)
    monkeypatch.setattr(threads, "LoadMeter", lambda: FakeMeter([1.0] * 100))
    with caplog.at_level(logging.INFO, logger="seq2seq.core.threads"):
        train(compose_train(tmp_path / "run", *TINY_ADDITION, "trainer.max_steps=3", "trainer.deterministic=true"))
    assert f"threads: {CORES} for training (trainer.deterministic: one count for the whole run" in caplog.text
    assert "->" not in caplog.text
    assert torch.get_num_threads() == CORES


# --- trainer.precision=auto ---------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "seq2seq" / "precision.json"


def test_the_measurements_decide(cache):
    assert precision.decide({"speedup": 1.3, "loss_change": 0.002, "grad_cosine": 0.999})[0] == "bf16"
    slower = precision.decide({"speedup": 0.9, "loss_change": 0.0, "grad_cosine": 1.0})
    assert slower == ("fp32", "bf16 ran at 0.90x the speed of fp32 on this model's steps")
    assert precision.decide({"speedup": 1.02, "loss_change": 0.0, "grad_cosine": 1.0})[0] == "fp32"  # a tie
    guard = precision.decide({"speedup": 1.5, "loss_change": 0.03, "grad_cosine": 0.999})
    assert guard[0] == "fp32" and "outside the accuracy guard" in guard[1]
    assert precision.decide({"speedup": 1.5, "loss_change": 0.0, "grad_cosine": 0.9})[0] == "fp32"


def tiny_setup(tmp_path, *overrides):
    from seq2seq.training.build import build

    return build(compose_train(tmp_path / "run", *TINY_ADDITION, *overrides))


@pytest.mark.parametrize("speedup,expected", [(1.4, "bf16"), (0.8, "fp32")])
def test_auto_probes_once_then_reads_the_cache(cache, monkeypatch, tmp_path, caplog, speedup, expected):
    setup = tiny_setup(tmp_path)
    monkeypatch.setattr(precision, "bf16_missing", lambda kind: None)  # as on a CPU with bf16 kernels
    probes = []
    measured = {"speedup": speedup, "loss_change": 0.001, "grad_cosine": 0.9995}
    monkeypatch.setattr(precision, "probe", lambda *a: probes.append(a) or measured)
    with caplog.at_level(logging.INFO, logger="seq2seq.training.precision"):
        assert precision.choose("auto", setup) == expected
        assert precision.choose("auto", setup) == expected
    assert len(probes) == 1 and cache.is_file()
    first, second = (r.getMessage() for r in caplog.records)
    assert first.startswith(f"trainer.precision=auto: {expected} (") and f"{speedup:.2f}x" in first
    assert first.endswith("measured now)") and f"({cache})" in second
    assert precision.choose("fp32", setup) == "fp32" and len(probes) == 1  # given: no probe
    other = tiny_setup(tmp_path, "model.hidden_size=16")  # another model: measured anew
    precision.choose("auto", other)
    assert len(probes) == 2


def test_auto_is_fp32_where_bf16_cannot_run(cache, monkeypatch, tmp_path, caplog):
    setup = tiny_setup(tmp_path)
    monkeypatch.setattr(precision, "bf16_missing", lambda kind: "Some CPU has no bf16 kernels here")
    monkeypatch.setattr(precision, "probe", lambda *a: pytest.fail("no probe where bf16 cannot run"))
    with caplog.at_level(logging.INFO, logger="seq2seq.training.precision"):
        assert precision.choose("auto", setup) == "fp32"
    assert "auto: fp32 (bf16 cannot run here: Some CPU has no bf16 kernels here)" in caplog.text
    assert not cache.exists()


def test_the_probe_leaves_the_model_and_the_random_generators_as_they_were(cache, monkeypatch, tmp_path):
    """The probe's mechanics on any CPU: both sides run here in fp32 (autocast disabled), so the
    measurements must show two equal computations."""
    from seq2seq.training import build

    original = build.autocast
    monkeypatch.setattr(build, "autocast", lambda device, name: original(device, "fp32"))
    setup = tiny_setup(tmp_path)
    weights = {k: v.clone() for k, v in setup.model.state_dict().items()}
    rng = torch.get_rng_state()
    measured = precision.probe(setup.task, setup.model, setup.task.train_batches(0)[0], setup.device)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, setup.model.state_dict()[k]) for k, v in weights.items())
    assert all(p.grad is None for p in setup.model.parameters())
    assert measured["loss_change"] == 0 and measured["grad_cosine"] == pytest.approx(1.0)
    assert 0.2 < measured["speedup"] < 5  # the same work on both sides


def test_a_crafted_cache_is_no_cache(cache, monkeypatch, tmp_path):
    setup = tiny_setup(tmp_path)
    monkeypatch.setattr(precision, "bf16_missing", lambda kind: None)
    monkeypatch.setattr(precision, "probe", lambda *a: {"speedup": 0.5, "loss_change": 0.0, "grad_cosine": 1.0})
    cache.parent.mkdir(parents=True)
    key = precision.cache_key(setup.device, setup.model_spec, setup.task.train_batches(0)[0])
    for crafted in ("{not json", json.dumps({key: {"choice": "fp64", "why": "x"}}), "[1, 2]"):
        cache.write_text(crafted)
        assert precision.choose("auto", setup) == "fp32"  # measured, not read
    cache.unlink()
    os.mkfifo(cache)  # a FIFO would hang a plain read
    assert precision.choose("auto", setup) == "fp32" and cache.is_file()
    target = tmp_path / "elsewhere.json"
    target.write_text("keep")
    cache.unlink()
    cache.symlink_to(target)  # a planted link is replaced, never written through
    precision.choose("auto", setup)
    assert target.read_text() == "keep" and not cache.is_symlink()


def test_a_resumed_auto_run_keeps_the_precision_it_chose(cache, monkeypatch, tmp_path, caplog):
    from seq2seq.training import checkpoint as ckpt
    from seq2seq.training.loop import train

    run = tmp_path / "run"
    train(compose_train(run, *TINY_ADDITION, "trainer.max_epochs=1", "trainer.precision=auto"))
    assert ckpt.read(run / "last.pt", "last.pt")["progress"]["precision"] == "fp32"
    monkeypatch.setattr(precision, "bf16_missing", lambda kind: None)  # a probe would now say bf16 ...
    monkeypatch.setattr(precision, "probe", lambda *a: {"speedup": 2.0, "loss_change": 0.0, "grad_cosine": 1.0})
    with caplog.at_level(logging.INFO, logger="seq2seq.training.precision"):
        train(compose_train(run, *TINY_ADDITION, "trainer.max_epochs=2", "trainer.precision=auto",
                            f"trainer.resume={run}"))  # fmt: skip
    assert "trainer.precision=auto: fp32, as this run chose when it started" in caplog.text  # ... not on resume
