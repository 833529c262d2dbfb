# socker: `make demo` and `make check` on a fresh Debian 12 machine, as root.
SHELL := /bin/bash
PYTHON := /usr/bin/python3.11
TEST_VENV := build/test-venv

.PHONY: demo check up install unit integration clean

demo: install
	@echo "== socker run as socker-alice, outside any job"
	cd /home/socker-alice && runuser -u socker-alice -- /usr/local/bin/socker run socker-test/busybox:latest \
	    sh -c 'echo "in the container: $$(id)"; echo "on the host she is: $$USER, home $$HOME"'

check: install unit integration

up:
	integration/up

install: up
	packaging/build
	packaging/install

$(TEST_VENV)/ready: packaging/requirements.txt tests/requirements.txt
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/pip install -q -r packaging/requirements.txt -r tests/requirements.txt
	touch $@

unit: $(TEST_VENV)/ready
	$(TEST_VENV)/bin/python -m pytest -q tests --basetemp=build/pytest-unit

integration: $(TEST_VENV)/ready
	$(TEST_VENV)/bin/python -m pytest -q integration --basetemp=build/pytest-integration

clean:
	rm -rf build
