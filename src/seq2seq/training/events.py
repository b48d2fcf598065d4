"""A run's TensorBoard events and metrics.csv cut back to the checkpoint it resumes from: a crashed run may have
logged past its checkpoint, and each resume writes files of its own. Only the event files this project's
writers make are read or replaced; what cannot be read whole is kept aside, never deleted."""

import contextlib
import csv
import io
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import time
from pathlib import Path

from seq2seq.core import compat
from seq2seq.core.files import read_names, write_file

log = logging.getLogger(__name__)

STEP_TAGS = ("train/loss", "val_step/")  # TensorBoard tags (or prefixes) indexed by optimizer step; all others by epoch


# The event files this project's TensorBoard writer makes (torch's SummaryWriter and compact_events):
# events.out.tfevents.<creation time>.<host>.<pid>.<n> or .compacted; no other file is read or deleted.
EVENT_FILE = re.compile(r"events\.out\.tfevents\.\d{10}\.[^/]+")


MAX_EVENTS_BYTES = 256 * 2**20  # an event file read for curves (images make them large)
SUMMARY_TAGS = ("val/best_",)  # one value at a run's end (val/best_acc), no curve

RECORD = ".events.json"  # the event files this run's writers made: compaction reads and replaces these only


def event_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.iterdir() if EVENT_FILE.fullmatch(p.name) and p.is_file() and not p.is_symlink())


def written(run_dir: Path) -> set[str] | None:
    """The names of the event files this run wrote (RECORD), or None for a run of an earlier version,
    which kept no record (seq2seq.core.compat: its event files are all taken as its own)."""
    path = run_dir / RECORD
    if not path.is_file() or path.is_symlink():
        return compat.events_without_record(path)
    return read_names(path, EVENT_FILE)


def record(run_dir: Path, names: set[str]) -> None:
    write_file(run_dir / RECORD, json.dumps(sorted(names)))


def own_event_files(run_dir: Path) -> list[Path]:
    """This run's event files: those its record lists (another writer's file in the folder is someone else's)."""
    names = written(run_dir)
    return [p for p in event_files(run_dir) if names is None or p.name in names]


def read_events(path: Path):
    """The events of a TensorBoard file, or None when it cannot be read whole. Records are framed as
    <length: u64> <masked crc32c of length: u32> <data> <masked crc32c of data: u32>; a crash mid-write
    leaves a last record cut short (its length intact), which is dropped; a checksum that fails (of the
    length or of the data), or data that is not an event, means the file is damaged, and it is kept, never
    rewritten."""
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
        body = data[at + 12 : at + 12 + length]
        if masked_crc32c(body) != struct.unpack("<I", data[at + 12 + length : at + 16 + length])[0]:
            return None
        try:
            events.append(Event.FromString(body))
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
    for path in own_event_files(run_dir):
        events = read_events(path)
        if events is None:  # history that cannot be parsed is set aside under a name TensorBoard skips
            aside = path.with_name(path.name.replace("tfevents", "unreadable", 1))
            while aside.exists() or aside.is_symlink():
                aside = aside.with_name(aside.name + "_")
            log.warning(
                "%s cannot be read whole: kept aside as %s, its points left out of TensorBoard", path, aside.name
            )
            os.replace(path, aside)
            if written(run_dir) is not None:  # no longer an event file of the run's
                record(run_dir, written(run_dir) - {path.name})
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
        first = min((int(s) for s in stamps if s.isdigit()), default=int(time.time())) - 1
        target = run_dir / f"events.out.tfevents.{first:010d}.compacted"
        while (target.exists() or target.is_symlink()) and target not in files:  # another's file: never replaced
            first -= 1
            target = run_dir / f"events.out.tfevents.{first:010d}.compacted"
        ours = (written(run_dir) or {p.name for p in files}) | {target.name}  # recorded before it exists
        record(run_dir, ours)
        os.replace(new, target)
        for path in files:
            if path != target:
                path.unlink()
        record(run_dir, ours - {p.name for p in files if p != target})
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


def curves(path: Path, prefix: str = "val/") -> dict[str, list[tuple[int, float]]]:
    """Each scalar tag starting with prefix: (step, value) sorted by step, the last value of a step kept
    (a resumed run may write a step twice). Unreadable or oversized event files are left out."""
    by_tag: dict[str, dict[int, float]] = {}
    for file in event_files(path):
        try:
            if file.stat().st_size > MAX_EVENTS_BYTES:
                continue
            events = read_events(file) or []
        except OSError:
            continue
        for event in events:
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                if (
                    value.tag.startswith(prefix)
                    and not value.tag.startswith(SUMMARY_TAGS)
                    and value.HasField("simple_value")
                ):
                    by_tag.setdefault(value.tag, {})[event.step] = value.simple_value
    return {tag: sorted(steps.items()) for tag, steps in sorted(by_tag.items())}
