#!/usr/bin/env bash
# The full suite behind `make test` and `make test-all`: lint, sanity and units on the newest and
# the oldest ansible-core, and the Molecule scenarios on lab VMs. Prints one line per step, and at
# the end a table of every step's (so every scenario's) time and a count; each step's log is in
# tests/output/suite/.
#   SUITE=ci (make test, the default)  the CI scenarios: BIOS + GRUB on both releases
#   SUITE=all (make test-all)          also lab_smoke (the lab alone: boot, ping, a cold reboot) and
#                                      Secure Boot on trixie; SUITE is exported to the scenarios, so that
#                                      they run what is too slow for CI with "all" (a kernel reinstall)
#   SCENARIOS="a b"                    exactly these scenarios. A word NAME:DIST runs a scenario that
#                                      takes its release from the environment (uefi_secureboot) on DIST;
#                                      a word A+B runs A and B side by side (one VM each, one vCPU each).
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 1
out=tests/output/suite
mkdir -p "$out"
lab() { python3 tests/lab/lab.py "$@"; }
trap 'lab down --all >/dev/null 2>&1 || true' EXIT

# The suite's scenarios, grouped by host flavour: BIOS + GRUB (modules, kexec_reboot: both releases),
# with SUITE=all also UEFI + systemd-boot (uefi_sdboot: trixie) beside UEFI + Secure Boot
# (uefi_secureboot: bookworm), then Secure Boot on trixie. Not in CI yet: with the pair, the suite
# took 4111 s here on 2026-12-03 (the pair 1082 s side by side), over make test's 60 minutes. The lab itself is proven by
# them (boots, logins, cold reboots); lab_smoke, its own scenario, runs with SUITE=all.
export SUITE=${SUITE:-ci}
case $SUITE in
  ci) default_scenarios="modules kexec_reboot" ;;
  all) default_scenarios="lab_smoke modules kexec_reboot uefi_sdboot+uefi_secureboot:bookworm uefi_secureboot:trixie" ;;
  *) echo "run-suite: SUITE must be ci or all, not '$SUITE'" >&2; exit 2 ;;
esac
scenarios=${SCENARIOS:-$default_scenarios}

images_for() {  # images_for WORD: the lab images a scenario word boots
  local part
  for part in ${1//+/ }; do
    case ${part%%:*} in
      uefi_sdboot) echo uefi-sdboot-trixie ;;
      uefi_secureboot) echo "uefi-secureboot-$([[ $part == *:* ]] && echo "${part#*:}" || echo bookworm)" ;;
      *) echo bookworm trixie ;;
    esac
  done
}
passed=0 failed=0 failures=()
started=$(date +%s)
timings=$out/timings.tsv  # one line per finished step: name, result, seconds (the lanes are subshells)
: > "$timings"

step() {  # step NAME TIMEOUT_SECONDS COMMAND...: run, time, count; output goes to the console and a log
  local name=$1 limit=$2 t0 rc took
  shift 2
  t0=$(date +%s)
  echo "=== $name"
  timeout --kill-after=30 "$limit" "$@" 2>&1 | tee "$out/$name.log"
  rc=${PIPESTATUS[0]}
  took=$(( $(date +%s) - t0 ))
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); echo "=== $name: ok (${took}s)"
    printf '%s\tok\t%s\n' "$name" "$took" >> "$timings"
  else
    failed=$((failed + 1)); failures+=("$name (exit $rc, log $out/$name.log)")
    echo "=== $name: FAILED with exit $rc after ${took}s; log: $out/$name.log"
    printf '%s\tFAILED\t%s\n' "$name" "$took" >> "$timings"
  fi
}

