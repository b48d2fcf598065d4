"""Output layer + cross-entropy in one step, for language models with a large vocabulary.

Shapes: N rows (batch x time), H hidden size, V vocabulary.

On a CPU the (N, V) logits dominate a language model's step: three GEMMs (logits, and the two
gradients) plus several passes over N x V floats. `linear_cross_entropy` computes exactly
F.cross_entropy(F.linear(x, weight, bias), target) with changes that only affect speed:
- the logits' GEMM runs through oneDNN (F.linear's addmm with a bias is twice as slow at PTB's shape),
  the two gradient GEMMs through torch.mm, which reads the transposed operands in place;
- with gradients, the loss and every gradient come out of the forward pass: one softmax pass over
  the logits gives the loss (-log of the target's probability) and, less one at the target, the
  logits' gradient, so no (N, V) buffer is zero-filled, copied or kept for backward;
- under bf16 autocast (`trainer.precision=bf16`) the three GEMMs take bf16 operands (AMX on CPUs that
  have it) while the softmax, the loss and the gradients handed back stay fp32.
"""

import torch
from torch.nn import functional as F

_onednn_linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None)  # x @ w.T + b
TINY = 1e-30  # a target probability below this takes its loss from logsumexp (fp32 underflows near 1e-38)


def fused_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The GEMMs' operand dtype on the fused path: fp32, or bf16 under CPU bf16 autocast. None where
    the plain formula serves (GPU, other dtypes, no oneDNN)."""
    if _onednn_linear is None or not torch.backends.mkldnn.is_available() or x.device.type != "cpu":
        return None
    if not torch.is_autocast_enabled("cpu"):
        return torch.float32 if x.dtype == torch.float32 else None
    bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16 and x.dtype in (torch.float32, torch.bfloat16)
    return torch.bfloat16 if bf16 else None  # x is bf16 where autocast ran the layer before in bf16


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (N, H) @ weight (V, H).T + bias (V,) through oneDNN, without autograd."""
    return _onednn_linear(x, weight, bias, "none", [], "")


class LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of softmax(x @ weight.T + bias) against target; gradients computed in forward.
    Only for inputs that fused_dtype accepts (linear_cross_entropy checks once per call)."""

    @staticmethod
    def forward(ctx, x, weight, bias, target, dtype):
        n = len(target)
        rows = torch.arange(n, device=x.device)
        with torch.autocast("cpu", enabled=False):  # operands are cast here, explicitly
            x_, weight_ = x.to(dtype), weight.to(dtype)  # no copies in fp32
            logits = onednn_linear(x_, weight_, bias.to(dtype))  # (N, V)
            grad = torch.softmax(logits, dim=1, dtype=torch.float32)  # (N, V): one fused pass
            p_target = grad[rows, target]  # (N,)
            losses = -p_target.log()  # (N,)
            tiny = p_target < TINY  # too small for its log to be exact, or 0
            if tiny.any():
                big = logits[tiny].float()
                losses[tiny] = torch.logsumexp(big, dim=1) - big[rows[: len(big)], target[tiny]]
            loss = losses.sum() / n
            grad[rows, target] -= 1  # d(sum of the N losses) / d logits: softmax minus one-hot
            grad_ = grad.to(dtype)
            ctx.save_for_backward(
                torch.mm(grad_, weight_).to(x.dtype),  # (N, H)
                torch.mm(grad_.t(), x_).to(weight.dtype),  # (V, H): mm reads the transpose in place
                grad.sum(dim=0),  # (V,)
            )
        ctx.n = n
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        dx, dweight, dbias = ctx.saved_tensors
        scale = grad_loss / ctx.n  # the mean over rows
        return dx * scale, dweight * scale, dbias * scale, None, None


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor):
    """F.cross_entropy(F.linear(x, weight, bias), target): x (N, H), weight (V, H), bias (V,),
    target (N,) -> the mean loss, a scalar. Fast path on the CPU (fp32, or bf16 GEMMs under bf16
    autocast); the plain formula elsewhere (GPU)."""
    dtype = fused_dtype(x)
    if dtype is None:
        return F.cross_entropy(F.linear(x, weight, bias), target)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, weight, bias)):
        return LinearCrossEntropy.apply(x, weight, bias, target, dtype)
    with torch.autocast("cpu", enabled=False):
        logits = onednn_linear(x.to(dtype), weight.to(dtype), bias.to(dtype))
        return F.cross_entropy(logits.float(), target)
