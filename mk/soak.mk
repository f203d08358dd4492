# Soak (issue 15): fashiond for a long time at a steady rate on the embedded broker, with small journal
# segments (retention rotates), follow clients and status callers churning, SIGHUP every minute.
# Samples RSS, descriptors, threads and journal size; checks every produced record arrived once.
#   make soak                      30 minutes at 2,000 images/s (not part of `make test`)
#   make soak SOAK_MINUTES=5       a shorter run
#   make soak SOAK_FLAGS=--write-docs   also rewrite BENCHMARKS.md's SOAK section and docs/bench/soak.png
# Writes out/soak/{soak.json,soak.png,fashiond.log}. Python packages go into .venv/ (git-ignored).
SOAK_MINUTES ?= 30
SOAK_RATE    ?= 2000
SOAK_FLAGS   ?=

.PHONY: soak soak-venv

soak-venv: .venv/.soak-ok
.venv/.soak-ok: scripts/soak-requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install -q -r scripts/soak-requirements.txt
	touch $@

soak: release soak-venv
	.venv/bin/python scripts/soak.py run --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE) $(SOAK_FLAGS)
	@if echo "$(SOAK_FLAGS)" | grep -q -- --write-docs; then mkdir -p docs/bench && cp out/soak/soak.png docs/bench/soak.png; fi

# fashiond's RSS growth while one client reads RESULTS_READ_RECORDS results in one answer (BENCHMARKS.md).
RESULTS_READ_RECORDS ?= 1000000
.PHONY: bench-results-read
bench-results-read: release
	.build/release/fashion-bench results-read --records $(RESULTS_READ_RECORDS)
