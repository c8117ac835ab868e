# The two commands of the README:
#   make run   set up .venv, write the sample export (only into an empty landing folder), run the daily job
#   make test  set up .venv, run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= data
# Optional extras to install: CI adds spark (PySpark + dbt-spark) for the Spark engine's tests.
EXTRAS ?= dev
comma  := ,
# One stamp per set of extras, so adding spark to an existing venv installs it.
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
# "Today" is today in the business time zone (oppwh.yml timezone) for both the sample and
# the run; AS_OF=YYYY-MM-DD fixes another day for both.
AS_OF  ?=
AS_OF_ARG := $(if $(AS_OF),--as-of $(AS_OF))

export GX_ANALYTICS_ENABLED := false
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DAGSTER_DISABLE_TELEMETRY := yes

.PHONY: run test install lint format upgrade-lock clean

$(STAMP): pyproject.toml constraints.txt
	@echo "==> Setting up $(VENV) with pinned dependencies (constraints.txt) / 安装依赖"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $@

install: $(STAMP)

run: $(STAMP)
	@echo "==> Sample export into $(DATA)/landing (only when it holds no files) / 示例数据"
	@$(BIN)/oppwh sample --out $(DATA)/landing --if-empty $(AS_OF_ARG)
	@echo "==> Daily job / 每日任务"
	@$(BIN)/oppwh run --data-dir $(DATA) $(AS_OF_ARG)

test: $(STAMP)
	@$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .
	@cd dbt_project && ../$(BIN)/sqlfluff lint models tests --disable-progress-bar

format: $(STAMP)
	@$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# Re-resolve every dependency to its newest allowed version and rewrite the lock.
upgrade-lock:
	@rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	@.venv-lock/bin/python -m pip install --quiet --upgrade pip
	@.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	@.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^opportunity-warehouse' > constraints.txt
	@rm -rf .venv-lock && echo "constraints.txt updated; run make test before committing it"

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs
