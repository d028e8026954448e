# make run  — start the service (creates .venv from requirements.txt on first use)
# make test — run the test suite in the same venv
# make soak — the long variants: API fuzzing with thousands of examples, then bench/soak.py (10,000 tasks)
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: run test bench soak clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/gunicorn -c gunicorn.conf.py 'api.app:create_app()'

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python bench/run_all.py

SOAK_FUZZ_EXAMPLES ?= 1000
SOAK_ARGS ?=
soak: $(STAMP)
	HOST_RUNNER_FUZZ_EXAMPLES=$(SOAK_FUZZ_EXAMPLES) $(VENV)/bin/python -m pytest -q tests/service/test_fuzz_api.py
	$(VENV)/bin/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
