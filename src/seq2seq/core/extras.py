"""Optional features and the pip extras that install them (see pyproject.toml)."""

import importlib
import importlib.util
import sys

from seq2seq.core.errors import ConfigError

# import name -> (distribution, extra)
PACKAGES = {
    "chitchat_dataset": ("chitchat-dataset", "chat"),
    "sacrebleu": ("sacrebleu", "bleu"),
    "sklearn": ("scikit-learn", "captions"),
    "PIL": ("pillow", "captions"),
    "mlflow": ("mlflow-skinny", "mlflow"),
    "wandb": ("wandb", "wandb"),
    "huggingface_hub": ("huggingface_hub", "hub"),
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "gradio": ("gradio", "app"),
}


def available(module: str) -> bool:
    """Whether a package can be imported, found without importing it (a None in sys.modules blocks it)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_message(module: str, feature: str) -> str:
    package, extra = PACKAGES[module.split(".")[0]]
    return f"{feature} needs the package {package}: pip install '.[{extra}]' in the project's folder"


def require(module: str, feature: str):
    """Import an optional package, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(missing_message(module, feature)) from None


def missing_for(needs) -> str | None:
    """The message for the first missing package of `needs`: (import names, the feature that needs them) pairs,
    from the EXTRAS a task or logger class declares."""
    for modules, feature in needs:
        for module in modules:
            if not available(module):
                return missing_message(module, feature)
    return None


# Hydra plugins named on the command line: (override prefix, plugin module, distribution, extra).
PLUGINS = (
    ("hparams_search=", "hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper", "sweeps"),
    ("hydra/launcher=joblib", "hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher", "sweeps"),
    ("hydra/launcher=slurm", "hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "cluster"),
    ("hydra/launcher=submitit_", "hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "cluster"),
)


def missing_plugin(args: list[str]) -> str | None:
    """The message for a command line that needs a Hydra plugin that is not installed (Hydra itself
    would only say the config option does not exist)."""
    for prefix, module, package, extra in PLUGINS:
        if any(a.startswith(prefix) and a != "hparams_search=null" for a in args) and not available(module):
            feature = prefix.rstrip("=")
            return f"{feature} needs the Hydra plugin {package}: pip install '.[{extra}]' in the project's folder"
    return None
