#!/usr/bin/env bash
# Boots a Debian kernel with an initramfs under qemu (software emulation) and judges the run by the
# console, never by qemu's exit status (qemu exits 0 after a panic too).
#   boot.sh KVER INITRD LOG [EXPECT_FAIL...]    (GMEM_VM_SMP: vCPUs, default 1; GMEM_VM_VMLINUX_DIR:
#   where extract-vmlinux.sh put vmlinux-6.1 and vmlinux-6.12)
# Without EXPECT_FAIL: passes when the console has "GMEM-VM-RESULT: PASS". With it (a negative
# control): passes when the run completed and each named test printed "not ok - NAME".
# Either way the console must be free of BUG:/WARNING:/Oops/Call Trace/panic.
set -euo pipefail
kver=$1 initrd=$2 log=$3
shift 3
scale=${GMEM_TEST_TIMEOUT_SCALE:-1}
limit=$(awk -v s="$scale" 'BEGIN { printf "%d", 90 * s }')

# 64 MiB reserved at 512 MiB: inside the 1 GiB of RAM qemu backs (past the end, writes would vanish).
# $GMEM_VM_QEMU_ARGS (split on spaces) and $GMEM_VM_APPEND add to qemu's arguments and the kernel's
# command line (the two-node NUMA guest of vm-gmemd-numa).
memmap='memmap=64M$0x20000000'
# Extra qemu options of one run, word-split (e.g. "-cpu max" for nested KVM; the NUMA guest's nodes).
read -r -a qemu_extra <<<"${GMEM_VM_QEMU_ARGS:-}"
# The kernel: its ELF vmlinux when extract-vmlinux.sh made one for this very version (a PVH boot, no
# in-guest decompression), else the bzImage.
image=/boot/vmlinuz-$kver
elf=${GMEM_VM_VMLINUX_DIR:-/nonexistent}/vmlinux-$(echo "$kver" | sed 's/^\([0-9]*\.[0-9]*\).*/\1/')
if [ -f "$elf" ] && LC_ALL=C grep -qaF -m1 "Linux version $kver " "$elf"; then
	image=$elf
elif [ -n "${GMEM_VM_VMLINUX_DIR:-}" ]; then
	echo "vm: no unpacked vmlinux for $kver in $GMEM_VM_VMLINUX_DIR: booting the bzImage (slower)"
fi
# Boot-time work irrelevant here, measured to cost ~0.3-0.5 s of emulated CPU a boot: the crypto
# self-tests, the clocksource watchdog and the timer check (qemu's TSC is steady).
fast='cryptomgr.notests tsc=reliable no_timer_check'
start=$(date +%s.%N)
timeout -k 5 "$limit" qemu-system-x86_64 -nodefaults -no-user-config -display none -serial stdio \
	-monitor none -accel tcg -smp "${GMEM_VM_SMP:-1}" -m 1G -no-reboot "${qemu_extra[@]}" \
	-kernel "$image" -initrd "$initrd" \
	-append "console=ttyS0 $memmap ${GMEM_VM_APPEND:-} panic=-1 oops=panic panic_on_warn=1 panic_print=0x20 $fast quiet" \
	</dev/null 2>&1 | tr -d '\r' >"$log" || true
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
cat "$log"
printf 'vm: %s booted (%s), tested and powered off in %.1f s\n' "$kver" "$image" "$secs"

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
