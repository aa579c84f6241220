"""Baselines the experiments measure their networks against, on the same split in the same run.

One kind a module (``rj.baselines.ngram``, ``rj.baselines.forecast``, ...), imported on first use. Baselines
that are a scikit-learn or statsmodels estimator are called from the experiment itself; what lives here is
what those packages do not have (a character n-gram language model, seasonal naive forecasts, ...).
"""

import importlib
import importlib.util


def __getattr__(name: str):
    """``rj.baselines.<kind>``: one module of baselines, imported on first use."""
    if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")
