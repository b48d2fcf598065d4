import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seq2seq.core.device import bf16_missing
from seq2seq.core.errors import ConfigError
from seq2seq.training import checkpoint as ckpt
from seq2seq.training.config import CONFIG_DIR
from seq2seq.training.loop import train

from .helpers import TINY_ADDITION, assert_ok, needs_bf16, run_module, scalars

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(experiment):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"])
    assert cfg.name == experiment
    assert cfg.model._target_.startswith("seq2seq.models.")


def test_addition_experiments_differ_only_as_the_chapter_says(make_cfg):
    base, rev, peeky = (make_cfg(f"experiment={e}_addition") for e in ("baseline", "reverse", "peeky"))
    assert (base.task.reverse, rev.task.reverse, peeky.task.reverse) == (False, True, True)
    assert base.model._target_ == rev.model._target_ == "seq2seq.models.Seq2seq"
    assert (
        peeky.model._target_ == base.model._target_ and peeky.model.decoder == "peeky" and base.model.decoder == "plain"
    )
    assert base.optimizer.lr == 0.001 and base.task.batch_size == 128
    assert base.trainer.max_epochs == 25 and base.trainer.grad_clip == 5.0
    assert make_cfg("experiment=peeky_addition", "model.hidden_size=256").model.hidden_size == 256
    attention = make_cfg("experiment=attention_addition")
    assert attention.model.decoder == "attention" and not attention.task.reverse


def test_loss_falls_when_overfitting(make_cfg):
    cfg = make_cfg(
        *TINY_ADDITION,
        "task.num_examples=64",
        "task.batch_size=16",
        "trainer.max_epochs=60",
        "optimizer.lr=0.01",
        "task.reverse=true",
        "model.decoder=peeky",
        "model.wordvec_size=8",
        "model.hidden_size=32",
    )
    train(cfg)
    losses = [v for _, v in scalars(Path(cfg.paths.output_dir), "train/epoch_loss")]
    assert losses[-1] < 0.1 * losses[0]  # 58 examples, 240 steps: memorised


def test_end_to_end_run_writes_events_checkpoints_and_config(make_cfg):
    cfg = make_cfg(*TINY_ADDITION, "trainer.max_epochs=2")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert {"last.pt", "best.pt", "config.yaml"} <= {p.name for p in run.iterdir()}
    for tag in ("val/acc", "val/char_acc", "val/loss", "train/lr", "train/grad_norm"):
        assert [s for s, _ in scalars(run, tag)] == [1, 2], tag
    assert len(scalars(run, "train/loss")) == 2 * 11  # 360 train questions / 32 per batch (the rest dropped)
    assert 0.0 <= metrics["val/acc"] <= 1.0 and metrics["epoch"] == 2.0
    acc = EventAccumulator(str(run))
    acc.Reload()
    assert "val/samples/text_summary" in acc.Tags()["tensors"]
    saved = ckpt.read(run / "last.pt")
    assert saved["progress"]["epoch"] == 2 and saved["config"]["seed"] == 0
    assert saved["task"]["vocab"][0] == " "


def test_attention_addition_logs_heatmaps_and_other_models_none(make_cfg, tmp_path):
    for decoder, expected in (("attention", 1), ("peeky", 0)):
        cfg = make_cfg(*TINY_ADDITION, f"model.decoder={decoder}", "trainer.max_epochs=1", out=tmp_path / decoder)
        train(cfg)
        images = EventAccumulator(cfg.paths.output_dir, size_guidance={"images": 0}).Reload().Tags()["images"]
        assert images.count("val/attention") == expected


def test_checkpoint_rebuilds_the_model_alone(make_cfg):
    cfg = make_cfg(
        *TINY_ADDITION, "trainer.max_epochs=1", "model.decoder=peeky", "model.wordvec_size=8", "model.hidden_size=32"
    )
    train(cfg)
    model, saved = ckpt.read_model(Path(cfg.paths.output_dir) / "best.pt")
    assert type(model).__name__ == "Seq2seq" and type(model.decoder).__name__ == "PeekyDecoder"
    assert saved["model"]["args"]["decoder"] == "peeky"
    assert model.decoder.lstm.hidden_size == 32


