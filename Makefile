# socker: `make demo` and `make check` on a fresh Debian 12 machine, as root.
SHELL := /bin/bash
PYTHON := /usr/bin/python3.11
TEST_VENV := build/test-venv
# The config tests read files only below directories that root alone may write: under /run,
# wherever the checkout lies (/tmp, say, is everyone's).
UNIT_TMP := /run/socker-unit-tests/pytest

.PHONY: demo check check-v2 check-cluster lint up pbs build install rpm unit stress integration clean

demo: install
	@echo "== socker run as socker-alice, outside any job"
	cd /home/socker-alice && runuser -u socker-alice -- /usr/local/bin/socker run socker-test/busybox:latest \
	    sh -c 'echo "in the container: $$(id)"; echo "USER=$$USER HOME=$$HOME"'
	@echo "== the same inside a Slurm job: sbatch --mem=100M -c 1 integration/demo-job"
	cd /home/socker-alice && runuser -u socker-alice -- sbatch -W --mem=100M -c 1 -o socker-demo.out \
	    $(CURDIR)/integration/demo-job >/dev/null && cat socker-demo.out && rm -f socker-demo.out

check: lint install pbs rpm unit integration

# Every shell script of the repository (a first line "#!" naming sh or bash, or "# shellcheck
# shell=", or a name ending in .sh), by Debian's shellcheck; sourced files are followed.
lint:
	command -v shellcheck >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends shellcheck >/dev/null
	find . \( -path ./.git -o -path ./build \) -prune -o -type f -print0 \
	    | xargs -0 awk 'FNR == 1 { if (/^#!.*[\/ ](ba)?sh( |$$)/ || /^# shellcheck shell=/ || FILENAME ~ /\.sh$$/) print FILENAME; nextfile }' \
	    | sort | xargs -d '\n' shellcheck -x

up:
	integration/up

# OpenPBS beside Slurm, built from the vendored source once (integration/pbs/up).
pbs: install
	integration/pbs/up

build:
	packaging/build

install: up build
	packaging/install

# The RPM packages the distribution packaging/build made (rpmbuild does not recompile it).
rpm: build
	command -v rpmbuild >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rpm >/dev/null
	rm -rf build/rpm
	rpmbuild -bb socker.spec --define "_topdir $(CURDIR)/build/rpm" --define "sockersrc $(CURDIR)" \
	    >build/rpmbuild.log 2>&1 || { tail -20 build/rpmbuild.log; exit 1; }
	ls build/rpm/RPMS/*/socker-*.rpm

$(TEST_VENV)/ready: packaging/requirements.txt tests/requirements.txt
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/pip install -q -r packaging/requirements.txt -r tests/requirements.txt
	touch $@

unit: $(TEST_VENV)/ready
	$(TEST_VENV)/bin/python -m pytest -q -rs tests --basetemp=$(UNIT_TMP)

# The unit suite 30 times in a row with every CPU busy; each failure with its seed (see README, Tests).
stress: $(TEST_VENV)/ready
	tests/stress 30

integration: $(TEST_VENV)/ready
	$(TEST_VENV)/bin/python -m pytest -q integration --ignore=integration/vm --ignore=integration/cluster --basetemp=build/pytest-integration

# The Slurm confinement tests on cgroup v2, in a throw-away qemu guest (see README, Tests).
check-v2: build
	integration/vm/build
	integration/vm/run

# socker on a two-node Slurm cluster of qemu guests, with MPI between them and images from the
# site registry (see README, Tests).
check-cluster: build up
	integration/vm/build
	integration/cluster/run

clean:
	rm -rf build