# Two lanes share the two cores: the static checks, and the lab images (followed by the smoke
# scenario when asked for). The VM scenarios (two VMs each) run after both lanes.
lane_out=$out/lanes
mkdir -p "$lane_out"
(
  step lint 900 make -s lint
  step docs 900 make -s docs
  step sanity 1800 make -s sanity
  step units 900 make -s units
  echo "$passed $failed" > "$lane_out/static.count"; printf '%s\n' "${failures[@]}" > "$lane_out/static.failures"
) &
static_pid=$!
(
  images=$(for word in $scenarios; do images_for "$word"; done | tr ' ' '\n' | awk '!seen[$0]++' | tr '\n' ' ')
  # shellcheck disable=SC2086  # one word per image
  step images 1800 python3 tests/lab/lab.py build $images
  if [[ " $scenarios " == *" lab_smoke "* ]]; then
    step molecule-lab_smoke 1800 tests/tools/molecule.sh test -s lab_smoke
  fi
  echo "$passed $failed" > "$lane_out/lab.count"; printf '%s\n' "${failures[@]}" > "$lane_out/lab.failures"
) > "$out/lab-lane.log" 2>&1 &
lab_pid=$!
wait "$static_pid" "$lab_pid"
cat "$out/lab-lane.log"
merge_lane() {  # merge_lane NAME: add a finished lane's counts and failures to the suite's
  local p f line
  read -r p f < "$lane_out/$1.count" || { p=0; f=1; }
  passed=$((passed + p)); failed=$((failed + f))
  while IFS= read -r line; do [ -n "$line" ] && failures+=("$line"); done < "$lane_out/$1.failures"
}
merge_lane static
merge_lane lab

scenario_step() {  # scenario_step WORD: one scenario, NAME or NAME:DIST
  local name=${1%%:*}
  if [[ $1 == *:* ]]; then
    LAB_SECUREBOOT_DIST=${1#*:} step "molecule-${1/:/-}" 4500 tests/tools/molecule.sh test -s "$name"
  else
    step "molecule-$name" 4500 tests/tools/molecule.sh test -s "$name"
  fi
}
for word in $scenarios; do
  [ "$word" = lab_smoke ] && continue
  if [[ $word != *+* ]]; then
    scenario_step "$word"
    continue
  fi
  # Side by side: one VM each with one vCPU, so the two share the two cores; each lane keeps its log.
  pids=()
  for part in ${word//+/ }; do
    (
      passed=0 failed=0 failures=()
      LAB_SMP=1 scenario_step "$part"
      echo "$passed $failed" > "$lane_out/$part.count"; printf '%s\n' "${failures[@]}" > "$lane_out/$part.failures"
    ) > "$out/lane-$part.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  for part in ${word//+/ }; do
    cat "$out/lane-$part.log"
    merge_lane "$part"
  done
done

# A digest of each failed step, printed last so that a log tail shows the cause: the failing task
# and its message (failures that the play ignores are left out), pytest's assertion lines.
digest() {  # digest LOG
  awk '
    function flush() {
      if (pending != "" && !ignored) { print "  " task; print "    " substr(pending, 1, 700) }
      pending = ""; ignored = 0; inblock = 0
    }
    /^TASK \[/ { flush(); task = $0; next }
    inblock { line = $0; gsub(/^ +/, "", line); pending = pending " " line; if ($0 ~ /^\}/) inblock = 0; next }
    /^\.\.\.ignoring/ { ignored = 1; flush(); next }
    /^(fatal|failed): \[/ { flush(); pending = $0; inblock = ($0 ~ /=> \{$/); next }
    pending != "" && !inblock { flush() }
    /^E   / || /^FAILED [^-]/ { print "    " substr($0, 1, 300) }
    END { flush() }
  ' "$1" | tail -n 40
}
for f in "${failures[@]}"; do
  log=${f##*log }; log=${log%)}
  [ -f "$log" ] || continue
  echo
  echo "=== digest of ${f%% *}"
  digest "$log"
done

echo
echo "=== suite finished in $(( $(date +%s) - started ))s (SUITE=$SUITE; lint, docs, sanity and units ran beside the image build and, with SUITE=all, lab_smoke)"
printf '%-28s %-7s %8s\n' step result seconds
while IFS=$'\t' read -r name result took; do
  printf '%-28s %-7s %8s\n' "$name" "$result" "$took"
done < "$timings"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
