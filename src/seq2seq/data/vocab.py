"""Token <-> id maps shared by every task. A vocabulary is saved in checkpoints as its token list."""

from collections.abc import Iterable, Sequence


class Vocab:
    def __init__(self, tokens: Sequence[str]):
        self.itos = list(tokens)
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be distinct")

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi[t] for t in tokens]

    def decode(self, ids: Iterable[int], sep: str = "") -> str:
        return sep.join(self.itos[i] for i in ids)
