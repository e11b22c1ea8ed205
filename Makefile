# fastreboot.kexec: the one front door. `make help` lists the targets.
# The two commands of the README:  make demo  (main job on a lab VM)  and  make test  (full suite).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
VENV_OLDEST := .venv-oldest
LAB := python3 tests/lab/lab.py
SCENARIOS ?= lab_smoke modules kexec_reboot
SCENARIO ?= default
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/tests/output/collections
export ANSIBLE_FORCE_COLOR := false
export PY_COLORS := 0

.PHONY: help setup venv images demo test lint sanity units molecule molecule-one benchmark drill clean lab-down collection

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup:  ## Debian packages (as root) and the pinned virtual environments
	tests/tools/setup-host.sh
	tests/tools/setup-venv.sh

collection:  # the checkout seen as fastreboot.kexec by ansible, molecule and ansible-lint
	@mkdir -p tests/output/collections/ansible_collections/fastreboot
	@ln -sfn $(CURDIR) tests/output/collections/ansible_collections/fastreboot/kexec

images: setup  ## build (or reuse) the bookworm and trixie lab images
	$(LAB) build bookworm trixie

demo: setup collection  ## the main job on a lab VM (bookworm by default: DIST=trixie for the other)
	$(VENV)/bin/python benchmarks/reboot_benchmark.py --quick --dist $${DIST:-bookworm}

test: setup collection  ## full suite: lint, sanity, units (both ansible-cores), Molecule scenarios
	tests/tools/run-suite.sh

lint: setup collection  ## yamllint, ansible-lint (production profile), changelog and plugin docs lint
	$(VENV)/bin/yamllint -s .
	$(VENV)/bin/ansible-lint --profile production
	$(VENV)/bin/antsibull-changelog lint
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/antsibull-docs lint-collection-docs --plugin-docs .
	@# The built collection installs and its plugins resolve by FQCN.
	rm -rf tests/output/galaxy
	$(VENV)/bin/ansible-galaxy collection build --output-path tests/output/galaxy >/dev/null
	$(VENV)/bin/ansible-galaxy collection install --force -p tests/output/galaxy/collections tests/output/galaxy/fastreboot-kexec-*.tar.gz >/dev/null
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/tests/output/galaxy/collections $(VENV)/bin/ansible-doc -l fastreboot.kexec | grep -c '^fastreboot.kexec.kexec_' | grep -qx 3

sanity: setup  ## ansible-test sanity on the newest and the oldest ansible-core
	tests/tools/ansible-test.sh $(VENV) sanity --venv --python 3.12
	tests/tools/ansible-test.sh $(VENV_OLDEST) sanity --venv --python 3.11

units: setup  ## ansible-test units on the newest and the oldest ansible-core
	tests/tools/ansible-test.sh $(VENV) units --venv --python 3.12
	tests/tools/ansible-test.sh $(VENV_OLDEST) units --venv --python 3.11

molecule: setup collection images  ## every Molecule scenario (SCENARIOS="a b" for some)
	for s in $(SCENARIOS); do tests/tools/molecule.sh test -s $$s; done

molecule-one: setup collection images  ## one scenario: make molecule-one SCENARIO=name
	tests/tools/molecule.sh test -s $(SCENARIO)

benchmark: setup collection images  ## kexec_reboot vs ansible.builtin.reboot on one VM; writes docs/benchmark.md + PNG
	$(VENV)/bin/python benchmarks/reboot_benchmark.py $${BENCH_ARGS:-}

drill: setup collection images  ## fleet drill on three VMs: rolling kexec update, a fault that stops the rollout (about 70 min)
	$(VENV)/bin/python tests/drills/fleet_drill.py

lab-down:  ## stop every lab VM
	$(LAB) down --all

clean: lab-down  ## remove venvs and test output (the image cache stays: ~/.cache/fastreboot-kexec)
	rm -rf $(VENV) $(VENV_OLDEST) tests/output
