#!/usr/bin/env bash
# Runs molecule from the collection root with the project's venv; the lab VMs are stopped even if
# molecule is interrupted. Usage: molecule.sh test -s SCENARIO
# FASTREBOOT_LAB_KEEP=1 keeps the VMs running between steps, to iterate on one (molecule.sh
# converge -s modules, then side-effect -s modules, ..., then destroy -s modules).
# On exit it stops its own scenario's VMs only (named SCENARIO-HOST): scenarios may run side by side.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH"
export NO_COLOR=1 MOLECULE_NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0
export ANSIBLE_COLLECTIONS_PATH="$repo/tests/output/collections"
export MOLECULE_PROJECT_DIRECTORY="$repo"
# After each playbook, its slowest tasks (tests/tools/callback_plugins/task_times.py): where the minutes go.
export ANSIBLE_CALLBACK_PLUGINS="$repo/tests/tools/callback_plugins" ANSIBLE_CALLBACKS_ENABLED=task_times
scenario=
previous=
for word in "$@"; do
  { [ "$previous" = -s ] || [ "$previous" = --scenario-name ]; } && scenario=$word
  previous=$word
done
if [ "${FASTREBOOT_LAB_KEEP:-0}" != 1 ] && [ -n "$scenario" ]; then
  trap 'python3 tests/lab/lab.py down --prefix "$scenario-" >/dev/null 2>&1 || true' EXIT
fi
molecule "$@"
