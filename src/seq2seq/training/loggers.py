"""Where a run's curves go: the `logger` config group. TensorBoard by default; several at once with
`logger=[tensorboard,csv]`; MLflow and Weights & Biases with their extras (`seq2seq[mlflow]`,
`seq2seq[wandb]`).

Every logger takes the same calls from the training loop (`Loggers` passes each call to all of them):
    add_scalar(tag, value, step)   step is the optimizer step for train/loss and val_step/*, the epoch
                                   for every other tag (events.STEP_TAGS)
    add_text(tag, text, step), add_figure(tag, figure, step)
    start(columns, metrics)        the run's hyperparameters (hparams.columns) when it starts
    end(), flush(), close()
A logger is built with the run directory and, when a run resumes in place, `resume_at=(step, epoch)`:
the checkpoint's position, so that what a crashed run logged past it can be dropped.
"""

import csv
import html
import logging
import time
from pathlib import Path

from seq2seq.core.errors import ConfigError
from seq2seq.core.extras import require
from seq2seq.training import events, hparams

log = logging.getLogger(__name__)


class Loggers:
    """All configured loggers as one (none on ranks other than 0)."""

    def __init__(self, loggers: list):
        self.loggers = loggers

    def __getattr__(self, name):
        def call(*args, **kwargs):
            for logger in self.loggers:
                getattr(logger, name)(*args, **kwargs)

        return call


class TensorBoardLogger:
    """Event files in the run directory; the HPARAMS tab row is written at the start (see hparams)."""

    def __init__(self, run_dir: str, resume_at: tuple[int, int] | None = None):
        from torch.utils.tensorboard import SummaryWriter

        run_dir = Path(run_dir)
        if resume_at is not None:
            events.compact_events(run_dir, *resume_at)
        before = {p.name for p in events.event_files(run_dir)}
        self.writer = SummaryWriter(str(run_dir))
        made = {p.name for p in events.event_files(run_dir)} - before  # the file it opened, recorded as this run's
        events.record(run_dir, (events.written(run_dir) or set()) | made)
        self.session_end = None

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def add_text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, "    " + text.replace("\n", "\n    "), step)  # indented: preformatted

    def add_figure(self, tag: str, figure, step: int) -> None:
        self.writer.add_figure(tag, figure, step)

    def start(self, columns: dict, metrics: list[str]) -> None:
        self.session_end = hparams.write_start(self.writer, columns, metrics)

    def end(self) -> None:
        if self.session_end is not None:
            self.writer.file_writer.add_summary(self.session_end)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class CSVLogger:
    """Scalars as rows `tag,step,value,time` of <run dir>/metrics.csv (one file, appended on resume),
    for pandas or a spreadsheet: `pd.read_csv(f).pivot_table(index="step", columns="tag")`."""

    FIELDS = ("tag", "step", "value", "time")

    def __init__(self, run_dir: str, resume_at: tuple[int, int] | None = None, filename: str = "metrics.csv"):
        self.path = Path(run_dir) / filename
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            raise ConfigError(f"{self.path}: not a regular file (a link?): the CSV logger will not write through it")
        if resume_at is not None and self.path.is_file():
            events.trim_csv(self.path, self.FIELDS, *resume_at)
        new = not self.path.is_file()
        self.file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(self.FIELDS)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.writerow((tag, step, repr(float(value)), f"{time.time():.3f}"))

    def add_text(self, tag: str, text: str, step: int) -> None:
        pass  # scalars only: samples are in train.log and TensorBoard

    def add_figure(self, tag: str, figure, step: int) -> None:
        pass

    def start(self, columns: dict, metrics: list[str]) -> None:
        pass  # the resolved config is in config.yaml beside it

    def end(self) -> None:
        pass

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class MLflowLogger:
    """One MLflow run per training process. The default store is `outputs/mlflow.db` (SQLite, no server,
    no network; `mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db`)."""

    EXTRAS = ("mlflow",)  # optional packages (seq2seq.core.extras)

    def __init__(
        self,
        run_dir: str,
        resume_at: tuple[int, int] | None = None,
        tracking_uri: str = "sqlite:///outputs/mlflow.db",
        experiment: str = "seq2seq",
        run_name: str | None = None,
    ):
        self.mlflow = require("mlflow", "logger=mlflow")
        self.mlflow.set_tracking_uri(tracking_uri)
        found = self.mlflow.get_experiment_by_name(experiment)
        if found is None:  # artifacts beside a local store, not in the working directory's ./mlruns
            local = tracking_uri.startswith("sqlite:///")
            where = Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlruns" if local else None
            self.mlflow.create_experiment(experiment, artifact_location=where.resolve().as_uri() if where else None)
        self.mlflow.set_experiment(experiment)
        self.run = self.mlflow.start_run(run_name=run_name or Path(run_dir).name, tags={"run_dir": str(run_dir)})
        if resume_at is not None:
            self.mlflow.set_tag("resumed_at_step", resume_at[0])

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.mlflow.log_metric(tag, value, step=step)

    def add_text(self, tag: str, text: str, step: int) -> None:
        self.mlflow.log_text(text, f"{tag}/{step:06d}.txt")

    def add_figure(self, tag: str, figure, step: int) -> None:
        self.mlflow.log_figure(figure, f"{tag}/{step:06d}.png")

    def start(self, columns: dict, metrics: list[str]) -> None:
        self.mlflow.log_params(columns)

    def end(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.mlflow.end_run()


class WandbLogger:
    """A Weights & Biases run, offline by default (files under <run dir>/wandb; upload later with
    `wandb sync`). Epoch-indexed tags are plotted against `epoch`, step-indexed ones against `step`."""

    EXTRAS = ("wandb",)

    def __init__(
        self,
        run_dir: str,
        resume_at: tuple[int, int] | None = None,
        project: str = "seq2seq",
        entity: str | None = None,
        mode: str = "offline",
        run_name: str | None = None,
    ):
        wandb = require("wandb", "logger=wandb")
        self.run = wandb.init(
            project=project, entity=entity, mode=mode, dir=str(run_dir), name=run_name or Path(run_dir).name
        )
        for axis in ("epoch", "step"):
            self.run.define_metric(axis)
        self.wandb, self.defined = wandb, set()

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        axis = "step" if tag.startswith(events.STEP_TAGS) else "epoch"
        if tag not in self.defined:
            self.run.define_metric(tag, step_metric=axis)
            self.defined.add(tag)
        self.run.log({tag: value, axis: step})

    def add_text(self, tag: str, text: str, step: int) -> None:
        self.run.log({tag: self.wandb.Html(f"<pre>{html.escape(text)}</pre>"), "epoch": step})

    def add_figure(self, tag: str, figure, step: int) -> None:
        self.run.log({tag: self.wandb.Image(figure), "epoch": step})

    def start(self, columns: dict, metrics: list[str]) -> None:
        self.run.config.update(columns)

    def end(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.run.finish()
