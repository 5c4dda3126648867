# Two commands for a fresh clone: `make run` and `make test` (see README.md).
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
export FLASK_APP := app

.PHONY: run test bench lint clean

$(BIN)/activate:
	python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[test]'
	touch $@

instance/secret_key:
	mkdir -p instance
	umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' > $@

run: $(VENV)/.installed instance/secret_key
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

test: $(VENV)/.installed
	scripts/system-deps.sh
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	WITH_BENCH_TOOLS=1 scripts/system-deps.sh
	$(BIN)/python -m bench

lint: $(VENV)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
