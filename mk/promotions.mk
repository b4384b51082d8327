# Promotions engine (ml/promotions): its benchmark. The promote-* verbs used by workflows are
# defined next to the workflows that call them. Included by the top-level Makefile (BIN, PY).

.PHONY: bench-promote
bench-promote: ## Wall time and REST calls per model of apply: 20 models x 2 envs, local server
	$(PY) scripts/bench_promote.py
