#!/usr/bin/env bash
# A vm-suite run for issue 9: gmemd on gmem_pfn with QEMU's edu device behind an emulated Intel IOMMU,
# driven by gmem-vfio-demo through VFIO type1. The checks are tests/vm/guest/30-vfio.sh.
#   run-vfio.sh --kernel 6.1|6.12 --workdir DIR (--module FILE | --kmod-src DIR) --gmemd FILE --gmemctl FILE --demo FILE
#               [--dyn-bin FILE]... [--env NAME=VALUE]... [--expect-fail NAME]... [--no-sparse]
# (--dyn-bin: another program for the guest, e.g. a control's gmemd build.) The VFIO modules come from
# the installed Debian kernel's tree, decompressed (busybox's insmod cannot read .ko.xz).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

src=() kernel= workdir= gmemd= gmemctl= demo=
pass=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift ;;
	--workdir) workdir=$2; shift ;;
	--kmod-src) src=(--kmod-src "$2"); shift ;;
	--module) src=(--module "$2"); shift ;;
	--gmemd) gmemd=$2; shift ;;
	--gmemctl) gmemctl=$2; shift ;;
	--demo) demo=$2; shift ;;
	--env|--expect-fail|--dyn-bin) pass+=("$1" "$2"); shift ;;
	--no-sparse) pass+=("$1") ;;
	*) echo "run-vfio.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$kernel" ] && [ -n "$workdir" ] && [ ${#src[@]} -gt 0 ] && [ -n "$gmemd" ] && [ -n "$gmemctl" ] && [ -n "$demo" ] ||
	{ echo "run-vfio.sh: --kernel, --workdir, --module or --kmod-src, --gmemd, --gmemctl, --demo" >&2; exit 2; }
command -v xz >/dev/null || vm_skip "xz is missing (contrib/dev/install-deps vm)"
kver=$(vm_kver "$kernel") || vm_skip "Debian's $kernel cloud kernel and headers are not installed (contrib/dev/install-deps vm)"
mods=$workdir/vfio-modules
rm -rf "$mods"
mkdir -p "$mods"
# vfio_virqfd is a module of its own on 6.1 only (built into vfio on 6.12).
for m in irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci; do
	f=$(find "/lib/modules/$kver/kernel/virt" "/lib/modules/$kver/kernel/drivers/vfio" -name "$m.ko*" | head -n1)
	if [ -z "$f" ]; then
		[ "$m" = vfio_virqfd ] && continue
		echo "run-vfio.sh: $m.ko is missing from $kver's module tree" >&2
		exit 1
	fi
	case $f in
	*.xz) xz -dc "$f" >"$mods/$m.ko" ;;
	*) cp "$f" "$mods/$m.ko" ;;
	esac
	pass+=(--file "$mods/$m.ko=/lib/modules/vfio/$m.ko")
done

# A q35 machine (intel-iommu needs it) with interrupt remapping (VFIO_SET_IOMMU refuses without it) and
# caching-mode on (the recipe verified in the shared notes, VM.md).
export GMEM_VM_QEMU_ARGS="-M q35 -device intel-iommu,caching-mode=on,intremap=on -device edu"
export GMEM_VM_APPEND="intel_iommu=on"
exec "$here/run.sh" --kernel "$kernel" --workdir "$workdir" "${src[@]}" --no-pfn-test \
	--dyn-bin "$gmemd" --dyn-bin "$gmemctl" --dyn-bin "$demo" \
	--script "$here/guest/30-vfio.sh" "${pass[@]}"
