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

# vm_build_variants KVER SRC_DIR OUT_DIR VARIANT...: builds variants of the module in one make run
# (the kernel's Makefile costs ~2.5 s of CPU a run before it compiles anything). VARIANT is NAME or
# NAME:VAR=VALUE[:VAR=VALUE...] (Kbuild switches, e.g. a negative control's GMEM_PFN_TEST_NO_ZAP=y):
# each one gets a copy of the sources in OUT_DIR/NAME (Kbuild writes next to them) with its switches
# set at the top of its Kbuild, and comes out as OUT_DIR/NAME/gmem_pfn.ko. W=1 -Werror, and sparse
# (C=2) unless VM_SPARSE=0. Any compiler or sparse warning fails.
vm_build_variants() {
	local kver=$1 src=$2 out=$3 v name log start sparse=C=2 subdirs=()
	shift 3
	[ "${VM_SPARSE:-1}" = 1 ] || sparse=C=0
	rm -rf "$out"
	mkdir -p "$out"
	for v in "$@"; do
		name=${v%%:*}
		mkdir "$out/$name"
		cp -r "$src"/*.c "$src"/*.h "$src"/uapi "$out/$name"/
		{
			[ "$v" = "$name" ] || echo "${v#*:}" | tr ':' '\n' | sed 's/=/ := /'
			cat "$src/Kbuild"
		} >"$out/$name/Kbuild"
		subdirs+=("$name/")
	done
	echo "obj-m += ${subdirs[*]}" >"$out/Kbuild"
	log="$out/build.log"
	start=$(date +%s.%N)
	# Two variants or more: the kernel's modules_check refuses two modules of one name (every variant
	# is gmem_pfn), which only matters to modules_install (these are never installed). So compile them
	# all (the modules.order goal), then link with that check skipped (-o: taken as up to date).
	local make=(make -j2 -C "/usr/src/linux-headers-$kver" M="$out" W=1 $sparse KCFLAGS=-Werror)
	if ! { if [ $# -gt 1 ]; then
		"${make[@]}" "$out/modules.order" && "${make[@]}" -o modules_check modules
	else
		"${make[@]}" modules
	fi; } >"$log" 2>&1; then
		cat "$log" >&2
		echo "vm: module build failed for $kver" >&2
		return 1
	fi
	if grep -E 'warning:|error:' "$log" | grep -v 'Skipping BTF' >&2; then
		echo "vm: the module build for $kver has warnings (sparse or compiler)" >&2
		return 1
	fi
	for v in "$@"; do
		[ -f "$out/${v%%:*}/gmem_pfn.ko" ] || { echo "vm: no $out/${v%%:*}/gmem_pfn.ko" >&2; return 1; }
	done
	printf 'vm: module built for %s in %.1f s (W=1 -Werror, %s): %s\n' "$kver" \
		"$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$sparse" "$*"
}

# vm_build_module KVER SRC_DIR OUT_DIR [KBUILD_VAR=VALUE...]: one variant, as OUT_DIR/gmem_pfn.ko.
vm_build_module() {
	local kver=$1 src=$2 out=$3 v=m
	shift 3
	[ $# -eq 0 ] || v=m:$(IFS=:; echo "$*")
	vm_build_variants "$kver" "$src" "$out" "$v" || return 1
	cp "$out/m/gmem_pfn.ko" "$out/gmem_pfn.ko"
}
