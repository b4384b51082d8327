# Serving and batch scoring: run the FastAPI scoring service and benchmark it and `mlops predict`
# (serve/, ml/batch.py, scripts/bench_serve.py, scripts/bench_batch.py).
# Included by the top-level Makefile (BIN, PY come from there).

SERVE_BENCH_DURATION ?= 5

##@ Start here
.PHONY: serve
serve: ## Serve models:/credit-risk@production (MLFLOW_TRACKING_URI, SERVE_* settings)
	$(BIN)/mlops serve

##@ Benchmarks
.PHONY: bench-serve
bench-serve: ## Benchmark /predict vs `mlflow models serve` vs a constant endpoint (needs wrk)
	@command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk"; exit 2; }
	$(PY) scripts/bench_serve.py --duration $(SERVE_BENCH_DURATION)

BATCH_BENCH_ROWS ?= 1000000
BATCH_BENCH_BIG_ROWS ?= 10000000

.PHONY: bench-batch
bench-batch: ## Benchmark `mlops predict` vs `mlflow models predict` vs inplace_predict (1M rows; RSS at 10M)
	$(PY) scripts/bench_batch.py --rows $(BATCH_BENCH_ROWS) --big-rows $(BATCH_BENCH_BIG_ROWS)

.PHONY: bench-paths
bench-paths: ## Micro-benchmarks of serve's fast paths vs what they replaced (docs/performance.md)
	$(PY) scripts/bench_paths.py
