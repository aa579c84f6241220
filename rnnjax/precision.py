"""Mixed precision: the matmuls of a cell in a narrower dtype, everything else in the params' dtype.

A cell built with ``matmul_dtype=jnp.bfloat16`` keeps its params (the master weights), its carry and every
element-wise operation (the gates, the cell state, the activations) in its ``dtype``, float32 by default. Only
the matrices are rounded, once per call, when ``spec.prepare`` lays the params out for the loop; each matmul
then rounds its other operand to the same dtype and accumulates in float32 (``preferred_element_type``)::

    U x_t + b  ->  dot(bf16(x_t), bf16(U)^T) in float32 + b
    W h_{t-1}  ->  dot(bf16(h_{t-1}), bf16(W)^T) in float32

This is what ``torch.autocast(dtype=torch.bfloat16)`` does to ``nn.Linear``, and what mixed-precision training
means (Micikevicius et al. 2018): the gradient flows back through the rounding to float32 params, so the
optimiser updates float32 weights. The backward pass of :mod:`rnnjax.fused` multiplies in the same way: the
error sent back through ``W`` and the weight gradients ``dW = dPre^T H``, each with bfloat16 inputs and float32
accumulation, the weight gradient rounded to bfloat16 before the rounding's transpose casts it back.

Why: on GPUs, TPUs and CPUs with AMX tiles a bfloat16 matmul that accumulates in float32 runs several times the
float32 rate, and XLA:CPU reaches its bfloat16 kernels only in that form (bfloat16 inputs, float32 result), not
for a bfloat16 result. On a CPU without AMX (the AMD EPYC of this project's measurements, with AVX-512 BF16) it
pays only where the matmuls are large: ``python benchmarks/rnn_speed.py --precisions mixed`` measures it against
PyTorch's autocast on the same shapes, with each side's distance from float32 beside its speed.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnnjax.types import Array

__all__ = ["MATMUL_DTYPES", "check_matmul_dtype", "lower_matrices", "matmul", "matmul_into"]

MATMUL_DTYPES = ("bfloat16", "float16")
"""The dtypes a cell's matmuls can run in (``matmul_dtype``); None keeps them in the params' dtype."""


def check_matmul_dtype(matmul_dtype: Any, dtype: Any) -> Any:
    """``matmul_dtype`` as a numpy dtype (None stays None): a narrower float than the params' ``dtype``."""
    if matmul_dtype is None:
        return None
    try:
        md = jnp.dtype(matmul_dtype)
    except TypeError:
        md = None
    if md is None or md.name not in MATMUL_DTYPES:
        raise ValueError(f"matmul_dtype: expected None or one of {MATMUL_DTYPES}, got {matmul_dtype!r}")
    if jnp.finfo(md).bits >= jnp.finfo(jnp.dtype(dtype)).bits:
        raise ValueError(
            f"matmul_dtype: {md.name} is not narrower than the params' dtype {jnp.dtype(dtype).name}; for matmuls "
            f"in the params' dtype leave it None (or build the cell with dtype={md.name})"
        )
    return md


def lower_matrices(loop: Any, matmul_dtype: Any) -> Any:
    """The params laid out for the loop (a ``Prepared``) with every matrix (a leaf of two or more dims) in
    ``matmul_dtype``; vectors (biases, layer-norm gains) keep their dtype. None: ``loop`` as it is."""
    if matmul_dtype is None:
        return loop
    return jax.tree.map(lambda a: a.astype(matmul_dtype) if jnp.ndim(a) >= 2 else a, loop)


def matmul(a: Array, w: Array) -> Array:
    """``a @ w``. Where ``w`` is of a narrower float dtype than ``a`` (a cell's matrices under ``matmul_dtype``),
    ``a`` is rounded to ``w``'s dtype and the product accumulates in ``a``'s (module docstring)."""
    if w.dtype == a.dtype or not _narrower(w.dtype, a.dtype):
        return a @ w
    return jnp.matmul(a.astype(w.dtype), w, preferred_element_type=a.dtype)


def matmul_into(a: Array, b: Array, dtype: Any) -> Array:
    """``a @ b`` as an array of ``dtype``: where ``dtype`` is narrower than the operands, both are rounded to it,
    the product accumulates in their dtype and is rounded once (the weight gradients of a mixed-precision
    matmul, whose primal is the narrow matrix)."""
    dtype = jnp.dtype(dtype)
    if dtype == a.dtype or not _narrower(dtype, a.dtype):
        return (a @ b).astype(dtype)
    return jnp.matmul(a.astype(dtype), b.astype(dtype), preferred_element_type=a.dtype).astype(dtype)


def _narrower(low: Any, high: Any) -> bool:
    return bool(
        jnp.issubdtype(low, jnp.floating)
        and jnp.issubdtype(high, jnp.floating)
        and jnp.finfo(low).bits < jnp.finfo(high).bits
    )
