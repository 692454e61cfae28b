# threadline: `make run` sets up and starts the server; `make test` sets up and runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup ui lint format bench clean fuzz

$(STAMP): pyproject.toml setup.py $(wildcard src/threadline/model/*.pyx src/threadline/model/*.pxd)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel "Cython>=3.0"
	$(BIN)/pip install --quiet --no-build-isolation -e ".[test]"
	touch $(STAMP)

# the web UI (ui/), built into the package's ui_dist when its sources change
UI_BUILT := src/threadline/ui_dist/index.html
UI_SOURCES := $(shell find ui/src -type f 2>/dev/null) ui/index.html ui/package.json ui/package-lock.json ui/vite.config.ts ui/tsconfig.json

$(UI_BUILT): $(UI_SOURCES)
	cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build

ui: $(UI_BUILT)

setup: $(STAMP) $(UI_BUILT)

run: $(STAMP) $(UI_BUILT)
	$(BIN)/threadline serve --data-dir ./data $(ARGS)

test: $(STAMP) $(UI_BUILT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd ui && npm test --silent
	$(BIN)/pytest -n auto -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .

# atheris harnesses in fuzz/, FUZZ_SECONDS each; every harness runs, failures are listed at the end
# (full logs in .venv/fuzz-NAME.log)
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?= otlp_protobuf otlp_json zipkin_json zipkin_proto jaeger_thrift jaeger_api_v2 traceql config

fuzz: $(STAMP)
	$(BIN)/pip install --quiet "atheris>=2.3"
	@failed=""; for h in $(FUZZ_HARNESSES); do \
		echo "== fuzz/$$h.py for $(FUZZ_SECONDS)s"; \
		$(BIN)/python fuzz/run.py $$h $(FUZZ_SECONDS) > $(VENV)/fuzz-$$h.log 2>&1 || failed="$$failed $$h"; \
		grep -E "^stat::(number|average|peak)|^[A-Za-z]+Error|Test unit written" $(VENV)/fuzz-$$h.log; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz failures (inputs in $(VENV)/fuzz-artifacts/):$$failed"; exit 1; fi

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build src/*.egg-info src/threadline/model/_*.c src/threadline/model/*.so
