"""Files read and written as plain values. Read bounded: a regular file only (never a FIFO or a device),
at most MAX_JSON bytes, strict JSON or YAML's safe loader (no tags that build objects), nested and counted
within bounds, so a crafted file costs what it holds. Written whole: through a temporary file of a unique name
and a rename, so a crash or a full disk never leaves half a file, and a link planted at the target is
replaced, never followed. No torch here: the ONNX runner and the explorer read files too."""

import hashlib
import json
import os
import shutil
import signal
import stat
import tempfile
from pathlib import Path

from seq2seq.core.errors import CheckpointError, ConfigError

MAX_NESTING = 32  # a saved config is a few levels deep; hundreds would exhaust recursion where it is read


MAX_VALUES = 1_000_000  # containers and values outside tensors: a vocabulary of 10,000 words is 10,000


CRASH_ENV = "SEQ2SEQ_CRASH_AT"
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: `SEQ2SEQ_CRASH_AT=<name>` (or `<name>@<n>`: the n-th time)
    kills the process here with SIGKILL, as a power cut or the OOM killer would (no cleanup at all)."""
    target, _, nth = os.environ.get(CRASH_ENV, "").partition("@")
    if target == name:
        _reached[name] = _reached.get(name, 0) + 1
        if _reached[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def nesting_beyond(obj, limit: int) -> str | None:
    """What makes a checkpoint's plain values too deep (more than `limit` levels) or too many (more than
    MAX_VALUES, counting every path: shared lists of lists would otherwise stand for 2**28 values in a
    few KB), found without recursion and in memory of the depth (a stack of iterators); None when
    neither."""
    count = 1
    stack = [(iter(obj.items() if isinstance(obj, dict) else enumerate(obj)), ("checkpoint",))] if isinstance(
        obj, dict | list | tuple) else []  # fmt: skip
    while stack:
        children, path = stack[-1]
        key, node = next(children, (None, stack))
        if node is stack:  # this container is done
            stack.pop()
            continue
        count += 1
        where = (*path, str(key)[:20])
        if count > MAX_VALUES:
            return f"{'.'.join(where)[:80]} (more than {MAX_VALUES:,} values in all)"
        if isinstance(node, dict | list | tuple):
            if len(where) > limit:
                return f"{'.'.join(where)[:80]} (nested more than {limit} levels deep)"
            stack.append((iter(node.items() if isinstance(node, dict) else enumerate(node)), where))
    return None


MAX_JSON = 4 * 2**20  # bytes of a JSON file read here: a 200,000-word vocabulary takes about 2.5 MB


def refuse_constant(name: str):
    raise ValueError(f"{name} is not a number a config holds")


def finite_float(text: str) -> float:
    """A JSON number as a float, refused when it is too large to be one (`1e999999999` would read as inf)."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def read_bytes(path: Path, what: str) -> bytes:
    """A regular file (never a FIFO or a device) of at most MAX_JSON bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise CheckpointError(f"{path}: not a regular file")
            raw = f.read(MAX_JSON + 1)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read {what} ({e.strerror})") from None
    if len(raw) > MAX_JSON:
        raise CheckpointError(f"{path}: more than {what} may hold ({MAX_JSON:,} bytes)")
    return raw


def bounded(value, path: Path):
    """`value` read from `path`, refused when it nests or counts beyond the bounds above."""
    too_much = nesting_beyond(value, MAX_NESTING)
    if too_much:
        raise CheckpointError(f"{path}: {too_much.replace('checkpoint', Path(path).name, 1)}")
    return value


def read_json(path: Path, what: str):
    """A JSON file: a regular file of at most MAX_JSON bytes, strict JSON (no NaN or Infinity, no lone
    surrogates), nested and counted within the bounds above."""
    raw = read_bytes(path, what)
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=refuse_constant, parse_float=finite_float)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # no lone surrogates ("\\ud800") in its text
    except (UnicodeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: not a JSON {what} ({str(e).splitlines()[0][:100]})") from None
    return bounded(value, path)


def read_yaml(path: Path, what: str):
    """A YAML file (a run's config.yaml, Hydra's overrides.yaml) as plain values: the bounds of read_json,
    YAML's safe loader (no tags that build objects)."""
    import yaml

    raw = read_bytes(path, what)
    try:
        value = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeError, yaml.YAMLError, RecursionError) as e:
        raise CheckpointError(f"{path}: not a YAML {what} ({str(e).splitlines()[0][:100]})") from None
    return bounded(value, path)


