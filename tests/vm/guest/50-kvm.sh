# A real KVM guest on gmem memory (kmod backend), inside the test VM: gmemd, the example VMM
# gmem-kvm-demo running a real-mode guest through KVM, a second process on the same memory
# (gmem-kvm-peer), a device participant (gmem-device-demo) and the kernel's PAT list.
# Guest layout (1 MiB, 4 KiB granules): the vCPU's program in page 0, the rest is data.
scale=${GMEM_TEST_TIMEOUT_SCALE:-1}
wait_s=$((30 * ${scale%.*}))
[ "$wait_s" -gt 0 ] || wait_s=30
G=kvm1
export GMEM_SOCKET=/tmp/gmem/gmemd.sock
pass() { echo "ok - kvm: $1"; }
fail() { echo "not ok - kvm: $1"; }
check() { # name, command...: ok when the command succeeds
	name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}
now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# Polls (with a deadline, never a bare sleep) until the command succeeds.
until_ok() {
	deadline=$(($(now_ms) + wait_s * 1000))
	until "$@" >/dev/null 2>&1; do
		[ "$(now_ms)" -lt $deadline ] || return 1
		usleep 20000
	done
}

t0=$(now_ms)
for m in irqbypass kvm kvm-amd; do
	insmod /lib/modules/kvm/$m.ko || { fail "insmod $m"; exit 1; }
done
check "/dev/kvm exists (nested SVM)" test -c /dev/kvm
mkdir -p /sys/kernel/debug
mount -t debugfs debugfs /sys/kernel/debug

mkdir -p /tmp/gmem
gmemd --backend kmod --socket $GMEM_SOCKET --state-dir /tmp/gmem/state --bus none \
	--prepare-timeout 10000 --ack-timeout 10000 2>/tmp/gmemd.log &
gmemd_pid=$!
if ! until_ok gmemctl status; then
	fail "gmemd --backend kmod starts"
	cat /tmp/gmemd.log
	exit 1
fi
check "gmemd runs the kmod backend" sh -c 'gmemctl status | grep -q kmod'
check "create a 1 MiB guest" gmemctl create $G 1M

# The VMM: commands on a fifo, one reply line each on another.
mkfifo /tmp/vmm.in /tmp/vmm.out
gmem-kvm-demo $G </tmp/vmm.in >/tmp/vmm.out 2>/tmp/vmm.log &
vmm_pid=$!
exec 3>/tmp/vmm.in 4</tmp/vmm.out
reply=
vmm() { # command: sets $reply
	echo "$*" >&3
	reply=
	read -t $wait_s -r reply <&4
}
expect() { # name, expected reply, command
	name=$1 want=$2
	shift 2
	vmm "$@"
	if [ "$reply" = "$want" ]; then pass "$name"; else fail "$name: '$*' replied '$reply', not '$want'"; fi
}
read -t $wait_s -r reply <&4
if [ "$reply" != ready ]; then
	fail "gmem-kvm-demo: lease, map, prefault, KVM memory slot and vCPU"
	cat /tmp/vmm.log
	exit 1
fi
pass "gmem-kvm-demo: lease, map, prefault, KVM memory slot and vCPU"

# 1. The guest's writes are visible through the gmem fd in a second process, and the reverse.
expect "the KVM guest writes its memory" ok write 0x10000 0x5a5a1234
check "a second process reads the guest's write through its gmem fd" \
	sh -c '[ "$(gmem-kvm-peer '$G' read 0x10000)" = "value 0x5a5a1234" ]'
check "a second process writes through its gmem fd" sh -c "gmem-kvm-peer $G write 0x11000 0xc0ffee01 >/dev/null"
expect "the KVM guest reads the second process's write" "value 0xc0ffee01" read 0x11000

# 2. To-private of a range the guest uses: exactly that range faults in KVM, nothing else.
R=128K RL=16K # gmemctl takes sizes: [0x20000, 0x24000)
for a in 0x1fffc 0x20000 0x21000 0x23ffc 0x24000; do vmm write $a $((a + 0x1000000)); done
expect "the guest wrote around and inside the range" "value $(printf %#x $((0x23ffc + 0x1000000)))" read 0x23ffc
check "to-private of the range the guest uses commits" gmemctl convert $G $R $RL private
expect "the VMM recorded the range private in wave 3" \
	"status private_bytes=16384 prepares=1 commits=1 aborts=0 stuck=0" status
expect "guest write to the range's first page: KVM_RUN fails with EFAULT" "efault private" write 0x20000 7
expect "guest read of the range's last word: KVM_RUN fails with EFAULT" "efault private" read 0x23ffc
expect "the word just below the range still works" "value $(printf %#x $((0x1fffc + 0x1000000)))" read 0x1fffc
expect "the word just above the range still works" "value $(printf %#x $((0x24000 + 0x1000000)))" read 0x24000
expect "the rest of guest memory still works (write)" ok write 0x10000 0x600d
expect "the rest of guest memory still works (read)" "value 0x600d" read 0x10000
expect "a guest store into the range is stuck on EFAULT" "efault private" write 0x21000 0xbeef
expect "the VMM is alive and the access is pending" \
	"status private_bytes=16384 prepares=1 commits=1 aborts=0 stuck=1" status
check "the VMM got no SIGBUS" sh -c "kill -0 $vmm_pid && ! grep -q SIGBUS /tmp/vmm.log"
check "back to shared commits" gmemctl convert $G $R $RL shared
expect "the guest continues: the stuck store completes" ok retry
expect "the store landed" "value 0xbeef" read 0x21000
expect "the range kept its contents across the round trip" \
	"value $(printf %#x $((0x23ffc + 0x1000000)))" read 0x23ffc