def test_val_every_n_steps_writes_a_step_curve_on_a_subset(make_cfg):
    run = Path(make_cfg().paths.output_dir)
    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=2", "trainer.val_every_n_steps=4", "task.eval_limit=7"))
    steps = ckpt.read(run / "last.pt")["progress"]["step"]  # two epochs
    curve = scalars(run, "val_step/acc")
    assert [s for s, _ in curve] == sorted({*range(4, steps + 1, 4), steps // 2, steps})  # every 4, each epoch's end
    assert all(round(v * 7) == v * 7 for _, v in curve)  # exact match over 7 questions
    assert [s for s, _ in scalars(run, "val/acc")] == [1, 2]


@pytest.mark.slow
def test_two_job_multirun_writes_two_runs(tmp_path):
    args = ["-m", "seed=1,2", *TINY_ADDITION, "trainer.max_steps=3", f"hydra.sweep.dir={tmp_path}"]
    assert_ok(run_module("seq2seq.train", *args, cwd=tmp_path))
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [p.name[:2] for p in runs] == ["0_", "1_"]
    assert all("seed-" in p.name and "=" not in p.name for p in runs)  # the path works as an override value
    assert_ok(run_module("seq2seq.generate", f"checkpoint={runs[1]}", "question=1+2"))
    for run in runs:
        assert len(list(run.glob("events.out.tfevents.*"))) >= 1 and (run / "last.pt").is_file()
    seeds = [ckpt.read(r / "last.pt")["config"]["seed"] for r in runs]
    assert seeds == [1, 2]


@pytest.mark.slow
def test_plot_curves_writes_a_png_with_one_line_per_run(make_cfg, tmp_path):
    for seed in (0, 1):
        train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=2", f"seed={seed}", out=tmp_path / "runs" / f"seed{seed}"))
    script = "seq2seq.plot"  # python -m seq2seq.plot, installed as seq2seq-plot
    out = tmp_path / "curves.png"
    result = subprocess.run(
        [sys.executable, "-m", script, str(tmp_path / "runs"), "--out", str(out), "--table", "--x", "time"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in result.stdout.splitlines() if line.startswith("| run (seed")]
    assert len(rows) == 2 and all("| 2 |" in row for row in rows)
    assert all(row.split(" | ")[2].endswith("%") for row in rows), rows  # accuracy as the README writes it
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    table = subprocess.run(  # the table alone writes nothing, and prints only the table on stdout
        [sys.executable, "-m", script, str(tmp_path / "runs"), "--table"], capture_output=True, text=True, cwd=quiet
    )
    assert table.returncode == 0 and not list(quiet.iterdir()), table.stderr
    assert table.stdout.splitlines()[0].startswith("| run") and "wrote" not in table.stdout
    keys = "seed,optimizer,scheduler,model.cell"
    labelled = subprocess.run([sys.executable, "-m", script, str(tmp_path / "runs"), "--table", "--label", keys],
                              capture_output=True, text=True, cwd=quiet)  # fmt: skip
    rows = [line for line in labelled.stdout.splitlines() if line.startswith("| seed=")]
    assert rows[0].startswith("| seed=0 optimizer=Adam scheduler=- cell=lstm |"), rows  # a group by its class
    missing = subprocess.run([sys.executable, "-m", script, str(tmp_path / "nothing")], capture_output=True, text=True)
    assert missing.returncode != 0 and "no such file" in missing.stderr


def test_device_selection(make_cfg):
    from seq2seq.core.device import select_device
    from seq2seq.core.errors import ConfigError
    from seq2seq.training.loop import build

    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    setup = build(make_cfg(*TINY_ADDITION, "trainer.device=cpu"))
    assert next(setup.model.parameters()).device.type == "cpu" and setup.task.x_train.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            select_device("cuda")
    with pytest.raises(ConfigError, match=r"trainer\.device='tpu'"):
        train(make_cfg(*TINY_ADDITION, "trainer.device=tpu"))


@pytest.mark.slow
@pytest.mark.skipif(not bf16_missing("cpu"), reason="this CPU runs bf16: the refusal is tested by monkeypatching")
def test_bf16_is_refused_in_one_line_where_the_cpu_cannot_run_it(tmp_path):
    """On a CPU without bf16 kernels (AVX2 only), training and the benchmark refuse bf16 before anything
    is built or written; auto trains in fp32."""
    run = tmp_path / "run"
    result = run_module("seq2seq.train", *TINY_ADDITION, "trainer.precision=bf16", f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: trainer.precision=bf16: {bf16_missing('cpu')}; use "
                                                  "trainer.precision=fp32 (or auto)"]  # fmt: skip
    assert not run.exists()  # refused before Hydra made the run directory
    bench = run_module("seq2seq.bench", "--quick", "--skip-ptb", "--precision", "bf16", cwd=tmp_path)
    assert bench.returncode == 2 and "--precision bf16 is unavailable: " in bench.stderr.splitlines()[-1]
    auto = run_module("seq2seq.train", *TINY_ADDITION, "trainer.max_steps=2", "trainer.precision=auto",
                      f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert_ok(auto)
    assert "trainer.precision=auto: fp32" in auto.stderr


@needs_bf16
def test_bf16_precision_trains_close_to_fp32(make_cfg, tmp_path):
    fp32 = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=2", out=tmp_path / "fp32"))
    bf16 = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=2", "trainer.precision=bf16", out=tmp_path / "bf16"))
    assert bf16["val/loss"] == pytest.approx(fp32["val/loss"], rel=0.05)
    assert bf16["val/loss"] != fp32["val/loss"]  # it really ran in bf16


def test_a_run_ends_with_a_summary_line(make_cfg, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="seq2seq.summary"):
        metrics = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=2"))
    line = caplog.records[-1].getMessage()
    best = metrics["best/val/acc"]
    assert line.startswith(f"done: best val/acc {best:.4f} (step ")
    assert f"final val/acc {metrics['val/acc']:.4f}" in line
    assert "2 full epochs, 22 steps in " in line and line.endswith("best.pt")


def test_early_stopping_on_a_plateau_and_on_resume(make_cfg, tmp_path):
    # the tiny model's val/acc stays 0: epoch 1 sets the best, epochs 2 and 3 do not improve it
    run = tmp_path / "plateau"
    metrics = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=10", "trainer.early_stopping.patience=2", out=run))
    assert metrics["epoch"] == 3.0 and metrics["val/acc"] == 0.0
    more = ["trainer.max_epochs=10", f"trainer.resume={run}"]
    again = train(make_cfg(*TINY_ADDITION, *more, "trainer.early_stopping.patience=2", out=run))
    assert again["epoch"] == 3.0  # still stopped: the count is in the checkpoint
    longer = train(make_cfg(*TINY_ADDITION, *more, "trainer.early_stopping.patience=3", out=run))
    assert longer["epoch"] == 4.0  # more patience, one more stale epoch
    # val/loss falls every epoch, but not by more than min_delta
    loss = ["trainer.early_stopping.monitor=val/loss", "trainer.early_stopping.min_delta=100"]
    stopped = train(make_cfg(*TINY_ADDITION, "trainer.early_stopping.patience=1", *loss, out=tmp_path / "delta"))
    assert stopped["epoch"] == 2.0
    with pytest.raises(ConfigError, match=r"monitor='val/bleu' is not a validation metric here \(val/acc, "):
        train(make_cfg(*TINY_ADDITION, "trainer.early_stopping.patience=1", "trainer.early_stopping.monitor=val/bleu"))


@pytest.mark.slow
def test_the_hparams_row_is_written_at_the_start_with_the_columns_that_matter(tmp_path):
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    from .helpers import assert_ok, run_module

    run = tmp_path / "run"
    args = ["experiment=peeky_addition", *TINY_ADDITION, "model.bidirectional=true", "trainer.max_steps=5"]
    assert_ok(run_module("seq2seq.train", *args, f"hydra.run.dir={run}", cwd=tmp_path))  # stopped early
    rows, tags = [], set()
    for path in run.glob("events.out.tfevents.*"):
        for event in map(Event.FromString, RawEventFileLoader(str(path)).Load()):
            for value in event.summary.value:
                tags.add(value.tag)
                if value.tag == "_hparams_/session_start_info":
                    rows.append(HParamsPluginData.FromString(value.metadata.plugin_data.content).session_start_info)
    (row,) = rows
    shown = {k: v.string_value or v.number_value for k, v in row.hparams.items()}
    assert shown["name"] == "peeky_addition" and shown["experiment"] == "peeky_addition"
    assert shown["model"] == "Seq2seq" and shown["model.decoder"] == "peeky"
    assert shown["model.bidirectional"] == "true"  # not 1.0000
    assert shown["debug"] == "tiny" and shown["trainer.max_steps"] == 5 and "seed" in shown
    assert not {k for k in shown if k.startswith(("paths.", "trainer.progress", "trainer.device"))}
    assert "val/best_acc" in tags and not {t for t in tags if t.startswith("hparam/")}  # curves sort first


def test_same_seed_same_metrics_other_seed_other_run(make_cfg, tmp_path):
    a = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", out=tmp_path / "a"))
    b = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", out=tmp_path / "b"))
    c = train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", "seed=1", out=tmp_path / "c"))
    assert {k: v for k, v in a.items() if k != "val/time"} == {k: v for k, v in b.items() if k != "val/time"}
    assert a["val/loss"] != c["val/loss"]
    assert ckpt.read(tmp_path / "c" / "last.pt")["config"]["seed"] == 1


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(make_cfg, tmp_path, monkeypatch):
    from seq2seq.tasks import AdditionTask
    from seq2seq.training.loop import NonFiniteLossError

    train(make_cfg(*TINY_ADDITION, "trainer.max_epochs=1", out=tmp_path / "run"))
    good = ckpt.read(tmp_path / "run" / "last.pt")
    original = AdditionTask.training_step

    def exploding(self, model, batch, carry=None):
        loss, carry = original(self, model, batch, carry)
        return loss * float("nan"), carry

    monkeypatch.setattr(AdditionTask, "training_step", exploding)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 12 \(epoch 2\)"):
        train(
            make_cfg(*TINY_ADDITION, "trainer.max_epochs=2", f"trainer.resume={tmp_path / 'run'}", out=tmp_path / "run")
        )
    kept = ckpt.read(tmp_path / "run" / "last.pt")
    for key in ("rng", "cuda_rng"):  # tensors (cuda_rng: None without CUDA)
        a, b = kept["progress"].pop(key), good["progress"].pop(key)
        assert (a is None and b is None) or a.equal(b), key
    assert kept["progress"] == good["progress"]
