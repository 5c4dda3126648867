# Two commands for a fresh clone: `make run` and `make test` (see README.md).
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
# The address links in mail and from the command line lead to (app/urls.py); requests naming
# another host are refused. Set it to serve behind another name (a proxy, https).
PUBLIC_URL ?= http://127.0.0.1:$(PORT)
export FLASK_APP := app

.PHONY: run serve test bench lint clean

$(BIN)/activate:
	python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[test]'
	touch $@

instance/secret_key:
	mkdir -p instance
	umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' > $@

run: export PUBLIC_URL := $(PUBLIC_URL)
run: $(VENV)/.installed instance/secret_key
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	@echo
	@echo "newsfund: open $(PUBLIC_URL)/ (served on 127.0.0.1:$(PORT); stop with Ctrl-C)."
	@echo "To become staff, in another terminal (prints a one-time sign-in link):"
	@echo "  PUBLIC_URL=$(PUBLIC_URL) $(BIN)/flask --app app users create --email you@example.org --role admin"
	@echo "  (roles: fundraiser, finance, admin; repeat --role for several)"
	@echo "Mail goes to instance/outbox/ as .eml files unless MAIL_URL is set."
	@echo
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

# The production stack on this machine (README "Processes and schedule"): release, then the
# Procfile's web (gunicorn on PORT), worker and scheduler under honcho. Needs a Redis
# (REDIS_URL, default the local redis-server); DATABASE_URL as for `make run`.
$(VENV)/.serve-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install --quiet --editable '.[test,serve]'
	touch $@

serve: export PUBLIC_URL := $(PUBLIC_URL)
serve: export REDIS_URL ?= redis://127.0.0.1:6379/0
serve: export PATH := $(CURDIR)/$(BIN):$(PATH)
serve: $(VENV)/.serve-installed instance/secret_key
	flask --app app db upgrade
	@echo
	@echo "newsfund (production mode): open $(PUBLIC_URL)/ (gunicorn on 127.0.0.1:$(PORT), jobs on $(REDIS_URL)); stop with Ctrl-C."
	@echo
	honcho start --port $(PORT) web worker scheduler

# Bytecode is written even where the environment says not to: pytest keeps each test module
# with its asserts rewritten there, and the second run (and the next make test) reads it
# rather than rewriting every module again (seconds of each run's collection).
# One test process more than the CPUs: part of the time each waits on a server, a browser or
# a command it started (on 2 CPUs, 3 processes took 6:19-7:17 where 2 took 8:48 and 4 7:18).
TEST_PROCESSES ?= $(shell echo $$(( $$(nproc) + 1 )))
test: export PYTHONDONTWRITEBYTECODE :=
test: $(VENV)/.installed
	scripts/system-deps.sh
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) -m 'not timing' --durations=20
	$(BIN)/python -m pytest -m timing

$(VENV)/.bench-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install --quiet --editable '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	WITH_BENCH_TOOLS=1 scripts/system-deps.sh
	$(BIN)/python -m bench

lint: $(VENV)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
