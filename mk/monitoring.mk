# Monitoring: the drift job, the data gate, Prometheus/Alertmanager config checks, Grafana
# dashboards as code (docs/monitoring.md). Included by the top-level Makefile (BIN, PY, CHECKS).

PROMTOOL ?= promtool
AMTOOL ?= amtool
MONITORING_OUT ?= build/monitoring
DRIFT_WINDOW ?= 24h

##@ Test
.PHONY: monitoring-check
monitoring-check: ## promtool check config + rules + rule unit tests, amtool check-config
	@command -v $(PROMTOOL) >/dev/null || { echo "promtool not found: make system-deps (scripts/system_deps.sh; Debian: prometheus)"; exit 2; }
	@command -v $(AMTOOL) >/dev/null || { echo "amtool not found: make system-deps (scripts/system_deps.sh; Debian: prometheus-alertmanager)"; exit 2; }
	$(PROMTOOL) check config monitoring/prometheus/prometheus.yml
	$(PROMTOOL) check rules monitoring/prometheus/rules/*.yml
	$(PROMTOOL) test rules monitoring/prometheus/tests/*.yml
	$(AMTOOL) check-config monitoring/alertmanager/alertmanager.yml

CHECKS += monitoring-check

##@ Monitoring
.PHONY: dashboards
dashboards: install ## Regenerate monitoring/grafana/dashboards/*.json from dashboards-as-code
	$(PY) monitoring/grafana/dashboards.py --out monitoring/grafana/dashboards

.PHONY: monitor-drift
monitor-drift: install ## Drift job on DRIFT_LOGS (file, folder, s3://) over DRIFT_WINDOW; exit 15 on a breach
	@test -n "$$DRIFT_LOGS" || { echo "error: set DRIFT_LOGS (a file, a folder or s3://bucket/prefix)" >&2; exit 2; }
	$(BIN)/mlops monitor drift --logs "$$DRIFT_LOGS" --window "$(DRIFT_WINDOW)" --out $(MONITORING_OUT) --notify

##@ Data & training
.PHONY: data-check
data-check: install ## Gate DATA_CURRENT against DATA_REFERENCE (file or models:/NAME@ALIAS); exit 15 on a breach
	@test -n "$$DATA_CURRENT" -a -n "$$DATA_REFERENCE" || { echo "error: set DATA_CURRENT and DATA_REFERENCE" >&2; exit 2; }
	$(BIN)/mlops data check --current "$$DATA_CURRENT" --reference "$$DATA_REFERENCE" --out $(MONITORING_OUT)

##@ Benchmarks
.PHONY: bench-drift
bench-drift: install ## Drift job on 1,000,000 logged predictions: wall time and peak RSS
	$(PY) scripts/bench_drift.py
