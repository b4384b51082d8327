"""XGBoost's in-place prediction through its C API, without the per-call setup of the Python one.

`Booster.inplace_predict` passes no proxy DMatrix, so libxgboost builds one per call, and with it
a new thread context that reads the cgroup CPU quota (11 system calls per prediction, seen with
strace). It also JSON-encodes its arguments in Python each time: on the champion, about half of
what one record takes (docs/performance.md). Here the argument string is made once per booster
and the proxy once per calling thread: calls on one proxy must not overlap, and the event loop
and the scoring threads (serve/scoring.py) predict at the same time. libxgboost keeps each
thread's result buffer apart.

Only the public C API is called (include/xgboost/c_api.h), on the library xgboost already loaded.
`BoosterPredictor` checks this against `inplace_predict` at load and falls back to it on any
difference, so an xgboost upgrade that changes the contract costs speed, never correctness.
"""

from __future__ import annotations

import ctypes
import json
import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger("serve")

_PREDICT_VALUE = 0  # PredictionType::kValue: probabilities for binary:logistic


class InplacePredict:
    """`booster.inplace_predict(x)` for dense float32 matrices, as float64 of shape (rows,)."""

    def __init__(self, booster: Any) -> None:
        from xgboost.libpath import find_lib_path

        self._lib = ctypes.CDLL(find_lib_path()[0])  # the same handle xgboost holds (dlopen)
        self._booster = booster  # keeps booster.handle alive
        self._local = threading.local()
        self._proxies: list[ctypes.c_void_p] = []  # every thread's, freed with this object
        self._proxies_lock = threading.Lock()
        self._config = json.dumps(
            {
                "type": _PREDICT_VALUE,
                "training": False,
                "iteration_begin": 0,
                "iteration_end": 0,
                "missing": float("nan"),
                "strict_shape": False,
                "cache_id": 0,
            }
        ).encode()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows, width = x.shape
        interface = (
            f'{{"data": [{x.ctypes.data}, true], "shape": [{rows}, {width}], '
            f'"typestr": "<f4", "version": 3, "strides": null}}'
        ).encode()
        shape = ctypes.POINTER(ctypes.c_uint64)()
        dims = ctypes.c_uint64()
        out = ctypes.POINTER(ctypes.c_float)()
        # ctypes releases the GIL for the call: the event loop runs on meanwhile.
        self._check(
            self._lib.XGBoosterPredictFromDense(
                self._booster.handle,
                interface,
                self._config,
                self._thread_proxy(),
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(out),
            )
        )
        out_shape = tuple(shape[i] for i in range(dims.value))
        if out_shape not in ((rows,), (rows, 1)):
            raise ValueError(f"prediction of shape {out_shape} for {rows} rows")
        # The result lives in this thread's buffer until its next call: copy it now.
        return np.ctypeslib.as_array(out, shape=(rows,)).astype(np.float64)

    def _thread_proxy(self) -> ctypes.c_void_p:
        proxy: ctypes.c_void_p | None = getattr(self._local, "proxy", None)
        if proxy is None:
            proxy = ctypes.c_void_p()
            self._check(self._lib.XGProxyDMatrixCreate(ctypes.byref(proxy)))
            with self._proxies_lock:
                self._proxies.append(proxy)
            self._local.proxy = proxy
        return proxy

    def _check(self, status: int) -> None:
        if status != 0:
            self._lib.XGBGetLastError.restype = ctypes.c_char_p
            raise RuntimeError(self._lib.XGBGetLastError().decode())

    def __del__(self) -> None:
        for proxy in getattr(self, "_proxies", ()):
            self._lib.XGDMatrixFree(proxy)


def checked_inplace(booster: Any) -> InplacePredict | None:
    """An `InplacePredict` that agrees with `booster.inplace_predict` on random rows (some with
    missing values), or None (logged) when it cannot be built or disagrees."""
    rng = np.random.default_rng(0)
    probe = rng.normal(scale=1e4, size=(64, booster.num_features())).astype(np.float32)
    probe[::7, 0] = np.nan
    try:
        inplace = InplacePredict(booster)
        got = inplace(probe)
        expected = np.asarray(booster.inplace_predict(probe, validate_features=False))
    except (AttributeError, OSError, RuntimeError, ValueError) as exc:
        log.info("xgboost C API path off (%s); using Booster.inplace_predict", exc)
        return None
    if expected.shape != got.shape or not np.array_equal(got, expected.astype(np.float64)):
        log.warning("xgboost C API path off: differs from Booster.inplace_predict")
        return None
    return inplace
