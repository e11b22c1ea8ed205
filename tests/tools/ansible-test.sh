#!/usr/bin/env bash
# ansible-test needs the collection at .../ansible_collections/fastreboot/kexec; this checkout can
# live anywhere. Copy the tracked (and untracked, not ignored) files to a temporary tree and run
# ansible-test there. Usage: ansible-test.sh VENV_DIR ARGS...   e.g. ansible-test.sh .venv sanity
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=$(cd "$repo" && cd "$1" && pwd)
shift
tree=$(mktemp -d "${TMPDIR:-/tmp}/fastreboot-ansible-test.XXXXXX")
trap 'rm -rf "$tree"' EXIT
dest="$tree/ansible_collections/fastreboot/kexec"
mkdir -p "$dest"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | rsync -a --ignore-missing-args --from0 --files-from=- ./ "$dest/")
# ansible-test uses git to list the collection's files: give the copy a repository of its own.
(cd "$dest" && git init -q && git add -A && git -c user.name=ci -c user.email=ci@localhost commit -q -m tree)
cd "$dest"
export PATH="$venv/bin:$PATH"
"$venv/bin/ansible-test" "$@"
