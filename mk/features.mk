# The online feature store: benchmark it (ml/feature_store, serve/routes/predict_by_id.py,
# scripts/bench_features.py). Included by the top-level Makefile (BIN, PY come from there).

FEATURES_BENCH_ROWS ?= 1000000
FEATURES_BENCH_DURATION ?= 5
FEATURES_BENCH_ROUNDS ?= 5

##@ Benchmarks
.PHONY: bench-features
bench-features: ## Benchmark the feature store: fetch p99, by-id vs /predict at c=8, materialize 1M rows (needs redis-server, wrk)
	@command -v redis-server >/dev/null || { echo "redis-server not found: scripts/system_deps.sh"; exit 2; }
	@command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk"; exit 2; }
	$(PY) scripts/bench_features.py --rows $(FEATURES_BENCH_ROWS) --duration $(FEATURES_BENCH_DURATION) --rounds $(FEATURES_BENCH_ROUNDS)
