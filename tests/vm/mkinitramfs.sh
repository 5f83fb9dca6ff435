#!/usr/bin/env bash
# Packs a busybox initramfs for the vm suite: /init runs every script of /tests in name order, prints
# "ok - ..."/"not ok - ..." lines and ends with the result line the host judges by. See README.md.
#   -o OUT.cpio        the archive to write (required)
#   -m FILE.ko         a kernel module, put in /lib/modules/
#   -b FILE            a static program, put in /bin/
#   -d FILE            a dynamically linked program, put in /bin/ with ld.so and every library ldd lists
#   -s FILE            an in-guest test script, put in /tests/ (runs in name order: use NN-name.sh)
#   -f SRC=DST         any file, put at DST
#   -e NAME=VALUE      an environment variable for the scripts (/etc/gmem-vm.env)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

out=
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,tests,etc,lib/modules,root}
: >"$root/etc/gmem-vm.env"

copy_with_libs() { # a dynamic program and what the loader needs
	local f=$1 lib
	install -m 0755 "$f" "$root/bin/"
	for lib in $(ldd "$f" | grep -o '/[^ ]*'); do
		case $lib in
		/lib/* | /lib64/* | /usr/lib/*)
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib" ;;
		# A build tree's library (libgmem): its host path may be under /tmp, which the guest's init
		# mounts over; /lib is on the loader's default path.
		*) cp -L "$lib" "$root/lib/" ;;
		esac
	done
}

while getopts o:m:b:d:s:f:e: opt; do
	case $opt in
	o) out=$OPTARG ;;
	m) install -m 0644 "$OPTARG" "$root/lib/modules/" ;;
	b) install -m 0755 "$OPTARG" "$root/bin/" ;;
	d) copy_with_libs "$OPTARG" ;;
	s) install -m 0755 "$OPTARG" "$root/tests/" ;;
	f) mkdir -p "$root$(dirname "${OPTARG#*=}")"; cp -L "${OPTARG%%=*}" "$root${OPTARG#*=}" ;;
	e) printf 'export %q\n' "$OPTARG" >>"$root/etc/gmem-vm.env" ;;
	*) exit 2 ;;
	esac
done
[ -n "$out" ] || { echo "mkinitramfs: -o OUT.cpio is required" >&2; exit 2; }

cp /bin/busybox "$root/bin/busybox"
install -m 0755 "$here/guest/init" "$root/init"
# An unprivileged user and the clients' group, for the permission tests.
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1001::/tmp:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\ngmem:x:1001:user\n' >"$root/etc/group"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out"
