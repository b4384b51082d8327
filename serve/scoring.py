"""Where a request is scored: small ones on the event loop, big ones on a scoring thread.

A big request spends most of its time in XGBoost, which releases the GIL
(serve/xgboost_inplace.py): on a scoring thread, that time overlaps with the event loop parsing,
logging and answering other requests. The hand-off costs a thread wake-up, so a request alone
gets slower; OFFLOAD_BATCH is where the overlap starts to pay. Measurements (throughput by thread
count, latency by request size): docs/performance.md.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from serve.model_store import LoadedModel


class Scorer:
    """Runs `model.predict`, inline or on one of `threads` scoring threads."""

    OFFLOAD_BATCH = 48

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None  # started by the first big request

    async def score(self, model: LoadedModel, matrix: np.ndarray) -> np.ndarray:
        """Probabilities for a parsed matrix, by the model that parsed it."""
        if len(matrix) < self.OFFLOAD_BATCH:
            return model.predict(matrix)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="scoring")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, model.predict, matrix)

    def close(self) -> None:
        """Let running predictions finish (at shutdown); a later request starts a new pool."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
