# Consumer groups (issue 4): several fashiond processes in one group against standalone mock brokers.
# Part of `make test`; this target runs only that suite, keeping the daemons' logs.
#   make test-consumer-groups [GROUP_TEST_LOGS=/tmp/fashiond-group-logs]
GROUP_TEST_LOGS ?= $(CURDIR)/.build/consumer-group-logs

.PHONY: test-consumer-groups

test-consumer-groups:
	$(SWIFT) build --build-tests
	FASHIOND_KEEP_TEST_LOGS="$(GROUP_TEST_LOGS)" $(SWIFT) test --skip-build --filter ConsumerGroupTests
