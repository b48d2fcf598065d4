"""What a model's inputs may be, checked before they are encoded: refused in one line naming the input, never
cut or guessed. A fixed-width model (the addition toy) takes questions of its width, in its vocabulary, and of
the form it was trained on (a+b). Torch-free: seq2seq.tasks.codec and the ONNX runner check alike."""

import re

from seq2seq.core.errors import DataError

SUM = re.compile(r"(\d+)\+(\d+)")  # the addition task's question: a+b


def check_texts(texts: list[str]) -> None:
    if not texts:
        raise DataError("no questions given")
    for n, text in enumerate(texts, start=1):
        if not text.strip():
            raise DataError(f"{where(texts, n)} is empty")


def where(texts: list[str], n: int) -> str:
    """An input as an error names it: its number, and at most 80 of its characters."""
    text = texts[n - 1] if len(texts[n - 1]) <= 80 else texts[n - 1][:77] + "..."
    return f"input {n} ({text!r})" if len(texts) > 1 else f"input {text!r}"


def check_question(texts: list[str], n: int, width: int, vocab, question_form: str, number_digits: int | None) -> str:
    """Question n of texts (1-based), stripped, if a model of this width, vocabulary (the characters it
    knows) and question form takes it; else a DataError naming it."""
    text = texts[n - 1].strip()  # questions are left-aligned, padded with spaces
    if len(text) > width:
        raise DataError(f"{where(texts, n)} has {len(text)} characters; this model takes at most {width}")
    unknown = sorted(set(text) - set(vocab))
    if unknown:
        raise DataError(f"{where(texts, n)}: characters {unknown} are not in the model's vocabulary")
    if question_form == "a+b" and not SUM.fullmatch(text):
        digits = f"of at most {number_digits} digits " if number_digits else ""
        raise DataError(f"{where(texts, n)}: this model answers a+b, two numbers {digits}joined by +, "
                        "without spaces (e.g. 16+75)")  # fmt: skip
    wide = [m for m in re.findall(r"\d+", text) if number_digits and len(m) > number_digits]
    if wide:
        raise DataError(
            f"{where(texts, n)}: {wide[0]} has {len(wide[0])} digits; this model was trained on "
            f"numbers of at most {number_digits}"
        )
    if len(text) < width and " " not in vocab:  # trained on questions of one width
        raise DataError(f"{where(texts, n)} has {len(text)} characters; this model takes exactly {width}")
    return text
