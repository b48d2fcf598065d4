"""The models: each family in a file of its own, registered where it is defined (`@register_model`, seq2seq.core
.registry). Importing this package imports every module in it, so the registry holds every model, and exposes
each registered class here by name: a config's `_target_: seq2seq.models.<Class>` builds it.

Models take plain typed arguments (sizes that depend on the data, the vocabulary's, are passed at the call
site), speak the decoding protocol of seq2seq.models.sampling and seq2seq.models.beam, and declare their ONNX
export (seq2seq.models.export). Imports: seq2seq.core only.
"""

import importlib
import pkgutil

from seq2seq.core.registry import MODELS

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

globals().update({cls.__name__: cls for cls in MODELS.values()})
__all__ = ["MODELS", *(cls.__name__ for cls in MODELS.values())]