def read_names(path: Path, pattern) -> set[str]:
    """The names a record file lists (a JSON list written by this project) that match `pattern` (a compiled
    regular expression); nothing for a link, an unreadable file or anything else."""
    try:
        names = None if path.is_symlink() else json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str) and pattern.fullmatch(n)} if isinstance(names, list) else set()


def write_file(path: Path, content) -> None:
    """Write a file whole, through a temporary file of a unique name (created exclusively, so a link
    planted there is never followed) and a rename: a crash or a full disk never leaves half of it, and
    a link planted at `path` is replaced, never followed. content: text, bytes, or a function that
    writes the file at the path it is given."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if not callable(content):
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
        if callable(content):
            content(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- folders written whole ---------------------------------------------------------------------------------

MANIFEST = ".seq2seq-files.json"  # the files a folder written by write_folder holds: its own, and no others
RENAME_EXCHANGE = 2  # renameat2's flag (Linux): swap two paths in one step


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux's renameat2); False where the system cannot."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_cwd = -100  # AT_FDCWD
    return renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), RENAME_EXCHANGE) == 0


def owned(folder: Path) -> dict[str, str | None] | None:
    """What a folder's manifest lists (what write_folder wrote there): {name: its content's sha256, None in the
    name-only lists of earlier versions}; None when it has none to trust."""
    path = folder / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        names = json.loads(read_bytes(path, "file list").decode("utf-8"))
    except (CheckpointError, UnicodeError, ValueError):
        return None
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return dict.fromkeys(names)
    if isinstance(names, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in names.items()):
        return names
    return None


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def foreign(folder: Path) -> list[str]:
    """What `folder` holds that write_folder did not write there, or that changed since (a model card or a
    generation config someone edited): everything, without a manifest; links and sub-folders always count."""
    recorded = owned(folder) or {}

    def written(p: Path) -> bool:
        if p.name not in recorded or p.is_symlink() or not p.is_file():
            return False
        return recorded[p.name] is None or digest(p) == recorded[p.name]

    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and not written(p))


def remove_stale(parent: Path, name: str) -> None:
    """Staging folders of earlier writes of `name` whose process is gone (a kill mid-write leaves them); those
    of a live process are another process's, left alone."""
    for path in parent.glob(f".{name}.staged-*"):
        pid = path.name.rsplit(".staged-", 1)[1].split("-")[0]
        if pid.isdigit() and not path.is_symlink() and path.is_dir():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(path, ignore_errors=True)
            except (PermissionError, OverflowError, ValueError):
                pass


def write_folder(out: Path, fill) -> Path:
    """Write the folder `out` whole: `fill(staging)` writes its files into a staging folder beside it (a unique
    hidden name with this process's pid), which then takes `out`'s place in one step. A folder already at `out`
    is replaced only when everything in it was written this way (its manifest lists it): a user's file there is
    never written over or deleted (refused in one line, naming it), and a kill at any point leaves either the
    old folder or the new one, never a mix."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(f"out={out}: not a directory")
    if out.is_dir() and any(out.iterdir()):
        others = foreign(out)
        if others:
            raise ConfigError(f"out={out} already holds {', '.join(others[:5])}, which this project did not write "
                              "there (or which changed since): give an empty or new directory")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent, out.name)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staged-{os.getpid()}-"))
    try:
        fill(staging)
        names = {p.name: digest(p) for p in sorted(staging.iterdir())}
        (staging / MANIFEST).write_text(json.dumps(names, indent=1) + "\n")
        os.chmod(staging, 0o755)
        for path in staging.iterdir():
            os.chmod(path, 0o644)  # as any file a user writes (temporary files are made 0600)
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        crash_point("export-staged")
        if not out.exists():
            os.rename(staging, out)  # fails if another process made `out` meanwhile: its folder stays
        elif exchange(staging, out):  # the old folder is now at the staging name: checked again before it goes
            late = foreign(staging)  # a file someone put there while this wrote
            if late:
                exchange(staging, out)  # swapped back: the folder stays as it was, the new files at the staging name
                raise ConfigError(f"out={out}: {', '.join(late[:5])} appeared there while exporting, which this "
                                  "project did not write: nothing was replaced")  # fmt: skip
            shutil.rmtree(staging)
        else:  # no atomic swap here: the old folder aside, the new one in, the old one removed
            aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staged-{os.getpid()}-old-"))
            os.replace(out, aside)
            os.rename(staging, out)
            shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
