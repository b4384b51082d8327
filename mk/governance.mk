# Credit-decision governance (ml/governance, config/governance.yaml): its benchmark.

##@ Benchmarks
.PHONY: bench-reasons
bench-reasons: install ## Reason codes: /predict with vs without ?reasons=true; mlops predict rows/s with vs without --reasons
	$(PY) scripts/bench_reasons.py
