# Promotions engine (ml/promotions) and the CLI: their benchmarks. The promote-* verbs used by
# workflows are defined next to the workflows that call them. Included by the top-level Makefile.

##@ Benchmarks
.PHONY: bench-promote
bench-promote: ## Wall time and REST calls per model of apply: 20 models x 2 envs, local server
	$(PY) scripts/bench_promote.py

.PHONY: bench-cli
bench-cli: install ## Startup figures: `mlops --help`, `mlops promote plan` on the embedded store and over http
	$(PY) scripts/bench_cli.py
