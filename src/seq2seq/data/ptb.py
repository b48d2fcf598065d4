"""Penn Treebank (Mikolov's language-modelling version): files, vocabulary, token streams.

Each line of ptb.*.txt is one sentence with a space at both ends. The token stream replaces each
newline with `<eos>` and splits on whitespace; ids follow the order of first appearance in the
training file (10,000 words with `<eos>`).
"""

import hashlib
import logging
import urllib.error
import urllib.request
from pathlib import Path

from seq2seq.core.errors import DataError
from seq2seq.data.text import read_utf8
from seq2seq.data.vocab import Vocab

log = logging.getLogger(__name__)

EOS = "<eos>"
SPLITS = ("train", "valid", "test")
# The copies that the chapter's own code downloads; identical to the `simple-examples` release.
URL = "https://raw.githubusercontent.com/tomsercu/lstm/master/data/ptb.{split}.txt"
SHA256 = {
    "train": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "valid": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "test": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}


def read(path: Path) -> str:
    text = read_utf8(path.read_bytes(), str(path))  # (a byte-order mark is not text)
    if not text.strip():
        raise DataError(f"{path}: empty file, expected one sentence per line")
    return text


def tokenize(text: str) -> list[str]:
    return text.replace("\n", f" {EOS} ").split()


def line_of(word: str, text: str) -> int:
    """The first line (from 1) of `text` that holds `word` (it holds it: the word came from there)."""
    return next((n for n, line in enumerate(text.split("\n"), 1) if word in line.split()), 1)


def download(split: str, data_dir: Path, timeout: float = 30.0) -> None:
    """Fetch one split and verify its checksum; offline, say where the file should go instead."""
    dest = data_dir / f"ptb.{split}.txt"
    url = URL.format(split=split)
    log.info("downloading %s to %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as e:
        raise DataError(
            f"{dest}: missing, and downloading it from {url} failed ({e}). Without network access, "
            f"copy ptb.train.txt, ptb.valid.txt and ptb.test.txt into {data_dir} or point "
            "task.data_dir (or the PTB_DIR environment variable) at a folder holding them."
        ) from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != SHA256[split]:
        raise DataError(f"{url}: checksum mismatch (sha256 {digest}, expected {SHA256[split]}); not saved")
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(payload)
    tmp.replace(dest)


def read_stream(path: str | Path, vocab: Vocab) -> list[int]:
    """The id stream of a text file in the PTB format, read with a trained vocabulary; a word outside it fails
    with its line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    text = read(path)
    words = tokenize(text)
    unknown = [w for w in dict.fromkeys(words) if w not in vocab]
    if unknown:
        where = f"{path}:{line_of(unknown[0], text)}"
        raise DataError(f"{where}: {unknown[0]!r} is not in the training vocabulary ({len(unknown)} such words in "
                        "this file); write rare words as <unk>, as PTB does")  # fmt: skip
    return vocab.encode(words)


def load_ptb(data_dir: str | Path, download_missing: bool = True) -> tuple[Vocab, dict[str, list[int]]]:
    """Vocabulary from the training file and the id stream of every split ('train', 'valid', 'test')."""
    data_dir = Path(data_dir)
    for split in SPLITS:
        path = data_dir / f"ptb.{split}.txt"
        if not path.is_file():
            if not download_missing:
                raise DataError(
                    f"{path}: no such file. Put ptb.train.txt, ptb.valid.txt and ptb.test.txt in "
                    f"{data_dir}, or set task.data_dir (or PTB_DIR) to the folder holding them."
                )
            download(split, data_dir)
    texts = {split: read(data_dir / f"ptb.{split}.txt") for split in SPLITS}
    words = {split: tokenize(text) for split, text in texts.items()}
    vocab = Vocab(dict.fromkeys(words["train"]))  # dict keeps first-appearance order
    streams = {}
    for split in SPLITS:
        unknown = [w for w in dict.fromkeys(words[split]) if w not in vocab]
        if unknown:
            path, line = data_dir / f"ptb.{split}.txt", line_of(unknown[0], texts[split])
            raise DataError(
                f"{path}:{line}: {unknown[0]!r} is not in the training vocabulary ({len(unknown)} such words "
                "in this file); PTB files map rare words to <unk>"
            )
        streams[split] = vocab.encode(words[split])
    return vocab, streams
