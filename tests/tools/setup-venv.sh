#!/usr/bin/env bash
# Creates the pinned virtual environments (idempotent; rebuilt when a requirements file changes):
#   .venv         newest ansible-core (Python 3.12+): lint, molecule, units, sanity, benchmark
#   .venv-oldest  oldest supported ansible-core (Python 3.11): sanity and units
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

find_python() {  # find_python MAJOR.MINOR...: the first interpreter of one of these versions
  local v candidate
  for v in "$@"; do
    for candidate in "python$v" "$HOME/.pyenv/versions/$v"*/bin/python3 "/usr/bin/python$v" "/usr/local/bin/python$v"; do
      # pyenv shims exist for versions that are not activated: check that it really runs.
      if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv' >/dev/null 2>&1; then
        command -v "$candidate"
        return 0
      fi
    done
  done
  return 1
}

make_venv() {  # make_venv DIR REQUIREMENTS PYTHON
  local dir=$1 req=$2 python=$3 stamp
  stamp=$(sha256sum "$req" | cut -c1-16)
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ]; then
    return 0
  fi
  echo "setup-venv: creating $dir with $($python --version) from $req"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req" 2>&1 | grep -v "^WARNING: Location" || true
  "$dir/bin/python" -c "import ansible" || { echo "setup-venv: install into $dir failed" >&2; exit 1; }
  echo "$stamp" > "$dir/.stamp"
}

newest=$(find_python 3.12 3.13) || { echo "setup-venv: Python 3.12 or 3.13 is needed for ansible-core 2.21" >&2; exit 1; }
oldest=$(find_python 3.11 3.10) || { echo "setup-venv: Python 3.11 or 3.10 is needed for ansible-core 2.16" >&2; exit 1; }
make_venv .venv tests/requirements/main.txt "$newest"
make_venv .venv-oldest tests/requirements/oldest.txt "$oldest"

# ansible-test bootstraps pip in its sanity virtual environments with a script it downloads from a
# host this machine cannot reach; it uses a cached copy when there is one. Provide that copy: it
# installs the Python's own bundled pip (ensurepip), then lets pip install the pinned version.
for venv in .venv .venv-oldest; do
  grep -ho "pip='[0-9.]*'" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py |
    sed "s/pip='\([0-9.]*\)'/\1/" | while read -r version; do
      cache="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
      cmp -s tests/tools/get_pip_offline.py "$cache" && continue
      mkdir -p "$(dirname "$cache")"
      cp tests/tools/get_pip_offline.py "$cache"
    done
done
