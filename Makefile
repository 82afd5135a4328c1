# Two commands for a fresh machine (prerequisites: Python 3.11, Java 17, Maven):
#   make run   -> virtualenv + install, nightly job on embedded defaults, then serve the API on :8000
#   make test  -> virtualenv + install (with dev tools), then the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=

.PHONY: run test check venv nightly serve notebook lint bench clean lock audit

# The virtualenv is filled by uv (pinned in the lock, installed by the venv's own pip), which resolves and installs
# the same pinned versions as pip in about 24 s where pip took 35 s on 2 cores; where uv cannot (it reads none of
# pip's settings: an index mirror or a wheel folder in pip.conf or PIP_*), pip installs. Neither byte-compiles (pip
# did, every module of every package, about 20 s, most never imported); Python compiles what a command imports, once,
# into __pycache__. So these commands write bytecode whatever the environment says: with PYTHONDONTWRITEBYTECODE set,
# every process (the suite starts hundreds) would compile every module it imports again
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	@command -v java >/dev/null || { echo "Java 17 is required (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required for the Gremlin Server jars (apt-get install maven)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c requirements.lock -e ".[dev]" \
	  || $(BIN)/python -m pip install --quiet --no-compile -c requirements.lock -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/c360 nightly
	@echo "serving the API on http://$(HOST):$(PORT) until Ctrl-C (another port: make run PORT=8001)"
	$(BIN)/c360 serve --host $(HOST) --port $(PORT)

# two workers (pytest-xdist), whole modules each, in the suite's order (tests/conftest.py: the longest first): the
# suite is CPU-bound on 2 cores (both busy over 90% of its time, measured), so more workers only add contention (four
# measured slower: four modules of whole nightlies at once overload 2 cores and 24 GB)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# the inner loop (no JVM): lint, then the tests that start no JVM and take under ~1.5 s each, on the same two workers
# (each collects the suite and builds the session fixtures it needs, about 10 s of CPU, and the time still falls by a
# third on 2 cores: 107-153 s -> 67-93 s measured); test by test, an idle worker taking tests queued on the other
# (worksteal); in one process: make check TEST_WORKERS=0
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not jvm and not slow" $(PYTEST_ARGS)

nightly: $(STAMP)
	$(BIN)/c360 nightly

serve: $(STAMP)
	@echo "serving the API on http://$(HOST):$(PORT) until Ctrl-C (another port: make serve PORT=8001)"
	$(BIN)/c360 serve --host $(HOST) --port $(PORT)

# the exploration notebook run top to bottom (jupyter execute, from the dev tools) into build/notebooks/, outputs and
# drawing included (the copy in notebooks/ keeps none); its data: C360_NOTEBOOK_DATA, C360_GRAPH (its first cell),
# a relative data directory taken from here (the kernel runs in notebooks/)
notebook: $(STAMP)
	mkdir -p build/notebooks
	$(if $(C360_NOTEBOOK_DATA),C360_NOTEBOOK_DATA=$(abspath $(C360_NOTEBOOK_DATA))) \
	$(BIN)/jupyter execute --output=$(CURDIR)/build/notebooks/explore_customer360 notebooks/explore_customer360.ipynb
	@echo "executed: build/notebooks/explore_customer360.ipynb"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

# the pinned versions of everything installed (runtime + dev), from the current virtualenv
lock: $(STAMP)
	{ sed -n '1,2p' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

# known vulnerabilities of the pinned versions (needs the advisory database: run where it is reachable)
audit:
	$(PYTHON) -m venv .audit-venv && .audit-venv/bin/python -m pip install --quiet pip-audit
	.audit-venv/bin/pip-audit --strict --no-deps -r requirements.lock

clean:
	rm -rf $(VENV) warehouse .pytest_cache

# a Spark standalone master + worker on 127.0.0.1 (from the installed pyspark) and the nightly run on it
SPARK_PORT ?= 7077
.PHONY: spark-start spark-stop nightly-cluster

spark-start: $(STAMP)
	$(BIN)/c360 spark start --port $(SPARK_PORT)

spark-stop: $(STAMP)
	$(BIN)/c360 spark stop --port $(SPARK_PORT)

nightly-cluster: $(STAMP)
	C360_SPARK_MASTER=spark://127.0.0.1:$(SPARK_PORT) $(BIN)/c360 nightly
