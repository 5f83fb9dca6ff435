#!/usr/bin/env bash
# Unpacks a Debian cloud kernel's bzImage into its ELF vmlinux, once per kernel for the whole vm suite
# (a meson custom_target): qemu boots an ELF with a PVH note straight at its 64-bit entry, skipping
# the real-mode setup and the in-guest decompression, which under software emulation costs ~0.4 s
# of CPU a boot on 6.1 (LZ4) and ~0.7 s on 6.12 (zstd). boot.sh boots it when $GMEM_VM_VMLINUX_DIR
# has one for the kernel it boots, else the bzImage.
#   extract-vmlinux.sh KERNEL OUT DEPFILE
# Like build-module.sh, a failure exits 0 without OUT (the tests then boot the bzImage, and say so).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
kernel=$1 out=$2 depfile=$3
rm -f "$out"
case $kernel in
6.1) meta=linux-image-cloud-amd64 ;;
6.12) meta=linux-image-6.12-cloud-amd64 ;;
*) meta= ;;
esac
{
	printf '%s:' "$out"
	for f in "$0" "$here/lib.sh" "/var/lib/dpkg/info/$meta.list"; do
		[ -e "$f" ] && printf ' \\\n %s' "$(readlink -f "$f")"
	done
	printf '\n'
} >"$depfile"

kver=$(vm_kver "$kernel") || { echo "vm: no $kernel cloud kernel installed: nothing to extract" >&2; exit 0; }
image=/boot/vmlinuz-$kver
# The compressed payload starts at its format's magic; the first offset that decompresses to an ELF
# is it (the setup code before it may contain the magic bytes by chance).
try() { # magic (grep -P), decompressor...
	local magic=$1 off
	shift
	command -v "$1" >/dev/null || return 1
	for off in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1 | head -n 5); do
		tail -c +$((off + 1)) "$image" | "$@" >"$out.tmp" 2>/dev/null || true
		if [ "$(head -c 4 "$out.tmp" | od -An -c | tr -d ' ')" = '177ELF' ] &&
			LC_ALL=C grep -qaF "Linux version $kver " "$out.tmp"; then
			return 0
		fi
	done
	return 1
}
if try '\x28\xb5\x2f\xfd' zstd -dc || try '\x02\x21\x4c\x18' lz4 -dc || try '\xfd7zXZ\x00' xz -dc ||
	try '\x1f\x8b\x08' gzip -dc; then
	# Only an ELF with the PVH entry note (Xen's PHYS32_ENTRY, type 18) boots this way.
	if readelf -n "$out.tmp" 2>/dev/null | grep -q 'Xen.*(0x00000012)'; then
		mv "$out.tmp" "$out"
		echo "vm: $image unpacked to $(basename "$out") ($(stat -c %s "$out") bytes)"
		exit 0
	fi
	echo "vm: $image has no PVH entry note: the tests boot the bzImage" >&2
else
	echo "vm: could not unpack $image: the tests boot the bzImage" >&2
fi
rm -f "$out.tmp"
exit 0
