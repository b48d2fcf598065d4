"""Output layer + cross-entropy in one step, for language models with a large vocabulary.

Shapes: N rows (batch x time), H hidden size, V vocabulary.

On a CPU the (N, V) logits dominate a language model's step: three GEMMs (logits, and the two
gradients) plus several passes over N x V floats. `linear_cross_entropy` computes exactly
F.cross_entropy(F.linear(x, weight, bias), target) with two changes that only affect speed:
- the GEMMs run through oneDNN, which on this project's AMD EPYC runs PTB's three GEMMs in 23 ms
  where the MKL GEMM behind F.linear takes 28 ms;
- with gradients, the loss and every gradient come out of the forward pass: one softmax pass over
  the logits gives the loss (-log of the target's probability) and, less one at the target, the
  logits' gradient, so no (N, V) buffer is zero-filled, copied or kept for backward.
"""

import torch
from torch.nn import functional as F

_onednn_linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None)  # x @ w.T + b
TINY = 1e-30  # a target probability below this takes its loss from logsumexp (fp32 underflows near 1e-38)


def onednn_usable(x: torch.Tensor) -> bool:
    """oneDNN's GEMM serves fp32 tensors on the CPU outside autocast; elsewhere the plain ops."""
    return (
        _onednn_linear is not None
        and torch.backends.mkldnn.is_available()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (N, H) @ weight (V, H).T + bias (V,) through oneDNN, without autograd (see onednn_usable)."""
    return _onednn_linear(x, weight, bias, "none", [], "")


class LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of softmax(x @ weight.T + bias) against target; gradients computed in forward.
    Only for inputs that onednn_usable accepts (linear_cross_entropy checks once per call)."""

    @staticmethod
    def forward(ctx, x, weight, bias, target):
        n = len(target)
        rows = torch.arange(n, device=x.device)
        logits = onednn_linear(x, weight, bias)  # (N, V)
        grad = torch.softmax(logits, dim=1)  # (N, V): one fused pass, where log_softmax + exp take two
        p_target = grad[rows, target]  # (N,)
        losses = -p_target.log()  # (N,)
        tiny = p_target < TINY  # too small for its log to be exact, or 0
        if tiny.any():
            losses[tiny] = torch.logsumexp(logits[tiny], dim=1) - logits[tiny, target[tiny]]
        loss = losses.sum() / n
        grad[rows, target] -= 1  # d(sum of the N losses) / d logits: softmax minus one-hot
        ctx.save_for_backward(
            onednn_linear(grad, weight.t(), None),  # (N, H) = grad @ weight
            onednn_linear(x.t().contiguous(), grad.t(), None).t().contiguous(),  # (V, H) = grad.T @ x
            grad.sum(dim=0),  # (V,)
        )
        ctx.n = n
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        dx, dweight, dbias = ctx.saved_tensors
        scale = grad_loss / ctx.n  # the mean over rows
        return dx * scale, dweight * scale, dbias * scale, None


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor):
    """F.cross_entropy(F.linear(x, weight, bias), target): x (N, H), weight (V, H), bias (V,),
    target (N,) -> the mean loss, a scalar. Fast path on the CPU in fp32; the plain formula elsewhere
    (GPU, bf16 autocast)."""
    if not onednn_usable(x):
        return F.cross_entropy(F.linear(x, weight, bias), target)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, weight, bias)):
        return LinearCrossEntropy.apply(x, weight, bias, target)
    return F.cross_entropy(onednn_linear(x, weight, bias), target)
