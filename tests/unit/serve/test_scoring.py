"""Big requests are scored on a scoring thread while the event loop answers others."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from serve.model_store import LoadedModel, load_from_path
from serve.scoring import Scorer


@pytest.fixture
def model(model_dir: Path) -> LoadedModel:
    return load_from_path(model_dir, max_batch=1000)


def _rows(model: LoadedModel, count: int) -> np.ndarray:
    rng = np.random.default_rng(count)
    return rng.integers(0, 5, size=(count, len(model.columns))).astype(np.float32)


def test_small_requests_score_on_the_loop_and_big_ones_on_a_scoring_thread(
    model: LoadedModel,
) -> None:
    threads: list[str] = []

    def recording(x: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return model.predictor(x)

    recorded = replace(model, predictor=recording)
    scorer = Scorer(threads=1)
    sizes = (1, Scorer.OFFLOAD_BATCH - 1, Scorer.OFFLOAD_BATCH, 300)

    async def run() -> list[np.ndarray]:
        return [await scorer.score(recorded, _rows(model, n)) for n in sizes]

    try:
        results = asyncio.run(run())
    finally:
        scorer.close()

    loop_thread = threading.current_thread().name
    assert threads[:2] == [loop_thread, loop_thread]
    assert all(name.startswith("scoring") for name in threads[2:])
    for n, got in zip(sizes, results, strict=True):
        np.testing.assert_array_equal(got, model.predict(_rows(model, n)))


def test_the_loop_answers_small_requests_while_a_big_one_scores(model: LoadedModel) -> None:
    release = threading.Event()

    def slow_for_big(x: np.ndarray) -> np.ndarray:
        if len(x) >= Scorer.OFFLOAD_BATCH:
            release.wait(timeout=5)  # scored inline, this would stall the loop for 5 s
        return model.predictor(x)

    slow = replace(model, predictor=slow_for_big)
    scorer = Scorer(threads=1)
    finished: list[str] = []

    async def run() -> None:
        async def big() -> None:
            await scorer.score(slow, _rows(model, 100))
            finished.append("big")

        task = asyncio.create_task(big())
        await asyncio.sleep(0)  # the big request reaches its scoring thread first
        await scorer.score(slow, _rows(model, 1))
        finished.append("small")
        release.set()
        await task

    try:
        asyncio.run(asyncio.wait_for(run(), timeout=20))
    finally:
        scorer.close()

    assert finished == ["small", "big"]


def test_a_closed_scorer_scores_again(model: LoadedModel) -> None:
    scorer = Scorer(threads=2)
    rows = _rows(model, 100)
    first = asyncio.run(scorer.score(model, rows))
    scorer.close()

    again = asyncio.run(scorer.score(model, rows))
    scorer.close()

    np.testing.assert_array_equal(first, again)
