"""Models. Every class here takes plain typed arguments and can be rebuilt from a checkpoint.

`MODELS` is the only way from a name to a class: a checkpoint names its model by a key of this table
(never by an import path), so a file can only ever build one of these classes.
"""

from seq2seq.models.captioner import CNNEncoder, ImageCaptioner
from seq2seq.models.rnnlm import Rnnlm
from seq2seq.models.seq2seq import (
    AttentionDecoder,
    AttentionSeq2seq,
    Decoder,
    Encoder,
    PeekyDecoder,
    PeekySeq2seq,
    Seq2seq,
)

__all__ = [
    "AttentionDecoder",
    "AttentionSeq2seq",
    "CNNEncoder",
    "Decoder",
    "Encoder",
    "ImageCaptioner",
    "PeekyDecoder",
    "PeekySeq2seq",
    "Rnnlm",
    "Seq2seq",
]

MODELS = {cls.__name__: cls for cls in (Seq2seq, PeekySeq2seq, AttentionSeq2seq, ImageCaptioner, Rnnlm)}
