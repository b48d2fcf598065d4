"""Models. Every class here takes plain typed arguments and can be rebuilt from a checkpoint."""

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
