#!/usr/bin/env bash
# The vm suite's KVM run: a real KVM guest on gmem memory inside the test VM (nested SVM under qemu's
# software emulation: -cpu max; kvm-intel cannot work there). Packs gmemd (kmod backend), gmemctl, the
# example VMM gmem-kvm-demo, gmem-device-demo, gmem-kvm-peer and the kernel's own kvm modules, then boots
# through run.sh. The checks themselves are tests/vm/guest/50-kvm.sh.
#   run-kvm.sh --kernel 6.1|6.12 --workdir DIR (--module FILE | --kmod-src DIR) --libgmem FILE --dyn-bin PROGRAM... [run.sh options]
# (the programs: gmemd, gmemctl, gmem-kvm-demo, gmem-device-demo, gmem-kvm-peer)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

kernel= workdir= libgmem= pass=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; pass+=("$1" "$2"); shift ;;
	--workdir) workdir=$2; pass+=("$1" "$2"); shift ;;
	--libgmem) libgmem=$2; shift ;;
	*) pass+=("$1") ;;
	esac
	shift
done
[ -n "$kernel" ] && [ -n "$workdir" ] && [ -n "$libgmem" ] || { echo "run-kvm.sh: --kernel, --workdir, --libgmem" >&2; exit 2; }
command -v xz >/dev/null || vm_skip "xz is missing (contrib/dev/install-deps vm)"
kver=$(vm_kver "$kernel") || vm_skip "Debian's $kernel cloud kernel and headers are not installed (contrib/dev/install-deps vm)"

# The kernel's own modules: 6.12 ships them xz-compressed, which busybox's insmod cannot read.
mods=()
mkdir -p "$workdir/kvm-modules"
for m in virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd; do
	src=/lib/modules/$kver/kernel/$m.ko
	out=$workdir/kvm-modules/${m##*/}.ko
	if [ -f "$src" ]; then
		cp "$src" "$out"
	elif [ -f "$src.xz" ]; then
		xz -dc "$src.xz" >"$out"
	else
		echo "run-kvm.sh: $src(.xz) is missing from $kver" >&2
		exit 1
	fi
	mods+=(--file "$out=/lib/modules/kvm/${m##*/}.ko")
done

# libgmem where the guest's loader looks without a cache (the build's rpath does not hold in the guest).
lib=$(readlink -f "$libgmem")

export GMEM_VM_QEMU_ARGS="-cpu max"
exec "$here/run.sh" "${pass[@]}" --no-pfn-test "${mods[@]}" \
	--file "$lib=/lib/x86_64-linux-gnu/libgmem.so.0" \
	--file "$here/kvm/pat-check.sh=/bin/pat-check" \
	--script "$here/guest/50-kvm.sh"
