"""Models. Every class here takes plain typed arguments and can be rebuilt from a checkpoint.

`MODELS` is the only way from a name to a class: a checkpoint names its model by a key of this table
(never by an import path), so a file can only ever build one of these classes.
"""

from seq2seq.models.captioner import CNNEncoder, ImageCaptioner
from seq2seq.models.rnnlm import Rnnlm
from seq2seq.models.seq2seq import DECODERS, AttentionDecoder, Decoder, Encoder, PeekyDecoder, Seq2seq

__all__ = [
    "DECODERS",
    "AttentionDecoder",
    "CNNEncoder",
    "Decoder",
    "Encoder",
    "ImageCaptioner",
    "PeekyDecoder",
    "Rnnlm",
    "Seq2seq",
]

MODEL_CLASSES = {"seq2seq": Seq2seq, "image_captioner": ImageCaptioner, "rnnlm": Rnnlm}  # by config schema name
MODELS = {cls.__name__: cls for cls in MODEL_CLASSES.values()}
MODEL_TARGETS = {f"seq2seq.models.{name}": cls for name, cls in MODELS.items()}  # by a config's `_target_`
