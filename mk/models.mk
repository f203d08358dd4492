# Bring-your-own-model fixtures (issue 16): real Keras 3 and PyTorch ONNX exports for the engine's
# parity and end-to-end tests, with onnxruntime's reference answers.
#   make model-fixtures         retrain and re-export Tests/Fixtures/models/{keras-cnn,torch-mlp,
#                               torch-cnn-softmax}, rewrite Tests/Fixtures/reference/ (a few minutes)
#   make bench-engine-models    fashion-bench engine on each fixture (numbers for docs/MODELS.md)
# The venv needs the CPU torch wheel: from PIP_FIND_LINKS (a directory with the wheel) or
# PIP_EXTRA_INDEX_URL when set, else from PyTorch's CPU index (TORCH_PIP_SOURCE, Makefile).
MODELS_VENV    := .venv-models
MODEL_FIXTURES := keras-cnn torch-mlp torch-cnn-softmax

.PHONY: model-fixtures models-venv bench-engine-models

models-venv: $(MODELS_VENV)/.ok
$(MODELS_VENV)/.ok: training/requirements-fixtures.txt
	python3 -m venv $(MODELS_VENV)
	$(MODELS_VENV)/bin/pip install -q $(TORCH_PIP_SOURCE) -r training/requirements-fixtures.txt
	touch $@

model-fixtures: models-venv
	$(SWIFT) build --product fashiond
	$(MODELS_VENV)/bin/python training/make_model_fixtures.py --fashiond .build/debug/fashiond

bench-engine-models: release bench-setup
	for model in $(MODEL_FIXTURES); do \
		.build/release/fashion-bench engine --model Tests/Fixtures/models/$$model --python bench/.venv/bin/python || exit 1; \
	done
