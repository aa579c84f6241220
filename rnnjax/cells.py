"""Recurrent cells as pure functions: the Elman RNN, the LSTM and the GRU.

A ``Cell`` is a NamedTuple of pure functions (the shape of an Optax
``GradientTransformation``)::

    cell = rj.cells.lstm(hidden_size=64)
    params = cell.init(key, input_size)               # LSTMParams(U, W, b)
    carry = cell.initial_carry(params, batch_shape)   # zeros
    carry, y = cell.step(params, carry, x)            # x: (*batch, input_size)

``step`` is split in three so that a scan does the work that does not change over time
once, outside its loop::

    loop = prepare(params)                  # checks params, lays out U^T and W^T once
    step(params, carry, x) == recur(loop, carry, project(loop, x))

``project`` computes the input side ``U x_t + b`` for any number of steps (the scan may
run it over the whole sequence as one large matmul), ``recur`` the rest of one step.
The RNN, the LSTM and the GRU (reset after) split ``recur`` once more, around its one
recurrent matmul (``cell.parts``, a :class:`Parts`), so that :mod:`rnnjax.fused` can write
the backward pass of a whole scan by hand.

Weights keep the textbook's orientation and names (and PyTorch's layout): ``U: (h, i)``
maps the input, ``W: (h, h)`` the previous state, so ``U x_t`` is ``x @ U.T`` on a batch of
row vectors. Gated cells stack their gates' blocks in one ``U``, ``W`` and ``b`` so a
step runs one fused matmul; each gate is reachable by its textbook name as a view,
e.g. ``params.W_f`` is the LSTM forget gate's ``(h, h + i)`` matrix over ``[h_{t-1}, x_t]``.

Factories are cached: ``lstm(64) is lstm(64)``, so configs holding cells compare equal.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import init as inits
from rnnjax.checks import check_finite_tree, check_float, check_key, check_like, check_positive_int
from rnnjax.params import GRUParams, LSTMParams, LSTMState, RNNParams
from rnnjax.types import Array, Carry, Params, PRNGKey

__all__ = [
    "CELLS", "Cell", "GRUParams", "LSTMParams", "LSTMState", "Parts", "Prepared", "RNNParams", "gru", "irnn", "lstm",
    "make", "rnn",
]  # fmt: skip


class Prepared(NamedTuple):
    """A cell's params laid out for the time loop: ``x @ U_T`` and ``h @ W_T`` multiply in the
    layout the CPU and accelerators run fastest, without a transpose inside the loop.

    Attributes:
        U_T: ``(i, g*h)``, the input weights transposed.
        b: ``(g*h,)``.
        W_T: the recurrent weights transposed, ``(h, g*h)`` (for the Cho GRU only the r and z
            blocks, ``(h, 2h)``).
        extra: what else a cell's recurrence needs (GRU: ``b_hn``, or the candidate's
            ``W_hn^T`` for the Cho form).
    """

    U_T: Array
    b: Array
    W_T: Array
    extra: Any = None


class Parts(NamedTuple):
    """A step split around its recurrent matmul ``hp = hidden(carry) @ W^T``::

        pre = parts.pre(loop.extra, xp, hidden(carry) @ loop.W_T)
        recur(loop, carry, xp) == (pointwise(carry, pre), hidden(pointwise(carry, pre)))

    Attributes:
        hidden: ``hidden(carry) -> h``, the state that ``W`` multiplies, which is also the
            cell's output (LSTM: ``carry.h``; RNN, GRU: the carry itself).
        pointwise: ``pointwise(carry, pre) -> carry``, the gates and the state update, element
            by element; no matmul.
        combine: ``combine(extra, xp, hp) -> pre``, the pre-activations that ``pointwise``
            reads (an array or a tuple of arrays), linear in all three arguments; None:
            ``xp + hp`` (the RNN, the LSTM).
        slope: for a cell whose step is an activation of ``pre`` alone, ``a_t = f(pre_t)`` (the
            RNN), the activation's derivative written in its output, ``f'(pre) = slope(f(pre))``
            (tanh: ``1 - a^2``); the backward pass then reads the outputs instead of stored
            pre-activations. None for the gated cells.
    """

    hidden: Callable[[Carry], Array]
    pointwise: Callable[[Carry, Any], Carry]
    combine: Callable[[Any, Array, Array], Any] | None = None
    slope: Callable[[Array], Array] | None = None

    def pre(self, extra: Any, xp: Array, hp: Array) -> Any:
        """The pre-activations of one step."""
        return xp + hp if self.combine is None else self.combine(extra, xp, hp)


def _itself(carry: Array) -> Array:
    return carry


class Cell(NamedTuple):
    """A recurrent cell: pure functions over explicit params and carry.

    Attributes:
        init: ``init(key, input_size) -> params``.
        initial_carry: ``initial_carry(params, batch_shape=()) -> carry`` (zeros).
        step: ``step(params, carry, x) -> (carry, y)``, x: ``(*batch, input_size)``.
        project: ``project(loop, xs) -> xp``, the input side ``U x_t + b`` for any
            leading dims; xp: ``(..., num_gates * hidden_size)``.
        prepare: ``prepare(params) -> loop``, a :class:`Prepared`: the params checked and
            laid out for the time loop (transposes computed once, outside it).
        recur: ``recur(loop, carry, xp_t) -> (carry, y)``, the rest of a step.
        name: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        hidden_size: h, the size of ``y`` and of each state array.
        num_gates: blocks stacked in ``U``, ``W`` and ``b`` (rnn 1, gru 3, lstm 4).
        options: the factory's arguments as ``(name, value)`` pairs, e.g.
            ``(("activation", "tanh"), ...)``; ``dict(cell.options)`` reads them.
        gates: ``gates(loop, carry, xp_t) -> {name: activation}``, the gate values of one step
            (LSTM: ``f``, ``i``, ``C_tilde``, ``o``; GRU: ``r``, ``z``, ``n``); None for the RNN.
            ``recur`` is built on it, so what it shows is what the step computes.
        parts: ``recur`` split around its recurrent matmul (a :class:`Parts`), or None
            (``gru(reset_after=False)``, whose reset acts before its second matmul).
    """

    init: Callable[[PRNGKey, int], Params]
    initial_carry: Callable[..., Carry]
    step: Callable[[Params, Carry, Array], tuple[Carry, Array]]
    project: Callable[[Prepared, Array], Array]
    prepare: Callable[[Params], Prepared]
    recur: Callable[[Prepared, Carry, Array], tuple[Carry, Array]]
    name: str
    hidden_size: int
    num_gates: int
    options: tuple[tuple[str, Any], ...] = ()
    gates: Callable[[Prepared, Carry, Array], dict[str, Array]] | None = None
    parts: Parts | None = None


def _check_size(value: int, name: str) -> None:
    check_positive_int(value, name)


def _check_options(options: dict[str, Any]) -> None:
    """The factories' numeric options: a finite ``gain > 0``, finite biases, ``chrono`` None or > 2, and
    a floating ``dtype`` (the checks of :mod:`rnnjax.init`, which the initialisers run too)."""
    if "gain" in options:
        inits.check_gain(options["gain"])
    for name in ("bias", "forget_bias"):
        if name in options:
            check_float(options[name], name)
    inits.check_chrono(options.get("chrono"))
    if "dtype" in options:
        inits.check_dtype(options["dtype"])


def _check_params(params: Any, cls: type, num_gates: int, hidden_size: int, has_b_hn: bool = False) -> None:
    """Raises a ValueError unless params have the type and shapes that the cell needs."""
    if not isinstance(params, cls):
        raise ValueError(f"params: expected {cls.__name__}, got {type(params).__name__}")
    gh = num_gates * hidden_size
    expected = {"W": (gh, hidden_size), "b": (gh,)}
    if has_b_hn:
        expected["b_hn"] = (hidden_size,)
    elif cls is GRUParams and params.b_hn is not None:
        # GRU params of the other form would run silently with the wrong equations.
        raise ValueError("params.b_hn: expected None for gru(reset_after=False), got an array")
    for field, shape in expected.items():
        value = getattr(params, field)
        got = None if value is None else jnp.shape(value)
        if got != shape:
            raise ValueError(f"params.{field}: expected shape {shape} for hidden_size={hidden_size}, got {got}")
    if jnp.ndim(params.U) != 2 or jnp.shape(params.U)[0] != gh:
        raise ValueError(f"params.U: expected shape ({gh}, input_size), got {jnp.shape(params.U)}")


def _check_x(x: Array, input_size: int, param_dtype: Any, name: str = "x") -> None:
    if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != input_size:
        raise ValueError(
            f"{name}: expected {input_size} features on the last axis (the params' input_size), got shape "
            f"{jnp.shape(x)}"
        )
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"{name}: expected a floating dtype, got {dtype}")
    if dtype != param_dtype:
        raise ValueError(
            f"{name}: expected the params' dtype {param_dtype}, got {dtype} (cast it with .astype({param_dtype}) "
            f"or build the cell with dtype={dtype})"
        )


def _make_cell(
    name: str,
    cls: type,
    num_gates: int,
    hidden_size: int,
    init: Callable[[PRNGKey, int], Params],
    zero_carry: Callable[[tuple[int, ...], Any], Carry],
    step_parts: Parts | Callable[[Prepared, Carry, Array], tuple[Carry, Array]],
    recurrent: Callable[[Params], tuple[Array, Any]] = lambda p: (p.W.T, None),
    has_b_hn: bool = False,
    gates: Callable[[Prepared, Carry, Array], dict[str, Array]] | None = None,
    gate_values: Callable[[Array], dict[str, Array]] | None = None,
    **options: Any,
) -> Cell:
    """Assembles a Cell: the checks, ``prepare``, the shared input projection and ``step``.

    ``step_parts`` is the cell's :class:`Parts` (``recur`` and, with ``gate_values(pre)``,
    ``gates`` are built from them) or its ``recur``. ``recurrent(params) -> (W_T, extra)``
    lays out the recurrent side for ``Prepared``.
    """
    parts = step_parts if isinstance(step_parts, Parts) else None
    if parts is None:
        recur = step_parts
    else:

        def pre(loop: Prepared, carry: Carry, xp: Array) -> Array:
            return parts.pre(loop.extra, xp, parts.hidden(carry) @ loop.W_T)

        def recur(loop: Prepared, carry: Carry, xp: Array) -> tuple[Carry, Array]:
            new = parts.pointwise(carry, pre(loop, carry, xp))
            return new, parts.hidden(new)

        if gate_values is not None:

            def gates(loop: Prepared, carry: Carry, xp: Array) -> dict[str, Array]:
                return gate_values(pre(loop, carry, xp))

    def prepare(params: Params) -> Prepared:
        _check_params(params, cls, num_gates, hidden_size, has_b_hn)
        return Prepared(params.U.T, params.b, *recurrent(params))

    def project(loop: Prepared, xs: Array, name: str = "xs") -> Array:
        _check_x(xs, loop.U_T.shape[0], loop.U_T.dtype, name)
        return xs @ loop.U_T + loop.b

    def initial_carry(params: Params, batch_shape: tuple[int, ...] = ()) -> Carry:
        _check_params(params, cls, num_gates, hidden_size, has_b_hn)
        if isinstance(batch_shape, int) and not isinstance(batch_shape, bool):
            batch_shape = (batch_shape,)
        if not isinstance(batch_shape, tuple | list) or not all(isinstance(b, int) and b >= 0 for b in batch_shape):
            raise ValueError(f"batch_shape: expected a tuple of sizes such as (batch,), got {batch_shape!r}")
        return zero_carry(tuple(batch_shape), params.W.dtype)

    def step(params: Params, carry: Carry, x: Array) -> tuple[Carry, Array]:
        loop = prepare(params)
        xp = project(loop, x, "x")
        check_like(carry, initial_carry(params, jnp.shape(x)[:-1]), "carry")
        check_finite_tree(params, "params")
        check_finite_tree(x, "x")
        return recur(loop, carry, xp)

    def checked_init(key: PRNGKey, input_size: int) -> Params:
        check_key(key)
        check_positive_int(input_size, "input_size")
        return init(key, input_size)

    _check_options(options)
    return Cell(
        checked_init, initial_carry, step, project, prepare, recur, name, hidden_size, num_gates,
        tuple(sorted(options.items())), gates, parts,
    )  # fmt: skip


@functools.cache
def rnn(
    hidden_size: int,
    activation: str = "tanh",
    *,
    input_init: str | inits.Initializer = "glorot_uniform",
    recurrent_init: str = "orthogonal",
    gain: float = 1.0,
    bias: float = 0.0,
    dtype: Any = jnp.float32,
) -> Cell:
    """The vanilla (Elman) RNN.

    ``a_t = f(U x_t + W a_{t-1} + b)`` with f = tanh, ReLU or the identity; the cell outputs ``a_t``.
    The output layer ``y_t = g(V a_t + c)`` of the textbook belongs to the models.

    Args:
        hidden_size: size of ``a_t``.
        activation: ``"tanh"``, ``"relu"`` or ``"linear"`` (no non-linearity: the linear RNN
            whose Jacobian products are exactly powers of ``W``).
        input_init: initialiser of ``U`` (a name in ``rnnjax.init.INPUT_INITS`` or a
            ``jax.nn.initializers`` callable).
        recurrent_init: initialiser of ``W``: ``"orthogonal"``, ``"gaussian"``,
            ``"identity"`` (the IRNN of Le et al. 2015, see :func:`irnn`) or ``"torch"``.
        gain: scale of ``W`` (spectral radius for ``"orthogonal"``, ``"identity"``, and
            asymptotically for ``"gaussian"``).
        bias: the constant that ``b`` starts at.
        dtype: dtype of the params.

    Example:
        >>> cell = rnn(32)
        >>> params = cell.init(jax.random.key(0), 8)   # RNNParams(U=(32, 8), W=(32, 32), b=(32,))
        >>> carry, ys = rj.unroll(cell, params, xs)     # xs: (batch, time, 8)
    """
    _check_size(hidden_size, "hidden_size")
    acts = {"tanh": jnp.tanh, "relu": jax.nn.relu, "linear": lambda z: z}
    # f'(pre) in terms of a = f(pre): tanh' = 1 - tanh^2; ReLU' = 1 where a > 0 (0 at 0, as jax.nn.relu)
    slopes = {"tanh": lambda a: 1 - a * a, "relu": lambda a: (a > 0).astype(a.dtype), "linear": jnp.ones_like}
    if activation not in acts:
        raise ValueError(f"activation: expected one of {tuple(acts)}, got {activation!r}")
    inits.check_input_init(input_init)
    inits.check_recurrent_init(recurrent_init)
    f = acts[activation]

    def init(key: PRNGKey, input_size: int) -> RNNParams:
        _check_size(input_size, "input_size")
        k_u, k_w = jax.random.split(key)
        return RNNParams(
            U=inits.input_weights(k_u, input_init, 1, hidden_size, input_size, dtype),
            W=inits.recurrent_weights(k_w, recurrent_init, 1, hidden_size, gain, dtype),
            b=jnp.full((hidden_size,), bias, dtype),
        )

    def pointwise(a: Array, pre: Array) -> Array:
        return f(pre)  # a_t = f(U x_t + b + W a_{t-1})

    return _make_cell(
        "rnn", RNNParams, 1, hidden_size, init,
        lambda shape, dt: jnp.zeros((*shape, hidden_size), dt), Parts(_itself, pointwise, slope=slopes[activation]),
        activation=activation, input_init=input_init, recurrent_init=recurrent_init, gain=gain,
        bias=bias, dtype=dtype,
    )  # fmt: skip


def irnn(hidden_size: int, *, gain: float = 1.0, dtype: Any = jnp.float32) -> Cell:
    """The IRNN of Le, Jaitly & Hinton 2015: a ReLU RNN with ``W = gain * I``, ``b = 0``
    and input weights drawn from N(0, 0.001^2)."""
    return rnn(hidden_size, "relu", input_init=_IRNN_INPUT, recurrent_init="identity", gain=gain, dtype=dtype)


_IRNN_INPUT = jax.nn.initializers.normal(1e-3)


@functools.cache
def lstm(
    hidden_size: int,
    forget_bias: float = 1.0,
    *,
    input_init: str | inits.Initializer = "glorot_uniform",
    recurrent_init: str = "orthogonal",
    gain: float = 1.0,
    chrono: float | None = None,
    dtype: Any = jnp.float32,
) -> Cell:
    """The LSTM of Hochreiter & Schmidhuber 1997 with the forget gate of Gers et al. 2000.

    Over the concatenation ``[h_{t-1}, x_t]``::

        f_t  = sigmoid(W_f [h_{t-1}, x_t] + b_f)      forget gate
        i_t  = sigmoid(W_i [h_{t-1}, x_t] + b_i)      input gate
        C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)         candidate cell state
        o_t  = sigmoid(W_o [h_{t-1}, x_t] + b_o)      output gate
        C_t  = f_t * C_{t-1} + i_t * C~_t             cell state
        h_t  = o_t * tanh(C_t)                        hidden state, the output

    The four gates run as one fused matmul: ``U`` (input side) and ``W`` (recurrent side)
    stack the gates' blocks in the order f, i, C, o.

    Args:
        hidden_size: size of ``h_t`` and ``C_t``.
        forget_bias: the value ``b_f`` starts at (Gers et al. 2000; Jozefowicz et al. 2015
            recommend 1). It is an initialiser: the forward pass adds nothing.
        input_init, recurrent_init, gain: as in :func:`rnn`; orthogonal is per gate.
        chrono: if given, the longest dependency expected, T_max; then ``b_f`` is drawn
            as ``log(U(1, T_max - 1))`` and ``b_i = -b_f`` (Tallec & Ollivier 2018),
            replacing ``forget_bias``.
        dtype: dtype of the params.
    """
    _check_size(hidden_size, "hidden_size")
    inits.check_input_init(input_init)
    inits.check_recurrent_init(recurrent_init)

    def init(key: PRNGKey, input_size: int) -> LSTMParams:
        _check_size(input_size, "input_size")
        k_u, k_w, k_b = jax.random.split(key, 3)
        h = hidden_size
        b_f = jnp.full((h,), forget_bias, dtype)
        b_i = jnp.zeros((h,), dtype)
        if chrono is not None:
            b_f = inits.chrono_bias(k_b, h, chrono, dtype)
            b_i = -b_f
        return LSTMParams(
            U=inits.input_weights(k_u, input_init, 4, h, input_size, dtype),
            W=inits.recurrent_weights(k_w, recurrent_init, 4, h, gain, dtype),
            b=jnp.concatenate([b_f, b_i, jnp.zeros((2 * h,), dtype)]),
        )

    def gate_values(pre: Array) -> dict[str, Array]:
        f, i, c_tilde, o = jnp.split(pre, 4, axis=-1)
        return {"f": jax.nn.sigmoid(f), "i": jax.nn.sigmoid(i), "C_tilde": jnp.tanh(c_tilde), "o": jax.nn.sigmoid(o)}

    def pointwise(state: LSTMState, pre: Array) -> LSTMState:
        g = gate_values(pre)
        c = g["f"] * state.c + g["i"] * g["C_tilde"]  # C_t = f_t * C_{t-1} + i_t * C~_t
        h = g["o"] * jnp.tanh(c)  # h_t = o_t * tanh(C_t)
        return LSTMState(h, c)

    def zeros(shape: tuple[int, ...], dt: Any) -> LSTMState:
        return LSTMState(jnp.zeros((*shape, hidden_size), dt), jnp.zeros((*shape, hidden_size), dt))

    return _make_cell(
        "lstm", LSTMParams, 4, hidden_size, init, zeros, Parts(_lstm_hidden, pointwise), gate_values=gate_values,
        forget_bias=forget_bias, input_init=input_init, recurrent_init=recurrent_init, gain=gain,
        chrono=chrono, dtype=dtype,
    )  # fmt: skip


def _lstm_hidden(state: LSTMState) -> Array:
    return state.h


@functools.cache
def gru(
    hidden_size: int,
    reset_after: bool = True,
    *,
    input_init: str | inits.Initializer = "glorot_uniform",
    recurrent_init: str = "orthogonal",
    gain: float = 1.0,
    chrono: float | None = None,
    dtype: Any = jnp.float32,
) -> Cell:
    """The gated recurrent unit of Cho et al. 2014, with reset gate r and update gate z.

    ::

        r_t = sigmoid(W_r [h_{t-1}, x_t] + b_r)                  reset gate
        z_t = sigmoid(W_z [h_{t-1}, x_t] + b_z)                  update gate
        n_t = tanh(U_n x_t + b_n + r_t * (W_hn h_{t-1} + b_hn))  candidate (reset_after=True)
        n_t = tanh(U_n x_t + b_n + W_hn (r_t * h_{t-1}))         candidate (reset_after=False)
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    ``reset_after=True`` is the PyTorch/cuDNN/Flax form; ``False`` is Cho et al. 2014,
    where the reset multiplies ``h_{t-1}`` before the matmul. z is the share of
    ``h_{t-1}`` that is kept, as in PyTorch and Flax.

    Args:
        hidden_size: size of ``h_t``.
        reset_after: where the reset gate acts (see above).
        input_init, recurrent_init, gain: as in :func:`rnn`; orthogonal is per gate.
        chrono: if given, T_max; ``b_z`` is drawn as ``log(U(1, T_max - 1))`` (chrono
            initialisation, Tallec & Ollivier 2018), so memory times spread to T_max.
        dtype: dtype of the params.
    """
    _check_size(hidden_size, "hidden_size")
    inits.check_input_init(input_init)
    inits.check_recurrent_init(recurrent_init)
    h = hidden_size

    def init(key: PRNGKey, input_size: int) -> GRUParams:
        _check_size(input_size, "input_size")
        k_u, k_w, k_b = jax.random.split(key, 3)
        b_z = jnp.zeros((h,), dtype) if chrono is None else inits.chrono_bias(k_b, h, chrono, dtype)
        zeros = jnp.zeros((h,), dtype)
        return GRUParams(
            U=inits.input_weights(k_u, input_init, 3, h, input_size, dtype),
            W=inits.recurrent_weights(k_w, recurrent_init, 3, h, gain, dtype),
            b=jnp.concatenate([zeros, b_z, zeros]),
            b_hn=zeros if reset_after else None,
        )

    def recurrent(params: GRUParams) -> tuple[Array, Array]:
        if reset_after:
            return params.W.T, params.b_hn
        return params.W[: 2 * h].T, params.W[2 * h :].T  # W_rz^T, and W_hn^T as extra

    def combine(b_hn: Array, xp: Array, hp: Array) -> tuple[Array, Array]:
        # ([U_r x + b_r + W_r h, U_z x + b_z + W_z h, U_n x + b_n], W_hn h + b_hn). The first keeps xp's
        # layout and adds the r and z blocks of hp by a mask, not by slicing and concatenating: its
        # gradient is then that of xp as it stands, with no copy.
        rz = jnp.arange(3 * h) < 2 * h
        return xp + jnp.where(rz, hp, 0), hp[..., 2 * h :] + b_hn

    def gate_values(pre: tuple[Array, Array]) -> dict[str, Array]:
        p_r, p_z, x_n = jnp.split(pre[0], 3, axis=-1)
        r = jax.nn.sigmoid(p_r)
        return {"r": r, "z": jax.nn.sigmoid(p_z), "n": jnp.tanh(x_n + r * pre[1])}

    def pointwise(state: Array, pre: tuple[Array, Array]) -> Array:
        g = gate_values(pre)
        return (1.0 - g["z"]) * g["n"] + g["z"] * state  # h_t = (1 - z_t) n_t + z_t h_{t-1}

    def gates(loop: Prepared, state: Array, xp: Array) -> dict[str, Array]:  # reset_after=False
        x_r, x_z, x_n = jnp.split(xp, 3, axis=-1)
        h_r, h_z = jnp.split(state @ loop.W_T, 2, axis=-1)
        r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
        return {"r": r, "z": z, "n": jnp.tanh(x_n + (r * state) @ loop.extra)}

    def recur(loop: Prepared, state: Array, xp: Array) -> tuple[Array, Array]:  # reset_after=False
        g = gates(loop, state, xp)
        new = (1.0 - g["z"]) * g["n"] + g["z"] * state
        return new, new

    def zeros(shape: tuple[int, ...], dt: Any) -> Array:
        return jnp.zeros((*shape, h), dt)

    return _make_cell(
        "gru", GRUParams, 3, h, init, zeros, Parts(_itself, pointwise, combine) if reset_after else recur, recurrent,
        has_b_hn=reset_after, gates=None if reset_after else gates, gate_values=gate_values if reset_after else None,
        reset_after=reset_after, input_init=input_init, recurrent_init=recurrent_init, gain=gain,
        chrono=chrono, dtype=dtype,
    )  # fmt: skip


CELLS: dict[str, Callable[..., Cell]] = {"rnn": rnn, "irnn": irnn, "lstm": lstm, "gru": gru}


def make(name: str, hidden_size: int, **options: Any) -> Cell:
    """A cell by name: ``"rnn"``, ``"irnn"``, ``"lstm"`` or ``"gru"``, with its options."""
    if not isinstance(name, str) or name not in CELLS:
        raise ValueError(f"cell: expected one of {tuple(CELLS)}, got {name!r}")
    return CELLS[name](hidden_size, **options)
