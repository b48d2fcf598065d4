"""The `logger` group: CSV, MLflow and Weights & Biases (offline) beside TensorBoard, read back."""

import csv
import json
import struct
import sys
import time
from pathlib import Path

import pytest

from seq2seq.core.errors import ConfigError
from seq2seq.training.loggers import CSVLogger
from seq2seq.training.loop import train

from .helpers import TINY_ADDITION, scalars

QUICK = [*TINY_ADDITION, "trainer.max_epochs=2", "trainer.max_steps=15"]  # 11 steps an epoch: ends mid-epoch


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_holds_what_tensorboard_holds(make_cfg):
    cfg = make_cfg(*QUICK, "logger=[tensorboard,csv]")
    run = Path(cfg.paths.output_dir)
    train(cfg)
    rows = csv_rows(run / "metrics.csv")
    for tag in ("train/loss", "train/epoch_loss", "val/acc", "val/loss", "val_step/acc"):
        from_csv = [(int(r["step"]), float(r["value"])) for r in rows if r["tag"] == tag]
        from_events = scalars(run, tag)
        assert [s for s, _ in from_csv] == [s for s, _ in from_events], tag
        assert [v for _, v in from_csv] == pytest.approx([v for _, v in from_events], rel=1e-6), tag
    assert {r["tag"] for r in rows} >= {"train/lr", "val/best_acc"}


def test_csv_alone_writes_no_event_files(make_cfg):
    cfg = make_cfg(*QUICK, "logger=csv")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "metrics.csv").is_file() and not list(run.glob("events.out.tfevents.*"))


def test_csv_resumed_in_place_drops_rows_past_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.csv"
    rows = [("train/loss", 10, 1.0), ("train/loss", 12, 0.9), ("val/acc", 1, 0.1), ("val/acc", 2, 0.2)]
    rows += [("val_step/acc", 10, 0.1), ("val_step/acc", 12, 0.2)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSVLogger.FIELDS)
        w.writerows((*r, 0.0) for r in rows)
    logger = CSVLogger(str(tmp_path), resume_at=(11, 1))  # the checkpoint: step 11, one epoch done
    logger.add_scalar("train/loss", 0.95, 12)
    logger.close()
    kept = [(r["tag"], int(r["step"]), float(r["value"])) for r in csv_rows(path)]
    assert kept == [("train/loss", 10, 1.0), ("val/acc", 1, 0.1), ("val_step/acc", 10, 0.1), ("train/loss", 12, 0.95)]


@pytest.mark.slow
def test_csv_survives_a_mangled_file_and_refuses_a_planted_link(tmp_path, make_cfg):
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"tag,step,value,time\ntrain/loss,1,2.0,0\ntrain/loss,x,1\n\xff\xfe,,\nval/acc\n")
    CSVLogger(str(tmp_path), resume_at=(5, 1)).close()
    assert [(r["tag"], r["step"]) for r in csv_rows(path)] == [("train/loss", "1")]  # the rest dropped
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "elsewhere.csv").write_text("keep me\n")
    (run / "metrics.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(ConfigError, match=r"metrics\.csv is a symbolic link"):
        train(make_cfg(*QUICK, "logger=[csv]", out=run))
    assert (tmp_path / "elsewhere.csv").read_text() == "keep me\n"


@pytest.mark.slow
def test_mlflow_run_holds_the_curves_and_the_hyperparameters(make_cfg, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="the [mlflow] extra is not installed")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = make_cfg(*QUICK, "logger=[mlflow]", f"logger.mlflow.tracking_uri={uri}", "name=logged")
    metrics = train(cfg)
    client = mlflow.tracking.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("logged").experiment_id])
    history = client.get_metric_history(run.info.run_id, "val/acc")
    assert [m.step for m in history] == [1]
    assert history[0].value == pytest.approx(checkpoint_metric(cfg, "val/acc"))
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_step/acc")] == [15]
    assert client.get_metric_history(run.info.run_id, "val_step/acc")[0].value == pytest.approx(metrics["val/acc"])
    assert run.data.params["name"] == "logged" and run.data.params["model"] == "Seq2seq"
    assert run.data.tags["run_dir"] == cfg.paths.output_dir
    assert (tmp_path / "mlruns").is_dir()  # artifacts beside the store, not in the working directory


def checkpoint_metric(cfg, tag: str) -> float:
    """The first full epoch's value of `tag`, from the run's checkpoint of that epoch's end."""
    from seq2seq.training import checkpoint as ckpt

    return ckpt.read(Path(cfg.paths.output_dir) / "best.pt")["metrics"][tag]


def wandb_history(path: Path) -> list[dict]:
    """The history rows of an offline W&B run file: a 7-byte header, then LevelDB-log records (32 KiB
    blocks, each record cut into chunks with a 7-byte header: crc, length, type) holding protobufs."""
    from wandb.proto import wandb_internal_pb2

    data, pos, chunks, rows = path.read_bytes(), 7, b"", []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    return rows


@pytest.mark.slow
def test_wandb_offline_run_holds_the_curves(make_cfg, monkeypatch):
    pytest.importorskip("wandb", reason="the [wandb] extra is not installed")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_cfg(*QUICK, "logger=[wandb]")
    train(cfg)
    (file,) = Path(cfg.paths.output_dir).glob("wandb/offline-run-*/run-*.wandb")
    deadline, size = time.monotonic() + 20, -1
    while file.stat().st_size != size and time.monotonic() < deadline:  # W&B's own writer may still flush
        size = file.stat().st_size
        time.sleep(0.5)
    history = wandb_history(file)
    val = [(h["epoch"], h["val/acc"]) for h in history if "val/acc" in h]
    assert [epoch for epoch, _ in val] == [1], history
    assert val[0][1] == pytest.approx(checkpoint_metric(cfg, "val/acc")), history
    assert [h["step"] for h in history if "train/loss" in h] == list(range(1, 16)), history
    assert [h["step"] for h in history if "val_step/acc" in h] == [15], history


def test_a_missing_extra_names_its_pip_command(make_cfg, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb fails, as where it is not installed
    with pytest.raises(ConfigError, match=r"logger=wandb needs the package wandb: pip install '\.\[wandb\]'"):
        train(make_cfg(*QUICK, "logger=[wandb]"))
