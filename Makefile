# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean notebooks

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# the CPU build of torch first: an open range would pull several GB of CUDA packages
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test,cluster]"
	touch $(STAMP)

install: $(STAMP)

# the training runs on the clock of the very schedule the first command solved (same assignment and order)
demo: install
	$(VENV)/bin/sched solve --time-limit 20 --out out/demo
	$(VENV)/bin/sched simulate --schedule out/demo/schedule.json --rounds 5 --stragglers mild --out out/demo/sim
	$(VENV)/bin/sched train --schedule out/demo/schedule.json --dataset digits --rounds 8 --threads 1 --out out/demo/train
	@echo "report: out/demo/report.html   simulated: out/demo/sim/report.html   trained: out/demo/train/report.html"

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the .ipynb files are built from their py-percent scripts and executed in place (tables and plots as committed)
notebooks: install
	cd notebooks && for f in *.py; do \
		../$(VENV)/bin/jupytext --quiet --set-kernel python3 --to ipynb "$$f" && \
		../$(VENV)/bin/jupyter execute --inplace "$${f%.py}.ipynb" || exit 1; \
	done

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
