"""A run's TensorBoard events and metrics.csv cut back to the checkpoint it resumes from: a crashed run may have
logged past its checkpoint, and each resume writes files of its own. Only the event files this project's
writers make are read or replaced; what cannot be read whole is kept aside, never deleted."""

import contextlib
import csv
import io
import logging
import os
import re
import shutil
import struct
import tempfile
import time
from pathlib import Path

from seq2seq.core.files import write_file

log = logging.getLogger(__name__)

STEP_TAGS = ("train/loss", "val_step/")  # TensorBoard tags (or prefixes) indexed by optimizer step; all others by epoch


# The event files this project's TensorBoard writer makes (torch's SummaryWriter and compact_events):
# events.out.tfevents.<creation time>.<host>.<pid>.<n> or .compacted; no other file is read or deleted.
EVENT_FILE = re.compile(r"events\.out\.tfevents\.\d{10}\.[^/]+")


def event_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.iterdir() if EVENT_FILE.fullmatch(p.name) and p.is_file() and not p.is_symlink())


def read_events(path: Path):
    """The events of a TensorBoard file, or None when it cannot be read whole. Records are framed as
    <length: u64> <masked crc32c of length: u32> <data> <crc: u32>; a crash mid-write leaves a last
    record cut short (its length intact), which is dropped; a length whose checksum fails, or data that
    is not an event, means the file is damaged, and it is kept, never rewritten."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    data, events, at = path.read_bytes(), [], 0
    while len(data) - at >= 12:
        header = data[at : at + 8]
        if masked_crc32c(header) != struct.unpack("<I", data[at + 8 : at + 12])[0]:
            return None
        (length,) = struct.unpack("<Q", header)
        if at + 16 + length > len(data):
            break  # the record a crash cut short
        try:
            events.append(Event.FromString(data[at + 12 : at + 12 + length]))
        except Exception:
            return None
        at += 16 + length
    return events


def keep_event(event, step: int, epoch: int) -> bool:
    """Whether an event written before a crash belongs to the state a resumed run continues from: step
    tags up to the checkpoint's step, epoch tags up to its completed epochs. The hparams summary and
    file headers are written anew."""
    if not event.HasField("summary"):
        return False
    tags = [v.tag for v in event.summary.value]
    if any(t.startswith(("_hparams_", "hparam/")) for t in tags):
        return False
    limit = step if any(t.startswith(STEP_TAGS) for t in tags) else epoch
    return event.step <= limit


def compact_events(run_dir: Path, step: int, epoch: int) -> None:
    """Rewrite a run's TensorBoard events as one file holding each (tag, step) once, up to where the
    resumed checkpoint stands: a crashed run may have logged past its checkpoint, and runs resumed
    before wrote their own files. The new file is complete before the old ones are deleted."""
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    files, loaded = [], {}
    for path in event_files(run_dir):
        events = read_events(path)
        if events is None:  # history that cannot be parsed is set aside under a name TensorBoard skips
            aside = path.with_name(path.name.replace("tfevents", "unreadable", 1))
            while aside.exists() or aside.is_symlink():
                aside = aside.with_name(aside.name + "_")
            log.warning(
                "%s cannot be read whole: kept aside as %s, its points left out of TensorBoard", path, aside.name
            )
            os.replace(path, aside)
        else:
            files.append(path)
            loaded[path] = events
    if not files:
        return
    seen, kept = set(), []
    for path in reversed(files):  # newest first: a step logged again after a resume wins
        for event in loaded[path]:
            key = (tuple(v.tag for v in event.summary.value), event.step)
            if keep_event(event, step, epoch) and key not in seen:
                seen.add(key)
                kept.append(event)
    kept.sort(key=lambda e: (e.step, e.wall_time))
    staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=".events."))
    try:
        writer = EventFileWriter(str(staging), filename_suffix=".compacted")
        for event in kept:
            writer.add_event(event)
        writer.close()
        (new,) = staging.iterdir()
        # TensorBoard reads a directory's files in name order and drops points that go back in step,
        # so the compacted file must sort before any file written after it: one second before the
        # oldest file it replaces (event file names start with their creation time).
        stamps = [p.name.split(".")[3] for p in files]
        first = min((int(s) for s in stamps if s.isdigit()), default=int(time.time()))
        os.replace(new, run_dir / f"events.out.tfevents.{first - 1:010d}.compacted")
        for path in files:
            path.unlink()
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    log.info("TensorBoard events: %d kept up to step %d / epoch %d", len(kept), step, epoch)


def trim_csv(path: Path, fields, step: int, epoch: int) -> None:
    """Drop the rows of metrics.csv (logger=csv) that a crashed run wrote past the checkpoint it resumes
    from, as compact_events does for TensorBoard: a row's step is the optimizer step for STEP_TAGS, the
    epoch for the others; unreadable rows go too."""

    def before(row: dict) -> bool:
        try:
            return int(row["step"]) <= (step if row["tag"].startswith(STEP_TAGS) else epoch)
        except (AttributeError, KeyError, TypeError, ValueError):
            return False

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.DictReader(f))
    kept = [row for row in rows if before(row)]
    if len(kept) < len(rows):
        log.info("%s: %d rows past the checkpoint or unreadable dropped", path.name, len(rows) - len(kept))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(kept)
    write_file(path, text.getvalue())
