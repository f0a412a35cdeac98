# ATMP-QA. `make run` serves the bundled corpus on http://127.0.0.1:8000; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
LLAMA_WHEEL ?= ../shared/wheels/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl

.PHONY: install corpus index run test lint clean

install: $(VENV)/.installed

# torch==2.13.0 is the local CPU build; naming it in the same command keeps pip from
# resolving a multi-GB CUDA torch for sentence-transformers.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=25.1"
	# The prebuilt llama.cpp wheel; from PyPI it compiles for 5–13 minutes.
	$(BIN)/pip install --quiet "$(LLAMA_WHEEL)[server]"
	$(BIN)/pip install --quiet "torch==2.13.0" -e . --group dev
	touch $@

corpus: install
	$(BIN)/atmp-qa corpus fetch

index: corpus
	$(BIN)/atmp-qa ingest

run: index
	$(BIN)/atmp-qa serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check qa tests scripts
	$(BIN)/ruff format --check qa
	$(BIN)/mypy qa

clean:
	rm -rf $(VENV) index
