#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-spin.sh: one spin run of tests/model/conversion.pml, as a test.
#
#   run-spin.sh --workdir DIR --model conversion.pml --gen gen-model.py --header twopc.h --source twopc.c
#               [--gen-arg ARG]... [-D NAME[=VALUE]]... [--cc-flag FLAG]... [--pan-arg ARG]...
#               [--expect pass | --expect PROPERTY | --expect cycle] [--rows-unreached-ok TP_X:TE_Y,...|any]
#
# Generates the transition table from the C source into DIR (gen-model.py: it refuses a table the model
# does not implement), runs spin -a on the model there, compiles pan (gcc -O2, then the --cc-flags) and
# runs it, and prints pan's report and a summary line: states stored, memory, seconds.
#   --expect pass       (the default) pan must say "errors: 0", and every row of the table must be taken
#                       but those named by --rows-unreached-ok (STATE:EVENT, or "any" for ltl runs,
#                       whose claim prunes the search);
#   --expect PROPERTY   a seeded bug: pan must report an assertion of P_PROPERTY (e.g. atomicity)
#                       violated; the other properties' assertions are turned off (-DOFF_...);
#   --expect cycle      a seeded bug: pan must report an acceptance cycle (the ltl claim violated);
#                       all assertions are turned off.
# The counterexample of a failure is replayed (spin -t) and its MSC lines printed. Anything that keeps
# the check from running (spin or gcc missing, a generator error, spin's own errors, a truncated
# search) fails the test: it never skips.
set -u

properties="atomicity stranded private durability indoubt progress order"

workdir= model= gen= header= source= expect=pass rows_ok=
gen_args= spin_defs= cc_flags= pan_args=
while [ $# -gt 0 ]; do
	case "$1" in
	--workdir) workdir=$2; shift 2 ;;
	--model) model=$2; shift 2 ;;
	--gen) gen=$2; shift 2 ;;
	--header) header=$2; shift 2 ;;
	--source) source=$2; shift 2 ;;
	--gen-arg) gen_args="$gen_args $2"; shift 2 ;;
	-D) spin_defs="$spin_defs -D$2"; shift 2 ;;
	--cc-flag) cc_flags="$cc_flags $2"; shift 2 ;;
	--pan-arg) pan_args="$pan_args $2"; shift 2 ;;
	--expect) expect=$2; shift 2 ;;
	--rows-unreached-ok) rows_ok=$2; shift 2 ;;
	*) echo "run-spin.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
for v in workdir model gen header source; do
	eval "[ -n \"\$$v\" ]" || { echo "run-spin.sh: --$v is required" >&2; exit 2; }
done

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Not a skip (77): CI installs spin, and a model check that silently does not run checks nothing.
command -v spin >/dev/null 2>&1 ||
	fail "spin is not installed: the model tests need it (Debian/Ubuntu: apt-get install spin)"
cc=${CC:-}
[ -n "$cc" ] && command -v "$cc" >/dev/null 2>&1 || cc=gcc
command -v "$cc" >/dev/null 2>&1 || fail "no C compiler (gcc) to build spin's verifier"
python=${PYTHON:-python3}

rm -rf "$workdir"
mkdir -p "$workdir" || fail "cannot create $workdir"
cd "$workdir" || exit 1

# shellcheck disable=SC2086 # the argument lists are meant to split
"$python" "$gen" --header "$header" --source "$source" --model "$model" -o twopc-table.pml $gen_args ||
	fail "gen-model.py could not generate the model's table from the C source (see above)"

# The model next to its table (and pan's trail next to both, for spin -t).
cp "$model" conversion.pml || fail "cannot copy $model"

case "$expect" in
pass) ;;
cycle)
	# Only the ltl claim: a run that cannot settle may well trip the progress assertion first.
	for p in $properties; do
		spin_defs="$spin_defs -DOFF_$p"
	done
	;;
*)
	# A seeded bug's run checks only the property the bug is meant to break (the others' assertions
	# are turned off), so the search runs until it finds that one.
	for p in $properties; do
		[ "$p" = "$expect" ] || spin_defs="$spin_defs -DOFF_$p"
	done
	;;
esac

# shellcheck disable=SC2086
spin -a $spin_defs conversion.pml >spin.out 2>&1 || { cat spin.out; fail "spin -a failed"; }
grep -q . spin.out && { cat spin.out; grep -qi 'error' spin.out && fail "spin -a reported errors"; }

