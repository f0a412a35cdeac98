# ATMP-QA. `make run` serves the bundled corpus on http://127.0.0.1:8000; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
LLAMA_WHEEL ?= ../shared/wheels/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl

.PHONY: install dev corpus index run test lint clean

install: $(VENV)/.installed

# torch==2.13.0 is the local CPU build; naming it in the same command keeps pip from
# resolving a multi-GB CUDA torch for sentence-transformers. Runtime dependencies only.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/pip install --quiet "torch==2.13.0" -e .
	touch $@

# The test tools (the `dev` group). llama-cpp-python runs a real OpenAI-compatible server in the
# generation tests; the prebuilt wheel in ../shared/wheels is used when present, otherwise pip
# builds it from source (5–13 minutes).
dev: $(VENV)/.dev-installed

$(VENV)/.dev-installed: $(VENV)/.installed
	if [ -f "$(LLAMA_WHEEL)" ]; then $(BIN)/pip install --quiet "$(LLAMA_WHEEL)[server]"; fi
	$(BIN)/pip install --quiet "torch==2.13.0" -e . --group dev
	touch $@

corpus: install
	$(BIN)/atmp-qa corpus fetch

index: corpus
	$(BIN)/atmp-qa ingest

run: index
	$(BIN)/atmp-qa serve --host $(HOST) --port $(PORT)

test: dev
	$(BIN)/pytest -q

lint: dev
	$(BIN)/ruff check qa tests scripts
	$(BIN)/ruff format --check qa
	$(BIN)/mypy qa

clean:
	rm -rf $(VENV) index
