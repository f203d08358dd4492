# Results and dead-letter topics (issue 13). Part of `make test`; this target runs only those tests
# (standalone broker, embedded broker, crash consistency, Pub/Sub emulator), keeping the daemons' logs.
#   make test-outputs [OUTPUT_TEST_LOGS=/tmp/fashiond-output-logs]
OUTPUT_TEST_LOGS ?= $(CURDIR)/.build/output-topic-logs

.PHONY: test-outputs

test-outputs: pubsub-check pubsub-venv
	$(SWIFT) build --build-tests
	FASHIOND_KEEP_TEST_LOGS="$(OUTPUT_TEST_LOGS)" $(SWIFT) test --skip-build --no-parallel \
		--filter 'OutputTopicTests|HostileImagesEndToEndTests|CrashConsistencyTests|PubSubEndToEndTests/outputTopics|RetentionFloorTests'