expect "the VMM recorded the range shared in wave 1" \
	"status private_bytes=0 prepares=2 commits=2 aborts=0 stuck=0" status

# 3. A device participant in the same conversion votes no: the KVM guest runs on untouched.
D=192K DL=8K # [0x30000, 0x32000)
gmem-device-demo --vote no $G 0x30000 0x2000 >/tmp/dev.log 2>&1 &
dev_pid=$!
check "a device participant attaches [0x30000, +8K) and writes its pattern" until_ok grep -q attached /tmp/dev.log
# gmem-device-demo's byte at offset i is (i * 7 + (i >> 12)) & 0xff: at 0x30000..3 that reads 0x453e3730.
expect "the KVM guest reads the device's pattern" "value 0x453e3730" read 0x30000
gmemctl convert $G $D $DL private >/tmp/conv.log 2>&1
rc=$?
check "to-private with a device voting no is aborted (exit 3)" test $rc = 3
check "the refusal names the device's reason" grep -q 'DMA in flight' /tmp/conv.log
expect "the VMM was asked, saw the abort and changed nothing" \
	"status private_bytes=0 prepares=3 commits=2 aborts=1 stuck=0" status
expect "the KVM guest still reads the range (no EFAULT)" "value 0x453e3730" read 0x30000
expect "the KVM guest still writes elsewhere" ok write 0x12000 0x1234
expect "and reads it back" "value 0x1234" read 0x12000
check "the device found its data intact after the abort" until_ok grep -q 'data intact' /tmp/dev.log
kill $dev_pid
wait $dev_pid

# 4. The guest's memory is mapped write-back: the module's range in the kernel's PAT list.
base=${GMEM_VM_RANGES%%+*}
size=${GMEM_VM_RANGES#*+}
case $size in *M) size=$((${size%M} << 20)) ;; esac
check "the module's range is write-back in the PAT memtype list" pat-check $base $((base + size))
# Controls: the same check must fail on a range PAT maps uncached, and on one it has no entry for.
uc=$(sed -n 's/^PAT: \[mem \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\)\] uncached.*/\1 \2/p' /sys/kernel/debug/x86/pat_memtype_list | head -n1)
if [ -n "$uc" ]; then
	check "control: the PAT check fails on an uncached range ($uc)" sh -c "! pat-check $uc 2>/dev/null"
else
	fail "control: no uncached entry in the PAT list to test the check against"
fi
check "control: the PAT check fails on a range without an entry" \
	sh -c "! pat-check $((base + size)) $((base + size + 0x1000)) 2>/dev/null"

t_checks=$(($(now_ms) - t0))
# 5. The closing figure: to-private latency (gmemd's own figure) with the KVM VMM taking part, and
# without it, on the same range. In the first series the guest touches the range before each round, so
# KVM has it mapped and the zap goes through KVM's mmu notifier; the second (the VMM votes and acks, KVM
# has not mapped the range) tells the VMM's round trips from KVM's share.
N=6
[ "${GMEM_KVM_CONTROL:-}" = 1 ] && N=0 # a negative control's run: its figures would mean nothing
latency() { grep -o '"latency_us": *[0-9]*' /tmp/conv.json | grep -o '[0-9]*$'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
rounds() { # file, touch (1: the guest writes the range first): appends N latencies; $bad=1 on a failure
	: >$1
	i=0 bad=0
	while [ $i -lt $N ]; do
		if [ $2 = 1 ]; then
			vmm write 0x20000 $i; [ "$reply" = ok ] || bad=1
			vmm write 0x23ffc $i; [ "$reply" = ok ] || bad=1
		fi
		gmemctl --json convert $G $R $RL private >/tmp/conv.json || bad=1
		latency >>$1
		gmemctl convert $G $R $RL shared >/dev/null || bad=1
		i=$((i + 1))
	done
}
rounds /tmp/lat.kvm 1
check "$N rounds with the KVM VMM: the guest wrote, each to-private committed" test $bad = 0
rounds /tmp/lat.vmm 0
check "$N rounds with the VMM, the range untouched by the guest: each to-private committed" test $bad = 0
vmm quit
exec 3>&- 4<&-
wait $vmm_pid
check "the VMM exits cleanly (no SIGBUS, status 0)" test $? = 0
sed 's/^/  vmm log: /' /tmp/vmm.log | head -n 12
rounds /tmp/lat.none 0
check "$N rounds without a VMM: each to-private committed" test $bad = 0
[ $N -gt 0 ] && with=$(median </tmp/lat.kvm)
[ $N -gt 0 ] && untouched=$(median </tmp/lat.vmm)
[ $N -gt 0 ] && without=$(median </tmp/lat.none)
[ $N -gt 0 ] && echo "kvm: to-private latency of 16 KiB, median of $N: with the KVM VMM $with us, without it $without us:" \
	"ratio $(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.1f", b ? a / b : 0 }')" \
	"(the VMM voting and acking while KVM has not mapped the range: $untouched us)"

check "destroy the guest" gmemctl destroy $G
kill $gmemd_pid
wait $gmemd_pid
check "gmemd stops cleanly" test $? = 0
if grep -qE 'CRIT|ERR' /tmp/gmemd.log; then fail "gmemd logged errors"; cat /tmp/gmemd.log; else pass "gmemd logged no errors"; fi
for m in kvm-amd kvm irqbypass; do rmmod $m; done
echo "kvm: in the guest: the checks took $t_checks ms, all of it $(($(now_ms) - t0)) ms"
true
