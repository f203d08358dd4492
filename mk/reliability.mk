# Crash consistency and disk full (issue 7 parts 1 and 2). Part of `make test`; these targets run only
# those suites, keeping the daemons' logs. The kill points come from a seeded RNG whose seed each run
# prints; replay a run with CRASH_SEED=<seed>. The disk-full test mounts a tmpfs: it needs root.
#   make test-crash [CRASH_SEED=1234] [RELIABILITY_TEST_LOGS=/tmp/fashiond-reliability-logs]
#   make test-disk-full
RELIABILITY_TEST_LOGS ?= $(CURDIR)/.build/reliability-logs

.PHONY: test-crash test-disk-full

test-crash:
	$(SWIFT) build --build-tests
	FASHIOND_KEEP_TEST_LOGS="$(RELIABILITY_TEST_LOGS)" $(if $(CRASH_SEED),FASHIOND_CRASH_SEED=$(CRASH_SEED)) \
		$(SWIFT) test --skip-build --no-parallel --filter 'CrashConsistencyTests|TornWriteTests|RecoveryTests'

test-disk-full:
	$(SWIFT) build --build-tests
	FASHIOND_KEEP_TEST_LOGS="$(RELIABILITY_TEST_LOGS)" $(SWIFT) test --skip-build --no-parallel --filter 'DiskFullTests|DiskFullJournalTests'
