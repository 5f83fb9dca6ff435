# Loads gmem_pfn on the range the kernel command line reserved ($GMEM_VM_RANGES), after checking
# that it refuses what it must.
ko=/lib/modules/gmem_pfn.ko
refused() { # name, insmod arguments: "ok" when the load fails
	name=$1
	shift
	if insmod $ko "$@" >/dev/null 2>&1; then
		echo "not ok - $name"
		rmmod gmem_pfn
	else
		echo "ok - $name"
	fi
}
t() { # name, command...: "ok" when the command succeeds
	name=$1
	shift
	if "$@" >/dev/null 2>&1; then echo "ok - $name"; else echo "not ok - $name"; fi
}
refused "load refused without ranges="
refused "load refused on System RAM" ranges=0x1000000+0x100000
refused "load refused on a malformed range" ranges=0x20000000-64M
refused "load refused on a misaligned range" ranges=0x20000800+64M
refused "load refused on overlapping ranges" ranges=$GMEM_VM_RANGES,$GMEM_VM_RANGES
# Old contents the module must scrub when it claims the range (reserved memory survives a warm
# reboot or kexec): gmem-pfn-test's scrub-on-claim reads the first page of the pool.
t "pattern written to the reserved range" devmem 0x20000000 32 0x5a5a5a5a
t "pattern readable before the load" sh -c '[ "$(devmem 0x20000000 32)" = 0x5A5A5A5A ]'
t "load" insmod $ko ranges=$GMEM_VM_RANGES
t "/dev/mem cannot reach the claimed range" sh -c '! devmem 0x20000000 32'
t "range claimed in /proc/iomem" grep -q gmem_pfn /proc/iomem
t "control node exists" test -c /dev/gmem_pfn
# The live write-back memremap makes PAT hand user mappings write-back, not uncached-minus.
mount -t debugfs debugfs /sys/kernel/debug
t "range is write-back for PAT" grep -q '0x0000000020000000-0x0000000024000000\] write-back' \
	/sys/kernel/debug/x86/pat_memtype_list
