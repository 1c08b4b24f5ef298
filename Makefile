PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test demo bench chaos durations clean

# Python writes the bytecode it compiles, as it does by default, even where PYTHONDONTWRITEBYTECODE
# is set (as on this machine and its CI runners): the suite starts some four hundred interpreters
# (the CLI, sandboxes, the workflows' tools), and without it each compiled again every module it
# imported (about 0.08 s of CPU per CLI process for the project's own), and pytest rewrote the
# asserts of every test module again in each worker (2.5 s of CPU each).
unexport PYTHONDONTWRITEBYTECODE

# The stamp is rebuilt when the dependency list changes, so a plain `make test` always runs
# against what pyproject.toml asks for.
# uv installs what pip would (the same resolution from the same index) in a fraction of the time: on
# a clean clone pip spent some 30 s of CPU evaluating every file of every release the index lists for
# the hundred-odd packages of the dev extra. Should uv not install or not work where this runs, pip
# does the install as before.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	( $(BIN)/python -m pip install --quiet uv \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python --upgrade pip -e '.[dev]' ) \
	|| ( $(BIN)/python -m pip install --quiet --upgrade pip && $(BIN)/python -m pip install --quiet -e '.[dev]' )
	touch $@

# Lint and types first, so a slip fails in seconds rather than after the suite: ruff takes well
# under a second, mypy about ten on a clean clone (its .mypy_cache makes a second run instant).
# Meanwhile, on the core mypy leaves idle, a collection alone imports every test module once, so
# the bytecode and rewritten tests the workers load are written before they start (should it fail,
# the suite itself says why).
# Three workers on two cores: much of the time goes to tests waiting on sandbox servers, which
# overlap well; worksteal keeps the long tests from leaving a worker idle at the end.
test: $(VENV)/.installed
	$(BIN)/ruff check reconciler tests bench scripts
	$(BIN)/python -m pytest -q --collect-only -p no:xdist >/dev/null 2>&1 & \
	$(BIN)/mypy; status=$$?; wait; exit $$status
	$(BIN)/python -m pytest -q -n 3 --dist worksteal

demo: $(VENV)/.installed
	PYTHON=$(BIN)/python bash scripts/demo.sh

# About twenty minutes: plan at 1,000, 10,000 and 100,000 jobs alone takes about twelve.
bench: $(VENV)/.installed
	$(BIN)/python bench/validate_bench.py
	$(BIN)/python bench/lockfile_bench.py
	$(BIN)/python bench/apply_bench.py 1000 20
	$(BIN)/python bench/plan_bench.py 1000 10000 100000 --runs 3
	$(BIN)/python bench/load_stages.py 10000

# After a full `make test`: keep its tests' durations (pytest's cache) in tests/durations.json, by
# which a fresh clone (CI) deals the tests to its workers. Commit it when the suite has changed shape.
durations:
	$(BIN)/python -c 'import json, pathlib; took = json.loads(pathlib.Path(".pytest_cache/v/reconciler/durations").read_text()); pathlib.Path("tests/durations.json").write_text(json.dumps({k: round(v, 2) for k, v in sorted(took.items())}, indent=0) + "\n")'

# Not part of `make test`: minutes of deliberate breakage, counts appended to bench/RESULTS.md.
chaos: $(VENV)/.installed
	$(BIN)/python bench/chaos.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
