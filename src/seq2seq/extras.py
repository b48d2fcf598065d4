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
    "mlflow": ("mlflow-skinny", "mlflow"),
    "wandb": ("wandb", "wandb"),
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
            return f"{prefix.rstrip('=')} needs the Hydra plugin {package}: pip install 'seq2seq[{extra}]'"
    return None
