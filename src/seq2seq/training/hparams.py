"""The run's row in TensorBoard's HPARAMS tab, written when the run starts (so runs that stop early are
there too): the experiment, the seed, the model class (and its decoder) and every key the command line set (a sweep's
keys included), without paths. The metric columns read the run's own scalars (val/acc, val/loss, ...),
so no separate tag group is logged for them."""

from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams

from seq2seq.training.config import NOT_HPARAMS  # declared at each option (seq2seq.training.config.option)


def command_line_overrides() -> list[str]:
    """The overrides of this run's command line (a sweep job's own included); none outside Hydra's app."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def columns(cfg: DictConfig, overrides: list[str]) -> dict:
    """{column: value}: strings, numbers and booleans as text (TensorBoard would show True as 1.0000)."""
    row = {"name": cfg.name, "seed": cfg.seed, "model": str(cfg.model.get("_target_", "")).rsplit(".", 1)[-1]}
    if "decoder" in cfg.model:  # Seq2seq's variant: plain, peeky or attention
        row["model.decoder"] = cfg.model.decoder
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key.startswith(NOT_HPARAMS) or key in row:
            continue
        node = OmegaConf.select(cfg, key, default=value)  # a group choice (experiment=...) keeps its name
        row[key] = node if isinstance(node, bool | int | float | str) else str(node)
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in row.items()}


def write_start(writer, columns: dict, metrics: list[str]):
    """Write the experiment and session-start summaries to a SummaryWriter; returns the session-end
    summary to write when the run ends."""
    experiment, start_info, end_info = hparams(columns, dict.fromkeys(metrics, 0.0))
    for summary in (experiment, start_info):
        writer.file_writer.add_summary(summary)
    return end_info
