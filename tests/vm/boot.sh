#!/usr/bin/env bash
# Boots a Debian kernel with an initramfs under qemu (software emulation) and judges the run by the
# console, never by qemu's exit status (qemu exits 0 after a panic too).
#   boot.sh KVER INITRD LOG [EXPECT_FAIL...]
# Without EXPECT_FAIL: passes when the console has "GMEM-VM-RESULT: PASS". With it (a negative
# control): passes when the run completed and each named test printed "not ok - NAME".
# Either way the console must be free of BUG:/WARNING:/Oops/Call Trace/panic.
set -euo pipefail
kver=$1 initrd=$2 log=$3
shift 3
scale=${GMEM_TEST_TIMEOUT_SCALE:-1}
limit=$(awk -v s="$scale" 'BEGIN { printf "%d", 90 * s }')

# 64 MiB reserved at 512 MiB: inside the 1 GiB of RAM qemu backs (past the end, writes would vanish).
memmap='memmap=64M$0x20000000'
start=$(date +%s.%N)
# $GMEM_VM_QEMU_ARGS / $GMEM_VM_APPEND: extra machine options and kernel arguments (the vfio runs: q35,
# intel-iommu, edu; intel_iommu=on).
# shellcheck disable=SC2086
timeout -k 5 "$limit" qemu-system-x86_64 -nodefaults -no-user-config -display none -serial stdio \
	-monitor none -accel tcg -smp 1 -m 1G -no-reboot -kernel "/boot/vmlinuz-$kver" -initrd "$initrd" \
	${GMEM_VM_QEMU_ARGS:-} \
	-append "console=ttyS0 $memmap panic=-1 oops=panic panic_on_warn=1 panic_print=0x20 quiet ${GMEM_VM_APPEND:-}" \
	</dev/null 2>&1 | tr -d '\r' >"$log" || true
secs=$(echo "$(date +%s.%N) - $start" | bc)
cat "$log"
printf 'vm: %s booted, tested and powered off in %.1f s\n' "$kver" "$secs"

bad=0
if grep -nE 'BUG:|WARNING:|Oops|Call Trace|Kernel panic' "$log" | grep -v '^.*: *not ok - kernel log' >&2; then
	echo "vm: the kernel complained (above)" >&2
	bad=1
fi
result=$(grep -o 'GMEM-VM-RESULT: [A-Z]*' "$log" | tail -n1 || true)
if [ -z "$result" ]; then
	echo "vm: no result line: the guest did not finish (timeout ${limit}s, or a crash)" >&2
	exit 1
fi
if [ $# -eq 0 ]; then
	[ "$result" = "GMEM-VM-RESULT: PASS" ] || { echo "vm: $result" >&2; exit 1; }
	exit $bad
fi
for name in "$@"; do
	if grep -q "^not ok - $name\(:.*\)\?\$" "$log"; then
		echo "vm: control: '$name' failed, as it must with the safety check switched off"
	else
		echo "vm: control: '$name' did not fail: the test cannot see the property it guards" >&2
		bad=1
	fi
done
exit $bad
