#!/usr/bin/env bash
# A vm-suite run for issue 9: gmemd on gmem_pfn with QEMU's edu device behind an emulated Intel IOMMU.
#   run-vfio.sh --kernel 6.1|6.12 --workdir DIR --kmod-src DIR --gmemd FILE --gmemctl FILE --demo FILE
#               [--env NAME=VALUE]... [--expect-fail NAME]...
# The VFIO modules come from the installed Debian kernel's tree (decompressed for busybox insmod).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

kernel= workdir= src= gmemd= gmemctl= demo=
pass=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift ;;
	--workdir) workdir=$2; shift ;;
	--kmod-src) src=$2; shift ;;
	--gmemd) gmemd=$2; shift ;;
	--gmemctl) gmemctl=$2; shift ;;
	--demo) demo=$2; shift ;;
	--env|--expect-fail) pass+=("$1" "$2"); shift ;;
	*) echo "run-vfio.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
kver=$(vm_kver "$kernel") || vm_skip "Debian's $kernel cloud kernel and headers are not installed (contrib/dev/install-deps vm)"
mods=$workdir/vfio-modules
rm -rf "$mods"
mkdir -p "$mods"
for m in irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci; do
	f=$(find "/lib/modules/$kver/kernel/virt" "/lib/modules/$kver/kernel/drivers/vfio" -name "$m.ko*" | head -n1)
	[ -n "$f" ] || continue
	case $f in
	*.xz) xz -dc "$f" >"$mods/$m.ko" ;;
	*) cp "$f" "$mods/$m.ko" ;;
	esac
	pass+=(--file "$mods/$m.ko=/lib/modules/vfio/$m.ko")
done

# The build tree's libgmem: ldd's path is packed as is; the loader needs to be told where.
lib=$(ldd "$gmemctl" | grep -o '/[^ ]*libgmem[^ ]*' | head -n1 || true)
[ -z "$lib" ] || pass+=(--env "LD_LIBRARY_PATH=$(dirname "$lib")")
export GMEM_VM_QEMU_ARGS="-M q35 -device intel-iommu,caching-mode=on,intremap=on -device edu"
export GMEM_VM_APPEND="intel_iommu=on"
exec "$here/run.sh" --kernel "$kernel" --workdir "$workdir" --kmod-src "$src" --no-pfn-test \
	--dyn-bin "$gmemd" --dyn-bin "$gmemctl" --dyn-bin "$demo" \
	--script "$here/guest/30-vfio.sh" "${pass[@]}"
