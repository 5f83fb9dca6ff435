#!/usr/bin/env bash
# One vm-suite run: build gmem_pfn for a Debian kernel, pack an initramfs, boot it, judge it.
#   run.sh --kernel 6.1|6.12 --workdir DIR (--module FILE | --kmod-src DIR) [options]
#   --module FILE         a module built beforehand (build-module.sh, a meson custom_target shared by
#                         every test booting the same variant); FILE.log says why when it is missing
#   --kmod-src DIR        without --module: build the module here, in this test (as before)
#   --test-bin FILE       the static gmem-pfn-test (required unless --no-pfn-test)
#   --tests "A B"         run only these gmem-pfn-test cases
#   --switch VAR=y        build the module with a test-only switch (a negative control; with
#                         --module, the switch was given to build-module.sh instead)
#   --expect-fail NAME    the control's verdict: test NAME must fail (repeatable)
#   --no-pfn-test         load the module but skip gmem-pfn-test (for other suites' runs)
#   --smp N               vCPUs (default 1; 2 makes the race test race for real)
#   --no-sparse           build without sparse (the controls: vm-6.1 already runs it on the same sources)
#   --bin/--dyn-bin/--script/--file/--env   passed to mkinitramfs.sh (-b -d -s -f -e)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

kernel= workdir= src= module= testbin= tests= pfn=1
switches=() expect=() extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift ;;
	--workdir) workdir=$2; shift ;;
	--kmod-src) src=$2; shift ;;
	--module) module=$2; shift ;;
	--test-bin) testbin=$2; shift ;;
	--tests) tests=$2; shift ;;
	--switch) switches+=("$2"); shift ;;
	--expect-fail) expect+=("$2"); shift ;;
	--no-pfn-test) pfn=0 ;;
	--smp) export GMEM_VM_SMP=$2; shift ;;
	--no-sparse) export VM_SPARSE=0 ;;
	--bin) extra+=(-b "$2"); shift ;;
	--dyn-bin) extra+=(-d "$2"); shift ;;
	--script) extra+=(-s "$2"); shift ;;
	--file) extra+=(-f "$2"); shift ;;
	--env) extra+=(-e "$2"); shift ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$kernel" ] && [ -n "$workdir" ] && [ -n "$src$module" ] ||
	{ echo "run.sh: --kernel, --workdir, --module or --kmod-src" >&2; exit 2; }

[ -z "$module" ] || [ ${#switches[@]} -eq 0 ] ||
	{ echo "run.sh: --switch builds a module; with --module, give it to build-module.sh" >&2; exit 2; }
# make, gcc and sparse build the module, here or in build-module.sh: a machine without them skips.
for tool in qemu-system-x86_64 busybox cpio make gcc sparse; do
	command -v "$tool" >/dev/null || vm_skip "$tool is missing (contrib/dev/install-deps vm)"
done
kver=$(vm_kver "$kernel") || vm_skip "Debian's $kernel cloud kernel and headers are not installed (contrib/dev/install-deps vm)"

mkdir -p "$workdir"
if [ -n "$module" ]; then
	if [ ! -s "$module" ]; then
		cat "$module.log" >&2 2>/dev/null || true
		echo "vm: $module was not built (its build log is above)" >&2
		exit 1
	fi
	# Built for the kernel installed when it was built: a newer headers package needs a rebuild.
	built_for=$(modinfo -F vermagic "$module" | cut -d' ' -f1)
	[ "$built_for" = "$kver" ] ||
		{ echo "vm: $module is for $built_for, the installed kernel is $kver (rebuild it)" >&2; exit 1; }
	ko=$module
else
	vm_build_module "$kver" "$src" "$workdir/module" "${switches[@]}"
	ko=$workdir/module/gmem_pfn.ko
fi

args=(-o "$workdir/initrd.cpio" -f "$ko=/lib/modules/gmem_pfn.ko" -s "$here/guest/10-gmem-pfn-load.sh"
      -e "GMEM_VM_RANGES=0x20000000+64M" -e "GMEM_TEST_TIMEOUT_SCALE=${GMEM_TEST_TIMEOUT_SCALE:-1}")
if [ $pfn = 1 ]; then
	[ -n "$testbin" ] || { echo "run.sh: --test-bin is required" >&2; exit 2; }
	args+=(-b "$testbin" -s "$here/guest/20-gmem-pfn-test.sh" -e "GMEM_PFN_TESTS=$tests")
fi
[ ${#expect[@]} -gt 0 ] || args+=(-s "$here/guest/90-gmem-pfn-unload.sh")
"$here/mkinitramfs.sh" "${args[@]}" "${extra[@]}"
exec "$here/boot.sh" "$kver" "$workdir/initrd.cpio" "$workdir/console.log" "${expect[@]}"
