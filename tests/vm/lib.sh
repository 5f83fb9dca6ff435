# Shared by the vm suite's scripts (sourced, bash). Kernel versions come from the installed Debian
# packages, never from `uname -r`: the host runs another kernel than the ones tested.

# The skip convention: exit 77, except under CI where a missing tool is a failure.
vm_skip() {
	echo "vm: $*" >&2
	if [ "${CI:-}" = true ]; then
		echo "vm: CI=true: no skipping (contrib/dev/install-deps vm installs what is missing)" >&2
		exit 1
	fi
	exit 77
}

# vm_kver 6.1|6.12: the kernel version string (e.g. 6.1.0-56-cloud-amd64) of the installed headers.
vm_kver() {
	local meta kver
	case "$1" in
	6.1) meta=linux-headers-cloud-amd64 ;;
	6.12) meta=linux-headers-6.12-cloud-amd64 ;;
	*) echo "vm: unknown kernel '$1' (6.1 or 6.12)" >&2; return 1 ;;
	esac
	kver=$(dpkg-query -W -f='${Depends}' "$meta" 2>/dev/null | grep -o 'linux-headers-[^ ,]*' | head -n1)
	kver=${kver#linux-headers-}
	case "$kver" in
	"$1".*|"$1"-*) ;;
	*) return 1 ;;
	esac
	[ -d "/usr/src/linux-headers-$kver" ] && [ -f "/boot/vmlinuz-$kver" ] || return 1
	echo "$kver"
}

# vm_build_module KVER SRC_DIR OUT_DIR [KBUILD_VAR=VALUE...]: copies the sources (Kbuild writes
# next to them) and builds with W=1 -Werror and sparse (C=2, unless VM_SPARSE=0). Any compiler or
# sparse warning fails.
vm_build_module() {
	local kver=$1 src=$2 out=$3 log start sparse=C=2
	shift 3
	[ "${VM_SPARSE:-1}" = 1 ] || sparse=C=0
	rm -rf "$out"
	mkdir -p "$out"
	cp -r "$src"/Kbuild "$src"/*.c "$src"/*.h "$src"/uapi "$out"/
	log="$out/build.log"
	start=$(date +%s.%N)
	if ! make -C "/usr/src/linux-headers-$kver" M="$out" W=1 $sparse KCFLAGS=-Werror "$@" modules \
		>"$log" 2>&1; then
		cat "$log" >&2
		echo "vm: module build failed for $kver" >&2
		return 1
	fi
	if grep -E 'warning:|error:' "$log" | grep -v 'Skipping BTF' >&2; then
		echo "vm: the module build for $kver has warnings (sparse or compiler)" >&2
		return 1
	fi
	printf 'vm: module built for %s in %.1f s (W=1 -Werror, %s)%s\n' "$kver" \
		"$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$sparse" "${*:+ with $*}"
}
