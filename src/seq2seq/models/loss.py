"""Output layer + cross-entropy in one step, for language models with a large vocabulary.

Shapes: N rows (batch x time), H hidden size, V vocabulary.

On a CPU the (N, V) logits dominate a language model's step: three GEMMs (logits, and the two
gradients) plus several passes over N x V floats. `linear_cross_entropy` computes exactly
F.cross_entropy(F.linear(x, weight, bias), target) with two changes that only affect speed:
- the GEMMs run through oneDNN, which on this project's AMD EPYC reaches about 1.3x the GFLOP/s of
  the MKL GEMM behind F.linear (MKL takes a slower path on non-Intel CPUs);
- with gradients, the loss and every gradient come out of the forward pass: the logits are
  written once and turned into their own gradient in place (softmax minus one-hot), so no (N, V)
  buffer is zero-filled, copied or kept for backward.
"""

import torch
from torch.nn import functional as F

_onednn_linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None)  # x @ w.T + b


def onednn_usable(x: torch.Tensor) -> bool:
    """oneDNN's GEMM serves fp32 tensors on the CPU outside autocast; elsewhere the plain ops."""
    return (
        _onednn_linear is not None
        and torch.backends.mkldnn.is_available()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (N, H) @ weight (V, H).T + bias (V,) without autograd, through oneDNN when usable."""
    if onednn_usable(x):
        return _onednn_linear(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


class LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of softmax(x @ weight.T + bias) against target; gradients computed in forward."""

    @staticmethod
    def forward(ctx, x, weight, bias, target):
        n = len(target)
        rows = torch.arange(n, device=x.device)
        logp = torch.log_softmax(linear(x, weight, bias), dim=1)  # (N, V)
        loss = -logp[rows, target].sum() / n
        grad = logp.exp_()  # (N, V) softmax, in place
        grad[rows, target] -= 1  # d(sum of the N losses) / d logits
        ctx.save_for_backward(
            linear(grad, weight.t(), None),  # (N, H) = grad @ weight
            linear(x.t().contiguous(), grad.t(), None).t().contiguous(),  # (V, H) = grad.T @ x
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
    return F.cross_entropy(linear(x, weight, bias), target)
