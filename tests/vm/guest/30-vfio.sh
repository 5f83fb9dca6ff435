# Issue 9 inside the guest: gmemd on gmem_pfn, QEMU's edu device behind the emulated Intel IOMMU driven by
# gmem-vfio-demo through VFIO type1, and quarantine. Judged by data the device and another process read
# back, and by what gmemd and the pool report. $GMEM_VFIO_GMEMD picks the gmemd build (the control
# gmemd-no-quarantine); $GMEM_VFIO_ACK the participant's ack mode (the control no-unmap).
gmemd=${GMEM_VFIO_GMEMD:-gmemd}
ack=${GMEM_VFIO_ACK:-yes}
scale=${GMEM_TEST_TIMEOUT_SCALE:-1}
export GMEM_SOCKET=/tmp/gmem.sock GMEM_TEST_ALLOW_TEST_MODULE=1
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1${2:+: $2}"; }
check() { name=$1; shift; if "$@"; then ok "$name"; else nok "$name"; fi; }

# VFIO from the image's module tree, in modules.dep order.
for m in irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci; do
	[ -f /lib/modules/vfio/$m.ko ] || continue
	if [ $m = vfio_iommu_type1 ]; then insmod /lib/modules/vfio/$m.ko allow_unsafe_interrupts=1; else insmod /lib/modules/vfio/$m.ko; fi
