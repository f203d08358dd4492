# Google Cloud Pub/Sub backend: the test peers (Google's emulator and Python client).
#   make pubsub-venv     virtualenv with google-cloud-pubsub for the Pub/Sub tests (out/pubsub-venv)
#   make pubsub-check    fail with a clear message unless the Pub/Sub emulator (and Java) are installed
#   make test-pubsub     only the Pub/Sub tests (library and end to end)
PUBSUB_VENV := out/pubsub-venv

.PHONY: pubsub-venv pubsub-check test-pubsub

pubsub-venv: $(PUBSUB_VENV)/.ok
$(PUBSUB_VENV)/.ok: Tests/Fixtures/pubsub/requirements.txt
	python3 -m venv $(PUBSUB_VENV)
	$(PUBSUB_VENV)/bin/pip install -q -r Tests/Fixtures/pubsub/requirements.txt
	touch $@

pubsub-check:
	@Tests/Fixtures/pubsub/emulator.sh check

test-pubsub: pubsub-check pubsub-venv
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter 'PubSub'
