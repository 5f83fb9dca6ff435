#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-fuzzer.sh FUZZER CORPUS COVFILE SECONDS [DICT [LIBFUZZER-FLAGS...]]
#
# Fuzzes a libFuzzer target for SECONDS (FUZZ_SECONDS overrides) from a copy of its checked-in CORPUS
# (the tree is never written) and fails on:
#   - a crash, a sanitizer report (ASan, UBSan, LeakSanitizer), a timeout or an out-of-memory, i.e. a
#     non-zero exit of the fuzzer or any such report in its output;
#   - libFuzzer giving up on leak detection (the target keeps memory from one input to the next);
#   - fewer than FUZZ_MIN_EXECS (default 10000) executions;
#   - a final "cov:" below the floor in COVFILE (one line: an integer; raise it when coverage grows,
#     never lower it).
# Prints the executions, their rate and the final coverage. A crashing input is kept in
# FUZZ_ARTIFACTS (default: a fuzz-artifacts directory next to the fuzzer) and its path printed.
#
# With FUZZ_EXPECT_CRASH=MARKER it is the control of all that: it passes only when the fuzzer crashed
# and its output holds MARKER (the planted bug was found within SECONDS), and fails otherwise.
set -uo pipefail

if [ $# -lt 4 ]; then
	echo "usage: $0 FUZZER CORPUS COVFILE SECONDS [DICT [LIBFUZZER-FLAGS...]]" >&2
	exit 2
fi
fuzzer=$1 corpus=$2 covfile=$3 seconds=${FUZZ_SECONDS:-$4} dict=${5:-}
shift $(( $# < 5 ? $# : 5 ))
name=$(basename "$fuzzer")
min_execs=${FUZZ_MIN_EXECS:-10000}
artifacts=${FUZZ_ARTIFACTS:-$(dirname "$fuzzer")/fuzz-artifacts}

floor=
if ! read -r floor <"$covfile" || ! [[ $floor =~ ^[0-9]+$ ]]; then
	echo "$name: FAIL: $covfile must hold one integer, the coverage floor" >&2
	exit 1
fi

# On tmpfs when there is one: libFuzzer writes every new unit there, and fuzz-requests keeps gmemd's state
# dir there (FUZZ_STATE_PARENT), which nothing else removes when the fuzzer stops.
work=$(mktemp -d /dev/shm/"$name".XXXXXX 2>/dev/null || mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
export FUZZ_STATE_PARENT=$work
mkdir -p "$work/corpus" "$artifacts"
cp -R "$corpus"/. "$work/corpus"/

# Reports are fatal and leaks checked whatever the caller's environment says. A 32 MiB quarantine (still
# many inputs' worth of frees) that is never handed back to the kernel keeps ASan from faulting in fresh
# pages for every allocation: about twice the executions per second for fuzz-requests.
export ASAN_OPTIONS="quarantine_size_mb=32:allocator_release_to_os_interval_ms=-1${ASAN_OPTIONS:+:$ASAN_OPTIONS}:detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
args=(-max_total_time="$seconds" -print_final_stats=1 -detect_leaks=1 -timeout=10 -rss_limit_mb=2048
      -artifact_prefix="$artifacts/$name-")
[ -n "$dict" ] && args+=(-dict="$dict")
args+=("$@")

start=$(date +%s)
"$fuzzer" "${args[@]}" "$work/corpus" >"$work/log" 2>&1
rc=$?
wall=$(( $(date +%s) - start ))

if [ -n "${FUZZ_EXPECT_CRASH:-}" ]; then
	found=$(grep -E '^#[0-9]+' "$work/log" | tail -n1 | sed -n 's/^#\([0-9]*\).*/\1/p')
	if [ $rc -ne 0 ] && grep -q "$FUZZ_EXPECT_CRASH" "$work/log"; then
		echo "$name: found the planted crash ($FUZZ_EXPECT_CRASH) after about ${found:-?} executions in ${wall}s"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$work/log" | head -n 5
		exit 0
	fi
	cat "$work/log"
	echo "$name: FAIL: no crash with $FUZZ_EXPECT_CRASH within ${seconds}s (exit status $rc, ${found:-?} executions)"
	exit 1
fi

fail=()
[ $rc -ne 0 ] && fail+=("the fuzzer exited with status $rc")
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|SUMMARY: [A-Za-z]*Sanitizer|deadly signal|Test unit written' "$work/log"; then
	fail+=("a crash or sanitizer report")
fi
if grep -q 'libFuzzer disabled leak detection' "$work/log"; then
	fail+=("libFuzzer disabled leak detection: the target keeps memory from one input to the next")
fi

execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/log" | tail -n1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$work/log" | tail -n1)
newunits=$(sed -n 's/^stat::new_units_added: *\([0-9]*\).*/\1/p' "$work/log" | tail -n1)
status=$(grep -E '^#[0-9]+.* cov: [0-9]+' "$work/log" | tail -n1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
inited=$(grep -E '^#[0-9]+[[:space:]]+INITED.* cov: [0-9]+' "$work/log" | tail -n1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')

if [ -z "$execs" ]; then
	fail+=("no final stats (did it run at all?)")
elif [ "$execs" -lt "$min_execs" ]; then
	fail+=("only $execs executions, fewer than $min_execs")
fi
if [ -z "$cov" ]; then
	fail+=("no cov: figure in the output")
elif [ "$cov" -lt "$floor" ]; then
	fail+=("final cov $cov is below the floor $floor in $(basename "$covfile")")
fi

echo "$name: ${execs:-?} executions in ${wall}s (${rate:-?}/s), cov ${inited:-?} from the seeds -> ${cov:-?} final" \
	"(floor $floor), ft ${ft:-?}, ${newunits:-?} new units"
if [ ${#fail[@]} -gt 0 ]; then
	cat "$work/log"
	for f in "${fail[@]}"; do
		echo "$name: FAIL: $f"
	done
	ls "$artifacts"/"$name"-* 2>/dev/null | sed "s/^/$name: kept input: /"
	exit 1
fi
if [ -n "$cov" ] && [ "$cov" -gt $(( floor + floor / 10 )) ]; then
	echo "$name: coverage is more than 10% above the floor: consider raising $(basename "$covfile") to $(( cov * 95 / 100 ))"
fi
grep -E '^(stat::|Done )' "$work/log"
exit 0
