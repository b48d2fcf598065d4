"""Attention heatmaps: saved as PNG by scripts/attention_heatmap.py and logged to TensorBoard
(`val/attention`) by the tasks. Uses matplotlib's Figure class directly, so no GUI backend is needed."""

import torch


def visible(token: str) -> str:
    return "␣" if token == " " else token


@torch.no_grad()
def attention_maps(model, codec, src: torch.Tensor, lengths: torch.Tensor | None = None):
    """Greedy outputs of an attention model for src (N, S) and the weights that produced them:
    per row (source tokens as fed to the encoder, output tokens up to <eos>, weights (T, S))."""
    pred = model.generate(src, codec.start_id, codec.steps, lengths=lengths)  # (N, T)
    tgt_in = torch.cat([torch.full_like(pred[:, :1], codec.start_id), pred[:, :-1]], dim=1)  # (N, T)
    weights = model.attention(src, tgt_in, lengths).cpu()  # (N, T, S)
    maps = []
    for i in range(len(src)):
        n = src.shape[1] if lengths is None else int(lengths[i])
        output = codec.tokens(pred[i].tolist())
        if codec.eos_id is not None:  # show the step that ends the output too
            output = [*output, "<eos>"][: pred.shape[1]]
        maps.append((codec.tokens(src[i, :n].tolist()), output, weights[i, : len(output), :n]))
    return maps


def attention_figures(maps: list[tuple[list[str], list[str], torch.Tensor]], titles: list[str] | None = None):
    """One heatmap per (source tokens, output tokens, weights (T, S)): row t shows which source
    positions output token t read."""
    from matplotlib.figure import Figure  # matplotlib costs a third of a second to import: only when drawing

    fig = Figure(figsize=(3.8 * len(maps), 3.6))
    axes = fig.subplots(1, len(maps), squeeze=False)[0]
    for n, (ax, (source, output, weights)) in enumerate(zip(axes, maps, strict=True)):
        ax.imshow(weights.float().numpy(), cmap="gray_r", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(source)), [visible(t) for t in source], rotation=90 if len(source) > 12 else 0)
        ax.set_yticks(range(len(output)), [visible(t) for t in output])
        ax.set_xlabel("source (as fed to the encoder)")
        ax.set_ylabel("output")
        if titles:
            ax.set_title(titles[n], fontsize=8, wrap=True)
    fig.tight_layout()
    return fig
