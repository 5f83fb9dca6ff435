#!/usr/bin/env bash
# Builds gmem_pfn variants for the vm suite, as a meson custom_target: each distinct (kernel,
# switches) module is built once and shared by every test that boots it (tests/vm/meson.build).
#   build-module.sh KERNEL KMOD_SRC WORKDIR DEPFILE [--sparse] OUT.ko[:VAR=VALUE...]...
# All the OUT.ko of one call come from one make run (lib.sh vm_build_variants), each with its own
# Kbuild switches. W=1 KCFLAGS=-Werror always; --sparse adds C=2. Any compiler or sparse warning is a
# failed build.
#
# A failed build still exits 0, leaving no OUT.ko and the log in OUT.ko.log: `meson test` builds the
# tests' dependencies before running any test, so a non-zero exit here would stop every suite, not
# just the vm tests that need these modules. run.sh fails each of those tests with the log instead,
# and ninja retries the build next time (the outputs are missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

kernel=$1 src=$2 work=$3 depfile=$4
shift 4
VM_SPARSE=0
if [ "${1:-}" = --sparse ]; then
	VM_SPARSE=1
	shift
fi
export VM_SPARSE
# Kbuild runs in the headers' directory: M= must be absolute.
work=$(realpath -m "$work")

outs=() variants=()
for v in "$@"; do
	out=${v%%:*}
	outs+=("$out")
	name=$(basename "$out" .ko)
	case $v in *:*) variants+=("$name:${v#*:}") ;; *) variants+=("$name") ;; esac
	rm -f "$out" "$out.log"
done

# The build's inputs, for ninja: the module's sources, these scripts, and the headers package's
# file list (it changes when the kernel ABI moves on, e.g. 6.1.0-56 to 6.1.0-57).
case $kernel in
6.1) meta=linux-headers-cloud-amd64 ;;
6.12) meta=linux-headers-6.12-cloud-amd64 ;;
*) meta= ;;
esac
{
	printf '%s' "${outs[*]}:"
	for f in "$src"/Kbuild "$src"/*.c "$src"/*.h "$src"/uapi/*.h "$here/lib.sh" "$0" \
		"/var/lib/dpkg/info/$meta.list"; do
		[ -e "$f" ] && printf ' \\\n %s' "$(readlink -f "$f" | sed 's/ /\\ /g')"
	done
	printf '\n'
} >"$depfile"

failed() { # why, on stderr and in each output's log
	local out
	for out in "${outs[@]}"; do
		printf '%s\n' "$1" >"$out.log"
	done
	printf '%s\n' "$1" >&2
	echo "vm: no module: the vm tests that boot ${outs[*]##*/} will fail with this log" >&2
	exit 0
}
kver=$(vm_kver "$kernel") ||
	failed "vm: Debian's $kernel cloud kernel headers are not installed (contrib/dev/install-deps vm)"
log=$(vm_build_variants "$kver" "$src" "$work" "${variants[@]}" 2>&1) || failed "$log"
for out in "${outs[@]}"; do
	cp "$work/$(basename "$out" .ko)/gmem_pfn.ko" "$out.tmp"
	mv "$out.tmp" "$out"
done
echo "$log"
