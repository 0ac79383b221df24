"""Evaluation metrics of GPP products against tower GPP (g C m-2 d-1)."""

import numpy as np


def gpp_metrics(observed, predicted):
    """n, RMSE, NRMSE (RMSE / observed range), R2 (1 - SSE/SST), bias (mean pred - obs), r."""
    o = np.asarray(observed, np.float64)
    p = np.asarray(predicted, np.float64)
    n = int(o.size)
    if n == 0:
        return {"n": 0, "rmse": float("nan"), "nrmse": float("nan"), "r2": float("nan"),
                "bias": float("nan"), "r": float("nan")}
    err = p - o
    rmse = float(np.sqrt(np.mean(err ** 2)))
    rng = float(o.max() - o.min())
    sst = float(np.sum((o - o.mean()) ** 2))
    r = float(np.corrcoef(o, p)[0, 1]) if n > 1 and o.std() > 0 and p.std() > 0 else float("nan")
    return {"n": n, "rmse": rmse, "nrmse": rmse / rng if rng > 0 else float("nan"),
            "r2": 1.0 - float(np.sum(err ** 2)) / sst if sst > 0 else float("nan"),
            "bias": float(err.mean()), "r": r}


def linear_fit(x, y):
    """Least-squares y = a x + b -> (a, b)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    a, b = np.polyfit(x, y, 1)
    return float(a), float(b)