done
edu=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] && edu=${d##*/}
done
[ -n "$edu" ] || { nok "vfio: edu device present"; exit 1; }
echo vfio-pci >/sys/bus/pci/devices/$edu/driver_override
echo $edu >/sys/bus/pci/drivers_probe
grp=/dev/vfio/$(basename "$(readlink /sys/bus/pci/devices/$edu/iommu_group)")
check "vfio: edu bound to vfio-pci, group $grp" test -c "$grp"

mkdir -p /tmp/gmemd
$gmemd --backend kmod --socket $GMEM_SOCKET --state-dir /tmp/gmemd --bus none --log-level debug \
	--prepare-timeout $((2000 * scale)) --ack-timeout $((1000 * scale)) >/dev/null 2>/tmp/gmemd.log &
gmemd_pid=$!
# Nothing of ours may outlive the script: init's tee waits for every writer of its pipe.
trap 'kill $gmemd_pid ${dev_pid:-} ${cpu_pid:-} ${refuser_pid:-} ${stuck_pid:-} ${scrub_pid:-} 2>/dev/null' EXIT
i=0
while [ ! -S $GMEM_SOCKET ] && [ $i -lt $((100 * scale)) ]; do sleep 0.1; i=$((i + 1)); done
check "vfio: gmemd (kmod backend) is up" test -S $GMEM_SOCKET || { cat /tmp/gmemd.log; exit 1; }

pool=$(gmemctl --json status | tr -d ' \n' | sed 's/.*"pool_size":\([0-9]*\).*/\1/')
G=$((4 << 20))
gmemctl create g $G >/dev/null || { nok "vfio: create g"; cat /tmp/gmemd.log; exit 1; }

# Participants: each a gmem-vfio-demo fed through a FIFO (fd N) and read from a file, one line per answer.
start() { # NAME ARGS... : starts a demo, waits for "ready"
	n=$1; shift
	mkfifo /tmp/$n.in
	gmem-vfio-demo "$@" </tmp/$n.in >/tmp/$n.out 2>/tmp/$n.err &
	eval "${n}_pid=$!"
	eval "exec ${fdn}>/tmp/$n.in"
	eval "${n}_fd=$fdn"
	fdn=$((fdn + 1))
	[ "$(expect_line $n ready)" = ready ] || { nok "vfio: $n started"; cat /tmp/$n.err; exit 1; }
}
fdn=5
expect_line() { # NAME WANT: waits for the demo's next line; prints it
	n=$1; want=$2
	# Counted in a file: callers run this inside $(...), where a variable would not survive.
	cnt=$(($(cat /tmp/$n.cnt 2>/dev/null || echo 0) + 1))
	echo $cnt >/tmp/$n.cnt
	i=0
	while [ "$(wc -l </tmp/$n.out)" -lt $cnt ] && [ $i -lt $((200 * scale)) ]; do sleep 0.05; i=$((i + 1)); done
	line=$(sed -n "${cnt}p" /tmp/$n.out)
	[ -z "$want" ] || [ "${line%% *}" = "$want" ] || { echo "# $n said '$line', not $want" >&2; cat /tmp/$n.err >&2; }
	echo "$line"
}
cmd() { # NAME COMMAND...: one command, its answer on stdout
	n=$1; shift
	eval "fd=\$${n}_fd"
	echo "$*" >&$fd
	expect_line $n ""
}
hex() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
zeroes() { printf "%0$(($1 * 2))d" 0; }

t0=$(date +%s)
start dev --ack $ack $grp $edu g 0 1M
start cpu - - g 0 1M

# 1. device -> memory, seen through the gmem fd of another process; and the reverse.
tok=dmatoken1
cmd dev write 64 $tok >/dev/null
got=$(cmd cpu cpu-read 64 9)
check "vfio: DMA write into a shared range is visible through the gmem fd in another process ($got)" \
	[ "$got" = "data $(hex $tok)" ]
cmd cpu cpu-write 256 cputoken >/dev/null
check "vfio: a CPU write through the gmem fd is what the device reads by DMA" \
	[ "$(cmd dev read 256 8)" = "data $(hex cputoken)" ]

# 2. to-private with the participant voting yes: it unmaps at commit; the device reaches nothing after.
pattern=patternAB
cmd dev write 512 $pattern >/dev/null
gmemctl convert g 0 1M private >/dev/null
rc=$?
check "vfio: to-private committed with the VFIO participant (exit $rc)" [ $rc = 0 ]
check "vfio: the participant unmapped its IOMMU entry at commit" [ "$(cmd dev state)" = unmapped ]
check "stale-iommu: a DMA read of the private range returns zeroes, not the pattern" \
	[ "$(cmd dev read 512 9)" = "data $(zeroes 9)" ]
cmd dev write 1024 freshtok >/dev/null
gmemctl convert g 0 1M shared >/dev/null
check "vfio: to-shared committed; the device mapped again after the backend" [ "$(cmd dev state)" = mapped ]
check "stale-iommu: the token the device wrote while private never reached memory" \
	[ "$(cmd cpu cpu-read 1024 8)" != "data $(hex freshtok)" ]
check "vfio: contents preserved across private and back" [ "$(cmd cpu cpu-read 512 9)" = "data $(hex $pattern)" ]
check "vfio: after to-shared the device's DMA works again" [ "$(cmd dev read 512 9)" = "data $(hex $pattern)" ]

# 3. a second participant votes no: the VFIO participant was never unmapped.
start refuser --vote no - - g 0 1M
gmemctl convert g 0 1M private >/dev/null
check "vfio: a no from another participant aborts (exit 3)" [ $? = 3 ]
check "vfio: after the abort the VFIO participant is still mapped" [ "$(cmd dev state)" = mapped ]
check "vfio: after the abort its DMA still works" [ "$(cmd dev read 512 9)" = "data $(hex $pattern)" ]
cmd refuser quit >/dev/null; wait $refuser_pid
cmd dev quit >/dev/null; wait $dev_pid
cmd cpu quit >/dev/null; wait $cpu_pid

# 4. a participant that never acks: quarantine.
start stuck --ack never $grp $edu g 0 1M
gmemctl convert g 0 1M private >/dev/null
check "quarantine: a to-private the VFIO participant never acked is committed-unverified (exit 4)" [ $? = 4 ]
q=$(gmemctl --json map g | tr -d ' \n' | sed 's/.*"quarantined_bytes":\([0-9]*\).*/\1/')
check "quarantine: map shows the range quarantined ($q bytes)" [ "$q" = $((1 << 20)) ]
check "quarantine: status names the holder's pid" sh -c "gmemctl --json status | tr -d ' \n' | grep -q '\"pid\":$stuck_pid'"
gmemctl convert g 0 1M shared >/dev/null 2>&1
check "quarantine: a to-shared of it is refused" [ $? = 1 ]
gmemctl destroy g
rest=$((pool - G))
check "quarantine: the rest of the pool ($rest bytes) can be allocated" gmemctl create rest $rest
gmemctl create next $G >/dev/null 2>/tmp/enospc
check "quarantine: a create that could only use the destroyed guest's PFNs fails with ENOSPC" grep -q ENOSPC /tmp/enospc
cmd stuck quit >/dev/null; wait $stuck_pid
i=0
while ! gmemctl create next $G >/dev/null 2>&1 && [ $i -lt $((100 * scale)) ]; do sleep 0.05; i=$((i + 1)); done
check "quarantine: released once the participant's process exited" gmemctl map next
start scrub - - next 0 1M
check "quarantine: released memory was scrubbed before reuse" [ "$(cmd scrub cpu-read 0 4000)" = "data $(zeroes 4000)" ]
cmd scrub quit >/dev/null; wait $scrub_pid
echo "# vfio: checks took $(( $(date +%s) - t0 )) s in the guest"
gmemctl destroy next; gmemctl destroy rest
kill $gmemd_pid; wait $gmemd_pid
grep -q 'BUG\|ERR' /tmp/gmemd.log && sed -n '1,40p' /tmp/gmemd.log
exit 0
