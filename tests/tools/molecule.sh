#!/usr/bin/env bash
# Runs molecule from the collection root with the project's venv; the lab VMs are stopped even if
# molecule is interrupted. Usage: molecule.sh test -s SCENARIO
# FASTREBOOT_LAB_KEEP=1 keeps the VMs running between steps, to iterate on one (molecule.sh
# converge -s modules, then side-effect -s modules, ..., then destroy -s modules).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH"
export NO_COLOR=1 MOLECULE_NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0
export ANSIBLE_COLLECTIONS_PATH="$repo/tests/output/collections"
export MOLECULE_PROJECT_DIRECTORY="$repo"
if [ "${FASTREBOOT_LAB_KEEP:-0}" != 1 ]; then
  trap 'python3 tests/lab/lab.py down --all >/dev/null 2>&1 || true' EXIT
fi
molecule "$@"
