# fastreboot.kexec: the one front door. `make help` lists the targets.
# The two commands of the README:  make demo  (main job on a lab VM)  and  make test  (full suite).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
VENV_OLDEST := .venv-oldest
LAB := python3 tests/lab/lab.py
SCENARIOS ?= lab_smoke modules kexec_reboot uefi_sdboot uefi_secureboot
SCENARIO ?= modules
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/tests/output/collections
export ANSIBLE_FORCE_COLOR := false
export PY_COLORS := 0

.PHONY: help setup venv images demo test test-all lint docs sanity units molecule molecule-one benchmark drill clean lab-down collection

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup:  ## Debian packages (as root) and the pinned virtual environments
	tests/tools/setup-host.sh
	tests/tools/setup-venv.sh

collection:  # the checkout seen as fastreboot.kexec by ansible, molecule and ansible-lint
	@mkdir -p tests/output/collections/ansible_collections/fastreboot
	@ln -sfn $(CURDIR) tests/output/collections/ansible_collections/fastreboot/kexec

images: setup  ## build (or reuse) the lab images: bookworm and trixie (BIOS), and the UEFI flavours
	$(LAB) build bookworm trixie uefi-sdboot-trixie uefi-secureboot-bookworm uefi-secureboot-trixie

demo: setup collection  ## the main job on a lab VM (bookworm by default: DIST=trixie for the other)
	$(VENV)/bin/python -m benchmarks.reboot_benchmark --quick --dist $${DIST:-bookworm}

test: setup collection  ## full suite: lint, sanity, units (both ansible-cores), Molecule scenarios
	tests/tools/run-suite.sh

test-all: setup collection  ## the full matrix: `make test` plus what only SUITE=all runs (e.g. a kernel removed and installed again)
	SUITE=all tests/tools/run-suite.sh

lint: setup collection  ## yamllint, ansible-lint (production profile), changelog and plugin docs lint, tarball contents
	$(VENV)/bin/yamllint -s .
	$(VENV)/bin/ansible-lint --profile production
	$(VENV)/bin/antsibull-changelog lint
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/antsibull-docs lint-collection-docs --plugin-docs .
	@# The built collection installs and its plugins resolve by FQCN.
	rm -rf tests/output/galaxy
	$(VENV)/bin/ansible-galaxy collection build --output-path tests/output/galaxy >/dev/null
	$(VENV)/bin/ansible-galaxy collection install --force -p tests/output/galaxy/collections tests/output/galaxy/fastreboot-kexec-*.tar.gz >/dev/null
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/tests/output/galaxy/collections $(VENV)/bin/ansible-doc -l fastreboot.kexec | grep -c '^fastreboot.kexec.kexec_' | grep -qx 3
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/tests/output/galaxy/collections $(VENV)/bin/ansible-doc -t role -l fastreboot.kexec | grep -Ec '^fastreboot\.kexec\.kexec[: ]' | grep -qx 1
	@# The tarball holds the licence and no development-only files (build_ignore in galaxy.yml).
	$(VENV)/bin/python tests/tools/check-tarball.py tests/output/galaxy/fastreboot-kexec-*.tar.gz

docs: setup collection  ## the collection docsite (antsibull-docs, offline): tests/output/docsite/build/html/
	rm -rf tests/output/docsite && mkdir -m 0755 -p tests/output/docsite
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/antsibull-docs sphinx-init --use-current --dest-dir tests/output/docsite fastreboot.kexec >/dev/null
	@# The generated requirements.txt is met by the pins in tests/requirements/main.txt (installed by setup).
	$(VENV)/bin/python -c 'import sys, importlib.metadata as m; from packaging.requirements import Requirement; have = {d.name.lower().replace("_", "-"): d.version for d in m.distributions()}; reqs = [Requirement(l) for l in (l.split("#")[0].strip() for l in open(sys.argv[1])) if l]; key = lambda r: r.name.lower().replace("_", "-"); bad = [str(r) for r in reqs if key(r) not in have or not r.specifier.contains(have[key(r)], prereleases=True)]; sys.exit("not in .venv (pin them in tests/requirements/main.txt): " + ", ".join(bad) if bad else 0)' tests/output/docsite/requirements.txt
	@# build.sh without its -W: this machine cannot reach the intersphinx inventories.
	cd tests/output/docsite && chmod og-w rst && PATH=$(CURDIR)/$(VENV)/bin:$$PATH antsibull-docs --config-file antsibull-docs.cfg collection --cleanup everything --use-current --dest-dir rst fastreboot.kexec >/dev/null
	cd tests/output/docsite && PATH=$(CURDIR)/$(VENV)/bin:$$PATH sphinx-build -M html rst build -c . -q -w warnings.log 2>/dev/null
	@# No warning other than the unreachable intersphinx inventories and the labels of the Ansible docsite that only
	@# they resolve (its pages and other collections' plugins; a label of this collection must resolve).
	! grep -vP "failed to reach any of the inventories|^intersphinx inventory |undefined label: '(?!ansible_collections\.fastreboot\.kexec\.)(ansible_collections\.|ansible_configuration_settings'|common_return_values'|action_plugins')" tests/output/docsite/warnings.log
	@# The guides are in the site, and the collection's index links them.
	grep -q 'How a kexec reboot works' tests/output/docsite/build/html/collections/fastreboot/kexec/docsite/user_guide.html
	grep -q 'docsite/user_guide.html' tests/output/docsite/build/html/collections/fastreboot/kexec/index.html
	@echo "docsite: tests/output/docsite/build/html/collections/fastreboot/kexec/index.html"

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
	$(VENV)/bin/python -m benchmarks.reboot_benchmark $${BENCH_ARGS:-}

drill: setup collection images  ## fleet drill on three VMs: rolling kexec update, a fault that stops the rollout (about 70 min)
	$(VENV)/bin/python -m tests.drills.fleet_drill

lab-down:  ## stop every lab VM
	$(LAB) down --all

clean: lab-down  ## remove venvs and test output (the image cache stays: ~/.cache/fastreboot-kexec)
	rm -rf $(VENV) $(VENV_OLDEST) tests/output
