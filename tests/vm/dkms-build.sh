#!/usr/bin/env bash
# `dkms add` + `dkms build` of kmod/ against each Debian cloud kernel's headers the vm suite installs,
# in a private dkms tree (--dkmstree/--sourcetree), so nothing system-wide is touched.
#   dkms-build.sh KMOD_SRC WORKDIR PROJECT_VERSION
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
src=$1 work=$2 version=$3

command -v dkms >/dev/null || vm_skip "dkms is missing (contrib/dev/install-deps vm)"
conf_version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$src/dkms.conf")
if [ "$conf_version" != "$version" ]; then
	echo "dkms: kmod/dkms.conf says $conf_version, the project is $version" >&2
	exit 1
fi
if ! grep -q "MODULE_VERSION(\"$version\")" "$src/main.c"; then
	echo "dkms: MODULE_VERSION in kmod/main.c is not $version" >&2
	exit 1
fi

rm -rf "$work"
mkdir -p "$work/tree" "$work/source/gmem-pfn-$version"
cp -r "$src"/dkms.conf "$src"/Kbuild "$src"/Makefile "$src"/*.c "$src"/*.h "$src"/uapi \
	"$work/source/gmem-pfn-$version/"
dk=(--dkmstree "$work/tree" --sourcetree "$work/source")
# No signing: dkms would otherwise create a machine owner key under /var/lib/dkms. It reads
# sign_file from the environment when no framework.conf sets it; a missing one means "don't sign".
export sign_file=/nonexistent/gmem-vm-no-signing
dkms add "${dk[@]}" -m gmem-pfn -v "$version"
built=0
for kernel in 6.1 6.12; do
	kver=$(vm_kver "$kernel") || vm_skip "Debian's $kernel cloud headers are not installed"
	start=$(date +%s.%N)
	if ! dkms build "${dk[@]}" -m gmem-pfn -v "$version" -k "$kver" \
		--kernelsourcedir "/usr/src/linux-headers-$kver"; then
		cat "$work/tree/gmem-pfn/$version/build/make.log" >&2 || true
		exit 1
	fi
	ko=$(find "$work/tree/gmem-pfn/$version/$kver" -name 'gmem_pfn.ko*' | head -n1)
	[ -n "$ko" ] || { echo "dkms: no gmem_pfn.ko for $kver" >&2; exit 1; }
	case "$ko" in *.xz) xz -dc "$ko" >"$work/gmem_pfn-$kver.ko"; ko=$work/gmem_pfn-$kver.ko ;; esac
	got=$(modinfo -F vermagic "$ko" | cut -d' ' -f1)
	[ "$got" = "$kver" ] || { echo "dkms: $ko is for '$got', not $kver" >&2; exit 1; }
	[ "$(modinfo -F version "$ko")" = "$version" ] || { echo "dkms: module version differs" >&2; exit 1; }
	printf 'dkms: built gmem-pfn %s for %s in %.1f s\n' "$version" "$kver" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
	built=$((built + 1))
done
[ $built -eq 2 ]