# shellcheck disable=SC2086
"$cc" -O2 -w -o pan pan.c $cc_flags 2>cc.out || { cat cc.out; fail "pan.c did not compile"; }

start=$(date +%s.%N)
# shellcheck disable=SC2086
./pan $pan_args >pan.out 2>&1
rc=$?
end=$(date +%s.%N)

states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.out | head -n1)
memory=$(sed -n 's/^ *\([0-9.]*\)[[:space:]]*total actual memory usage.*/\1/p' pan.out | head -n1)
errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out | head -n1)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' pan.out | head -n1)

# pan's report, without its list of unreached statements (it stays in pan.out)
sed -n '/^(Spin Version/,/^pan: elapsed/p' pan.out | grep -vE '^[[:space:]]+(conversion|twopc-table)\.pml:[0-9]+, state|^[[:space:]]+\([0-9]+ of [0-9]+ states\)|^unreached in '
grep -E '^pan:[0-9]+:|^pan: (out of memory|resizing|reached -DMEMLIM)|max search depth too small|error:' pan.out | head -n 5
echo "summary: states stored ${states:-?}, memory ${memory:-?} MB, ${secs} s, depth ${depth:-?}, errors ${errors:-?}, spin -D:${spin_defs:- none}, gen:${gen_args:- none}"

[ -n "$errors" ] || { cat pan.out; fail "pan did not report its error count (exit $rc)"; }
grep -q 'max search depth too small' pan.out && fail "the search was truncated: raise -m"
grep -qE 'out of memory|reached -DMEMLIM' pan.out && fail "pan ran out of memory (-DMEMLIM): the search is incomplete"
[ "$errors" = 0 ] && grep -q 'Search not completed' pan.out && fail "pan did not complete its search"

# Rows of the table the search never took: pan lists the unreached lines of twopc-table.pml, and
# each row is one line, "... /* row N: TP_X:TE_Y twopc.c:L */".
unreached=$(sed -n 's/.*twopc-table\.pml:\([0-9]*\),.*/\1/p' pan.out | sort -un | while read -r line; do
	sed -n "${line}s/.*\/\* row [0-9]*: \([A-Za-z0-9_]*:[A-Za-z0-9_]*\) .*/\1/p" twopc-table.pml
done | sort -u | tr '\n' ' ')

replay() {
	# The counterexample, as the model's MSC lines and the last steps (spin -t replays pan's trail).
	trail=$(ls ./*.trail 2>/dev/null | head -n1)
	[ -n "$trail" ] || return 0
	echo "--- counterexample (spin -t, MSC lines) ---"
	# shellcheck disable=SC2086
	spin -t $spin_defs conversion.pml 2>&1 | grep -E 'MSC:|assertion violated|cycle' | head -n 60
}

case "$expect" in
pass)
	if [ "$errors" != 0 ]; then
		replay
		fail "pan found $errors error(s): a property of the conversion protocol does not hold"
	fi
	echo "rows of twopc_table[] never taken: ${unreached:-none}"
	if [ "$rows_ok" != any ]; then
		for r in $unreached; do
			case ",$rows_ok," in
			*",$r,"*) ;;
			*) fail "the row ($r) of twopc_table[] is never taken by this run: the model cannot reach it" \
				"(if that is right, name it in --rows-unreached-ok)" ;;
			esac
		done
	fi
	echo "PASS"
	;;
cycle)
	[ "$errors" != 0 ] || fail "the seeded bug went unnoticed: pan found no error"
	grep -q 'acceptance cycle' pan.out || { replay; fail "pan found an error, but not an acceptance cycle"; }
	replay
	echo "PASS: the seeded bug breaks progress (acceptance cycle: not eventually settled)"
	;;
*)
	case " $properties " in *" $expect "*) ;; *) fail "--expect $expect: not a property ($properties)" ;; esac
	[ "$errors" != 0 ] || fail "the seeded bug went unnoticed: pan found no error, property $expect holds"
	grep -q "assertion violated.*P_$expect)" pan.out ||
		{ replay; fail "pan found an error, but not a violation of P_$expect"; }
	replay
	echo "PASS: the seeded bug breaks P_$expect"
	;;
esac
exit 0
