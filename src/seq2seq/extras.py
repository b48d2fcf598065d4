"""Optional features and the pip extras that install them (see pyproject.toml)."""

import importlib
import importlib.util

from seq2seq.errors import ConfigError

# import name -> (distribution, extra)
PACKAGES = {
    "chitchat_dataset": ("chitchat-dataset", "chat"),
    "sacrebleu": ("sacrebleu", "bleu"),
    "sklearn": ("scikit-learn", "captions"),
    "PIL": ("pillow", "captions"),
}


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require(module: str, feature: str):
    """Import an optional package, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package, extra = PACKAGES[module.split(".")[0]]
        raise ConfigError(f"{feature} needs the package {package}: pip install 'seq2seq[{extra}]'") from None
