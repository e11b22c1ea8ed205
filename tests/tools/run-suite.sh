#!/usr/bin/env bash
# The full suite behind `make test`: lint, sanity and units on the newest and the oldest
# ansible-core, then every Molecule scenario on lab VMs. The lab images build in the background
# while the static checks run. Prints one line per step and a closing count.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 1
out=tests/output/suite
mkdir -p "$out"
lab() { python3 tests/lab/lab.py "$@"; }
trap 'lab down --all >/dev/null 2>&1 || true' EXIT

scenarios=${SCENARIOS:-$(for f in extensions/molecule/*/molecule.yml; do basename "$(dirname "$f")"; done | tr '\n' ' ')}
passed=0 failed=0 failures=()
started=$(date +%s)

step() {  # step NAME TIMEOUT_SECONDS COMMAND...: run, time, count; output goes to the console and a log
  local name=$1 limit=$2 t0 rc
  shift 2
  t0=$(date +%s)
  echo "=== $name"
  timeout --kill-after=30 "$limit" "$@" 2>&1 | tee "$out/$name.log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); echo "=== $name: ok ($(( $(date +%s) - t0 ))s)"
  else
    failed=$((failed + 1)); failures+=("$name (exit $rc, log $out/$name.log)")
    echo "=== $name: FAILED with exit $rc after $(( $(date +%s) - t0 ))s; log: $out/$name.log"
  fi
}

echo "=== images: building (or reusing) the lab images in the background; log $out/images.log"
lab build bookworm trixie >"$out/images.log" 2>&1 &
images_pid=$!

step lint 900 make -s lint
step sanity 1800 make -s sanity
step units 900 make -s units

if wait "$images_pid"; then
  passed=$((passed + 1)); echo "=== images: ok"; cat "$out/images.log"
else
  failed=$((failed + 1)); failures+=("images (log $out/images.log)"); tail -n 40 "$out/images.log"
fi

for s in $scenarios; do
  step "molecule-$s" 1800 tests/tools/molecule.sh test -s "$s"
done

echo
echo "=== suite finished in $(( $(date +%s) - started ))s"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
