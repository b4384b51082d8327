# Serving: run the FastAPI scoring service and benchmark it (serve/, scripts/bench_serve.py).
# Included by the top-level Makefile (BIN, PY come from there).

SERVE_BENCH_DURATION ?= 5

.PHONY: serve
serve: ## Serve models:/credit-risk@production (MLFLOW_TRACKING_URI, SERVE_* settings)
	$(BIN)/mlops serve

.PHONY: bench-serve
bench-serve: ## Benchmark /predict vs `mlflow models serve` vs a constant endpoint (needs wrk)
	@command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk"; exit 2; }
	$(PY) scripts/bench_serve.py --duration $(SERVE_BENCH_DURATION)
