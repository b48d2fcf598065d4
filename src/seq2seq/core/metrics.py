"""Metric names (`val/acc`, `val/ppl`, ...): which way is better."""


def lower_is_better(metric: str) -> bool:
    """Losses and perplexities fall as a model improves; accuracies and BLEU rise."""
    return metric.rsplit("/", 1)[-1] in ("loss", "ppl")


def mode(metric: str) -> str:
    """ "min" or "max": the direction `metric` improves in (as schedules and early stopping take it)."""
    return "min" if lower_is_better(metric) else "max"
