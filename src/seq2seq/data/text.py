"""Variable-length text pairs: TSV files, tokenisation and vocabularies with special tokens.

TSV format, one pair per line, UTF-8: `source<TAB>target`, e.g.

    how are you ?\ti am fine .

Tokens are characters (`tokenize: char`), whitespace-separated words (`tokenize: word`), or words
and punctuation marks split apart (`tokenize: wordpunct`: "I'm fine, you?" -> I'm / fine / , / you / ?).
"""

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from seq2seq.core.errors import DataError
from seq2seq.data.vocab import Vocab

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SEP = "<sep>"  # between the turns of a source with context (task.context_turns); in the vocabulary as a word
SPECIALS = (PAD, BOS, EOS, UNK)  # ids 0..3 in every pair vocabulary; padding is id 0
TOKENIZERS = ("char", "word", "wordpunct")
WORDPUNCT = re.compile(r"\w+(?:'\w+)?|[^\w\s]")  # words (with inner apostrophes) or single marks


def tokenize(text: str, mode: str, lowercase: bool = False) -> list[str]:
    if lowercase:
        text = text.lower()
    if mode == "char":
        return list(text)
    if mode == "word":
        return text.split()
    if mode == "wordpunct":
        return WORDPUNCT.findall(text)
    raise ValueError(f"tokenize={mode!r}: must be one of {', '.join(TOKENIZERS)}")


def tokenize_turns(turns: list[str], mode: str, lowercase: bool = False) -> list[str]:
    """The turns of a conversation as one token list: earlier turns first, SEP between them."""
    tokens: list[str] = []
    for turn in turns:
        tokens += [SEP, *tokenize(turn, mode, lowercase)] if tokens else tokenize(turn, mode, lowercase)
    return tokens


def detokenize(tokens: Iterable[str], mode: str) -> str:
    return ("" if mode == "char" else " ").join(tokens)


def read_utf8(raw: bytes, where: str) -> str:
    """Bytes of a text file as text; a byte-order mark (Windows editors) is not data, and bytes that are
    not UTF-8 fail with the line they are on (`where` names the file)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{where}:{line}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def load_tsv(path: str | Path) -> list[tuple[str, str]]:
    """(source, target) pairs of a TSV file; the first bad line fails with its file and line number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected source<TAB>target lines)")
    text = read_utf8(path.read_bytes(), str(path))
    pairs = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue  # blank lines (a final newline, separators) carry no pair
        where = f"{path}:{lineno}"
        if line.count("\t") != 1:
            found = "no tab" if "\t" not in line else f"{line.count(chr(9))} tabs"
            raise DataError(f"{where}: expected source<TAB>target, found {found} in {line[:80]!r}")
        source, target = line.split("\t")
        for side, value in (("source", source), ("target", target)):
            if not value.strip():
                raise DataError(f"{where}: empty {side} in {line[:80]!r}")
        pairs.append((source, target))
    if not pairs:
        raise DataError(f"{path}: no pairs (expected source<TAB>target lines)")
    return pairs


def build_vocab(token_lists: Iterable[list[str]], min_freq: int = 1, max_size: int | None = None) -> Vocab:
    """SPECIALS first, then tokens seen at least min_freq times, most frequent first (ties in
    alphabetical order, so the vocabulary does not depend on file order), at most max_size in all."""
    counts = Counter(tok for tokens in token_lists for tok in tokens)
    ranked = sorted(
        (t for t, n in counts.items() if n >= min_freq and t not in SPECIALS), key=lambda t: (-counts[t], t)
    )
    if max_size is not None:
        ranked = ranked[: max(0, max_size - len(SPECIALS))]
    return Vocab([*SPECIALS, *ranked])
