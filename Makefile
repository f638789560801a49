# Every target creates or reuses .venv by itself: on a fresh machine `make test` and
# `make up` are the only set-up steps.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test lint fmt proto sim bench up down clean tck chaos

venv: $(STAMP)

# The editable install maps each top-level package that exists when it runs (modules added
# inside a package later are found without reinstalling). So reinstall when pyproject.toml
# is newer than the stamp, or when a package folder appears (raft/, store/, ...).
PACKAGES := proto raft store cypher cluster chaos

$(STAMP): pyproject.toml $(wildcard $(PACKAGES:%=%/__init__.py))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

test: venv
	$(MAKE) lint
	$(BIN)/pytest -q tests

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict raft/ store/

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Run from the repository root with -I . so generated imports read `from proto import x_pb2`.
# The output is kept exactly as protoc writes it (ruff excludes it); tests/test_proto_generated.py
# runs the same command and fails when the committed files differ.
proto: venv
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. proto/*.proto

# The openCypher TCK against the embedded Cypher engine (feature files in ../shared/tck),
# on the in-memory graph or, with TCK_STORE=rocksdb, the encrypted RocksDB store.
TCK_STORE ?= memory
tck: venv
	$(BIN)/python tests/cypher/tck_runner.py --store $(TCK_STORE)

# The soak: 20,000 seeds over 3, 5 and 7 nodes, one worker process per core.
sim: venv
	$(BIN)/quiver sim --seeds 20000 --jobs $(shell nproc)

# Every benchmark in turn, each printing its figures beside a baseline measured in the same
# run (the cluster, Bolt and privilege ones start their own scratch cluster).
BENCH_TARGETS ?= store cypher cluster bolt privileges
bench: venv
	set -e; for target in $(BENCH_TARGETS); do $(BIN)/quiver bench $$target; done

# The long chaos run: every workload (register, set, bank, graph) in turn, each on a fresh
# 3-node cluster whose links all go through the fault proxy, under every nemesis, for
# CHAOS_MINUTES in all; reports (history, verdicts, HTML) and summary.txt under CHAOS_OUT.
# Fails when any verdict is not valid. `make test` runs the short real-cluster scenarios.
CHAOS_MINUTES ?= 30
CHAOS_OUT ?= chaos-out/soak-$(shell date -u +%Y%m%dT%H%M%S)
chaos: venv
	$(BIN)/python -m chaos.soak --minutes $(CHAOS_MINUTES) --out $(CHAOS_OUT)

# Starts the supervised local cluster in the background and returns once a leader is
# elected, printing how to connect; `make down` stops it. (`quiver up` without --detach
# stays in the foreground instead, and Ctrl-C stops it.)
up: venv
	$(BIN)/quiver up --detach

down: venv
	$(BIN)/quiver down

# Never removes .quiver/: that is cluster data, and `quiver down` owns it.
clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
