# fashiond — build, test, run. `make help` lists the targets.
SWIFT        ?= swift
PREFIX       ?= /usr/local
DEMO_DIR     ?= $(CURDIR)/out/demo
SAMPLES      := $(wildcard samples/*.png)
# The CPU-only torch wheel (bench/.venv, training/.venv, .venv-models): pip takes it from PIP_FIND_LINKS or
# PIP_EXTRA_INDEX_URL when you set one, else from PyTorch's CPU index (plain PyPI has only the CUDA build).
TORCH_CPU_INDEX  ?= https://download.pytorch.org/whl/cpu
TORCH_PIP_SOURCE := $(if $(PIP_FIND_LINKS)$(PIP_EXTRA_INDEX_URL)$(PIP_INDEX_URL),,--extra-index-url $(TORCH_CPU_INDEX))

.PHONY: help deps build release check format lint test test-tags demo demo-stop bench bench-engine bench-setup clean

help:
	@echo "make deps        install the Debian packages (apt-get)"
	@echo "make build       debug build of everything"
	@echo "make release     optimised build"
	@echo "make check       the unit tests (no broker, emulator, root or systemd) and the format check: what to run all day"
	@echo "make format      format every Swift file with the checked-in .swift-format (make lint only checks)"
	@echo "make test        every test (unit, integration, end to end)"
	@echo "make test-tags TAGS='broker emulator' [SKIP_TAGS=slow]   the tests carrying any of TAGS (docs/TESTING.md)"
	@echo "make demo        start fashiond on the embedded broker and classify samples/"
	@echo "make demo-stop   stop the demo daemon"
	@echo "make bench       benchmarks against onnxruntime and Python pipelines (not tests)"
	@echo "make fuzz        long libFuzzer runs (make fuzz-smoke: the short run make test does)"
	@echo "make soak        30-minute soak at 2,000 images/s (SOAK_MINUTES=5 for a shorter one; mk/soak.mk)"
	@echo "make bench-results-read   fashiond's RSS while one client reads a million results"
	@echo "make samples     rewrite samples/ and the product-photo fixtures from the test set (training/.venv)"
	@echo "make train       retrain the default model into out/train (TRAIN_OUT=models/fashion-cnn to replace it)"

deps:
	./scripts/install-deps.sh

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

# The unit tests: every test tagged `unit` and not `slow` (tags: Tests/TestSupport/Tags.swift). Swift
# Testing cannot select by tag on the command line; scripts/test-select.py turns tags into --filter.
# The house style (.swift-format: line length 120, 4 spaces), as swift-nio and swift-log keep theirs.
FORMAT_PATHS := Sources Tests Fuzz/Targets Fuzz/Support Package.swift
format:
	$(SWIFT) format format --in-place --recursive --parallel $(FORMAT_PATHS)

lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)

check: lint
	$(SWIFT) build --build-tests
	scripts/test-select.py --run unit --skip slow

# Any slice by tag, e.g. `make test-tags TAGS=broker SKIP_TAGS=slow`.
TAGS      ?=
SKIP_TAGS ?=
test-tags:
	$(SWIFT) build --build-tests
	scripts/test-select.py --run $(TAGS) $(addprefix --skip ,$(SKIP_TAGS)) -- --no-parallel

# Builds every product first: the end-to-end tests drive the real binaries. The Pub/Sub tests need
# Google's emulator (checked) and a virtualenv with its Python client (mk/pubsub.mk).
test: pubsub-check pubsub-venv
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	$(MAKE) fuzz-smoke

demo: release
	./scripts/demo.sh "$(DEMO_DIR)"

demo-stop:
	@if [ -f "$(DEMO_DIR)/fashiond.pid" ]; then kill "$$(cat $(DEMO_DIR)/fashiond.pid)" && rm -f "$(DEMO_DIR)/fashiond.pid" && echo "fashiond stopped"; else echo "no demo running"; fi

bench-setup: bench/.venv/.ok
bench/.venv/.ok: bench/requirements.txt
	python3 -m venv bench/.venv
	bench/.venv/bin/pip install -q $(TORCH_PIP_SOURCE) -r bench/requirements.txt
	touch $@

bench: bench-engine

bench-engine: release bench-setup
	.build/release/fashion-bench engine --python bench/.venv/bin/python

clean:
	rm -rf .build out

# Topic-specific targets (packaging, systemd, benchmarks, fuzzing) live in mk/.
-include mk/*.mk
