# The model side (training/README.md): retraining, golden logits, samples and generated image fixtures.
#   make samples        rewrite samples/ (+ README.md) and Tests/Fixtures/images/product/ from the test set;
#                       deterministic, so an unchanged model and selection leave the tree unchanged
#   make golden         rewrite Tests/Fixtures/golden/ (onnxruntime's logits) for both repository models
#   make train          retrain the default model into $(TRAIN_OUT) (8 epochs, ~1 min each on an idle core);
#                       `make train TRAIN_OUT=models/fashion-cnn golden samples` replaces the shipped one.
#                       TRAIN_ARCH=fashion-cnn-bn for the engine's fixture model, TRAIN_FLAGS='--epochs 1' for a
#                       quick run
#   make image-fixtures rewrite Tests/Fixtures/images/formats/ and Tests/Fixtures/hostile/
# They run in training/.venv, made from training/requirements.txt on first use. The Fashion-MNIST
# files come from the Debian package dataset-fashion-mnist (make deps). torch must be the CPU-only wheel:
# pip takes it from PIP_FIND_LINKS or PIP_EXTRA_INDEX_URL when you set one, else from $(TORCH_CPU_INDEX).
TRAINING_VENV   := training/.venv
TRAINING_PYTHON := $(TRAINING_VENV)/bin/python
TRAIN_ARCH      ?= fashion-cnn
TRAIN_OUT       ?= out/train/$(TRAIN_ARCH)
TRAIN_FLAGS     ?= --threads 1

.PHONY: training-venv train golden samples image-fixtures

training-venv: $(TRAINING_VENV)/.ok
$(TRAINING_VENV)/.ok: training/requirements.txt
	python3 -m venv $(TRAINING_VENV)
	$(TRAINING_PYTHON) -m pip install -q $(TORCH_PIP_SOURCE) -r training/requirements.txt
	touch $@

train: training-venv
	$(TRAINING_PYTHON) training/train.py --arch $(TRAIN_ARCH) --out $(TRAIN_OUT) $(TRAIN_FLAGS)

golden: training-venv
	$(TRAINING_PYTHON) training/make_golden.py

samples: training-venv
	$(TRAINING_PYTHON) training/make_samples.py

image-fixtures: training-venv
	$(TRAINING_PYTHON) Tests/Fixtures/images/formats/make_formats.py
	$(TRAINING_PYTHON) Tests/Fixtures/hostile/make_hostile.py
