"""Where a request is scored: small ones on the event loop, big ones on a scoring thread.

A 100-record request spends ~1 ms in XGBoost, which releases the GIL (serve/xgboost_inplace.py).
On a scoring thread that millisecond overlaps with the event loop parsing, logging and answering
other requests. 100-record batches at concurrency 8 went from ~60k to ~88k records/s (wrk; 2 CPUs,
one worker, one scoring thread; two or three scoring threads gave less). The hand-off costs a
thread wake-up, so a request alone gets slower: by 0.2 ms at 48 records and 0.4 ms at 32 (wrk at
concurrency 1). Hence the cut-over at OFFLOAD_BATCH.
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
