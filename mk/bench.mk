# End-to-end benchmark (issue 8): fashiond vs the Python pipelines, same broker, same images, same run.
#   make bench-e2e         full run (~15 min): rewrites BENCHMARKS.md's end-to-end section and docs/bench/*.png,
#                          writes the JSON report to out/bench/e2e.json
#   make bench-e2e-quick   smoke run (a few hundred images per phase); writes nothing into the tree
#   make bench-drain       backlog drain only (~5 min): fashiond vs the competent Python, 1 process and 1 per core,
#                          writes out/bench/drain.json
# `make bench` (Makefile) runs bench-engine, then this.
BENCH_E2E_FLAGS ?=

.PHONY: bench-e2e bench-e2e-quick bench-drain

bench: bench-e2e

bench-e2e: release bench-setup
	.build/release/fashion-bench e2e --write-docs --report out/bench/e2e.json $(BENCH_E2E_FLAGS)

bench-e2e-quick: release bench-setup
	.build/release/fashion-bench e2e --quick $(BENCH_E2E_FLAGS)

# Cost of the Prometheus metrics (issue 14): saturation with recording on and off, alternating.
#   make bench-metrics     3 rounds x 20000 images per setting (~3 min); rewrites BENCHMARKS.md's metrics section
.PHONY: bench-metrics
bench-metrics: release bench-setup
	.build/release/fashion-bench metrics-overhead --write-docs

bench-drain: release bench-setup
	.build/release/fashion-bench e2e --drain --report out/bench/drain.json $(BENCH_E2E_FLAGS)
