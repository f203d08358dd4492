# Fuzzing (libFuzzer via swiftc -sanitize=fuzzer,address). Targets and scripts live in Fuzz/.
#   make fuzz-smoke   build the fuzzers and run each briefly (part of `make test`)
#   make fuzz         run each for FUZZ_SECONDS (default 10 minutes) on top of the corpus kept in FUZZ_DIR
FUZZ_DIR           ?= $(CURDIR)/.build/fuzz
FUZZ_SMOKE_SECONDS ?= 8
FUZZ_SECONDS       ?= 600
FUZZ_TARGETS       ?=

.PHONY: fuzz fuzz-build fuzz-smoke

fuzz-build:
	Fuzz/build.sh "$(FUZZ_DIR)"

fuzz-smoke: fuzz-build
	Fuzz/run.sh "$(FUZZ_DIR)" $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

fuzz: fuzz-build
	Fuzz/run.sh "$(FUZZ_DIR)" $(FUZZ_SECONDS) $(FUZZ_TARGETS)
