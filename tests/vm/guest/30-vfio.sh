# Issue 9 inside the guest: gmemd on gmem_pfn, QEMU's edu device behind the emulated Intel IOMMU driven by
# gmem-vfio-demo through VFIO type1, and quarantine. Judged by data the device and another process read
# back, and by what gmemd and the pool report. $GMEM_VFIO_GMEMD picks the gmemd build (the control
# gmemd-no-quarantine); $GMEM_VFIO_ACK the participant's ack mode (the control no-unmap). A control's run
# skips the latency figures (they would mean nothing).
gmemd=${GMEM_VFIO_GMEMD:-gmemd}
ack=${GMEM_VFIO_ACK:-yes}
scale=${GMEM_TEST_TIMEOUT_SCALE:-1}
control=0
[ "$gmemd" = gmemd ] && [ "$ack" = yes ] || control=1
export GMEM_SOCKET=/tmp/gmem.sock GMEM_TEST_ALLOW_TEST_MODULE=1
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1${2:+: $2}"; }
check() { name=$1; shift; if "$@"; then ok "$name"; else nok "$name"; fi; }
now_ms() { read -r up _ </proc/uptime; f=${up#*.}; echo $((${up%.*} * 1000 + ${f#0} * 10)); }
t_boot=$(now_ms)

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
check "vfio: edu bound to vfio-pci, its group's node is there" test -c "$grp"

mkdir -p /tmp/gmemd
$gmemd --backend kmod --socket $GMEM_SOCKET --state-dir /tmp/gmemd --bus none --log-level debug \
	--prepare-timeout $((2000 * scale)) --ack-timeout $((1000 * scale)) >/dev/null 2>/tmp/gmemd.log &
gmemd_pid=$!
# Nothing of ours may outlive the script: init's tee waits for every writer of its pipe.
trap 'kill $gmemd_pid ${dev_pid:-} ${cpu_pid:-} ${refuser_pid:-} ${stuck_pid:-} ${holder_pid:-} ${scrub_pid:-} ${peek_pid:-} 2>/dev/null' EXIT
i=0
while [ ! -S $GMEM_SOCKET ] && [ $i -lt $((100 * scale)) ]; do sleep 0.1; i=$((i + 1)); done
check "vfio: gmemd (kmod backend) is up" test -S $GMEM_SOCKET || { cat /tmp/gmemd.log; exit 1; }

# JSON numbers and strings out of gmemctl --json (one level is enough here).
# (tr leaves no newline at the end, and sed then prints none: the echo ends the line.)
jnum() { tr -d ' \n' | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; echo; }
pool=$(gmemctl --json status | jnum pool_size)
G=$((4 << 20))
gmemctl create g $G >/dev/null || { nok "vfio: create g"; cat /tmp/gmemd.log; exit 1; }

# Participants: each a gmem-vfio-demo fed through a FIFO (fd N) and read from a file, one line per answer.
# Only one at a time may hold the device: a VFIO group opens once.
start() { # NAME ARGS... : starts a demo, waits for "ready"
	n=$1; shift
	rm -f /tmp/$n.in /tmp/$n.cnt
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
	[ -z "$want" ] || [ "${line%% *}" = "$want" ] || { echo "# $n said '$line', not $want" >&2; sed 's/^/# /' /tmp/$n.err >&2; }
	echo "$line"
}
cmd() { # NAME COMMAND...: one command, its answer on stdout
	n=$1; shift
	eval "fd=\$${n}_fd"
	echo "$*" >&$fd
	expect_line $n ""
}
stop() { # NAME: quit, and the demo's exit status
	n=$1
	eval "fd=\$${n}_fd; pid=\$${n}_pid"
	echo quit >&$fd
	eval "exec ${fd}>&-"
	wait $pid
	rc=$?
	[ -s /tmp/$n.err ] && sed "s/^/# $n: /" /tmp/$n.err
	return $rc
}
hex() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
zeroes() { printf "%0$(($1 * 2))d" 0; }
dmar_faults() { dmesg | grep -c 'DMAR: \[DMA '; }

t0=$(now_ms)
start dev --ack $ack $grp $edu g 0 1M
start cpu - - g 0 1M

# 1. device -> memory, seen through the gmem fd of another process; and the reverse.
tok=dmatoken1
cmd dev write 64 $tok >/dev/null
got=$(cmd cpu cpu-read 64 9)
check "vfio: DMA write into a shared range is visible through the gmem fd in another process" \
	[ "$got" = "data $(hex $tok)" ]
cmd cpu cpu-write 256 cputoken >/dev/null
check "vfio: a CPU write through the gmem fd is what the device reads by DMA" \
	[ "$(cmd dev read 256 8)" = "data $(hex cputoken)" ]

# 2. to-private with the participant voting yes: it unmaps at commit (before its ack), and the device
# reaches nothing of the range after: a read returns zeroes (the IOMMU faults it), a write is lost.
pattern=patternAB
cmd dev write 512 $pattern >/dev/null
faults=$(dmar_faults)
gmemctl --json convert g 0 1M private >/tmp/conv.json
rc=$?
check "vfio: to-private committed with the VFIO participant (exit $rc)" [ $rc = 0 ]
if tr -d ' \n' </tmp/conv.json | grep -q '"revoked":\[\]'; then
	ok "vfio: no file was revoked: the participants dropped their CPU mappings themselves"
else
	nok "vfio: no file was revoked: the participants dropped their CPU mappings themselves"
	sed 's/^/# /' /tmp/conv.json
	grep 'still mapped' /tmp/gmemd.log
fi
check "vfio: map shows the range private" [ "$(gmemctl --json map g | jnum private_bytes)" = $((1 << 20)) ]
check "vfio: the participant unmapped its IOMMU entry at commit" [ "$(cmd dev state)" = unmapped ]
check "stale-iommu: a DMA read of the private range returns zeroes, not the pattern" \
	[ "$(cmd dev read 512 9)" = "data $(zeroes 9)" ]
check "stale-iommu: the IOMMU faulted the device's read (DMAR in the kernel log)" [ "$(dmar_faults)" -gt "$faults" ]
cmd dev write 1024 freshtok >/dev/null
# 3. to-shared: the backend first, then the participant maps (MAP_DMA faults the PFNs in through its CPU
# mapping, which the module refuses for a private range: the map working is the order's evidence).
gmemctl convert g 0 1M shared >/dev/null
check "vfio: to-shared committed; the device mapped again after the backend" [ "$(cmd dev state)" = mapped ]
# (A new guest's memory was scrubbed: what was there before the token is zeroes.)
check "stale-iommu: the token the device wrote while private never reached memory" \
	[ "$(cmd cpu cpu-read 1024 8)" = "data $(zeroes 8)" ]
check "vfio: contents preserved across private and back" [ "$(cmd cpu cpu-read 512 9)" = "data $(hex $pattern)" ]
check "vfio: after to-shared the device's DMA works again" [ "$(cmd dev read 512 9)" = "data $(hex $pattern)" ]

# 4. a no: from a second participant, then from the VFIO participant itself. Nothing is unmapped, the
# range stays shared, DMA goes on.
start refuser --vote no - - g 0 1M
gmemctl convert g 0 1M private >/dev/null
check "vfio: a no from another participant aborts (exit 3)" [ $? = 3 ]
check "vfio: after that abort the VFIO participant is still mapped" [ "$(cmd dev state)" = mapped ]
check "vfio: after that abort its DMA still works" [ "$(cmd dev read 512 9)" = "data $(hex $pattern)" ]
stop refuser
cmd dev vote no >/dev/null
gmemctl convert g 0 1M private >/dev/null
check "vfio: the VFIO participant's own no aborts (exit 3)" [ $? = 3 ]
check "vfio: after its no the range is all shared" [ "$(gmemctl --json map g | jnum private_bytes)" = 0 ]
check "vfio: after its no it is still mapped" [ "$(cmd dev state)" = mapped ]
cmd dev write 2048 aftervoteno >/dev/null
check "vfio: after its no its DMA still works (a write, seen by another process)" \
	[ "$(cmd cpu cpu-read 2048 11)" = "data $(hex aftervoteno)" ]
cmd dev vote yes >/dev/null
# A to-shared that would map more than the IOVA space the device manager has left: it votes no at
# prepare (before anything is done), so the range stays private and nothing is mapped half-way.
gmemctl convert g 0 1M private >/dev/null
cmd dev budget 4096 >/dev/null
gmemctl convert g 0 1M shared >/dev/null
check "vfio: a to-shared past the participant's IOVA budget is refused (exit 3)" [ $? = 3 ]
check "vfio: after that refusal the range is still private and unmapped" \
	[ "$(gmemctl --json map g | jnum private_bytes)" = $((1 << 20)) ] && [ "$(cmd dev state)" = unmapped ]
cmd dev budget max >/dev/null
gmemctl convert g 0 1M shared >/dev/null
check "vfio: with the budget back the to-shared commits and the device maps again" [ "$(cmd dev state)" = mapped ]
check "vfio: ...and its DMA works" [ "$(cmd dev read 512 9)" = "data $(hex $pattern)" ]
stop cpu
t_checks=$(($(now_ms) - t0))

# 5. The figure: to-private and to-shared latency (gmemd's own) of the 1 MiB range with the VFIO
# participant, with a participant that only maps the range for the CPU, and with none.
N=5
[ $control = 1 ] && N=0
latency() { jnum latency_us </tmp/conv.json; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
rounds() { # NAME: appends N to-private latencies to /tmp/lat.NAME.p, to-shared to .s; $bad=1 on a failure
	: >/tmp/lat.$1.p
	: >/tmp/lat.$1.s
	i=0 bad=0
	while [ $i -lt $N ]; do
		gmemctl --json convert g 0 1M private >/tmp/conv.json || bad=1
		latency >>/tmp/lat.$1.p
		gmemctl --json convert g 0 1M shared >/tmp/conv.json || bad=1
		latency >>/tmp/lat.$1.s
		i=$((i + 1))
	done
}
t2=$(now_ms)
rounds vfio
[ $N -gt 0 ] && check "vfio: $N rounds with the VFIO participant, each committed" test $bad = 0
[ $N -gt 0 ] && check "vfio: after them the device's DMA works" [ "$(cmd dev read 512 9)" = "data $(hex $pattern)" ]
stop dev
check "vfio: the participant exits cleanly" test $? = 0
rounds none
[ $N -gt 0 ] && check "vfio: $N rounds without participants, each committed" test $bad = 0
start cpu - - g 0 1M
rounds mmap
[ $N -gt 0 ] && check "vfio: $N rounds with a CPU-only participant, each committed" test $bad = 0
stop cpu
if [ $N -gt 0 ]; then
	for s in vfio none mmap; do
		eval "p_$s=$(median </tmp/lat.$s.p) s_$s=$(median </tmp/lat.$s.s)"
	done
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b ? a / b : 0 }'; }
	echo "vfio: to-private latency of 1 MiB, median of $N: with the VFIO participant $p_vfio us, without" \
		"participants $p_none us: ratio $(ratio $p_vfio $p_none) (a CPU-only participant: $p_mmap us," \
		"ratio $(ratio $p_vfio $p_mmap))"
	for s in vfio none mmap; do echo "# $s: to-private" $(cat /tmp/lat.$s.p) "us; to-shared" $(cat /tmp/lat.$s.s) us; done
	echo "vfio: to-shared latency of 1 MiB, median of $N: with the VFIO participant $s_vfio us, without" \
		"$s_none us: ratio $(ratio $s_vfio $s_none) (a CPU-only participant: $s_mmap us)"
fi

echo "# vfio: the figures took $(($(now_ms) - t2)) ms"

# 6. a VFIO participant that never acks a to-private commit: the range is quarantined (kept private,
# named in map and status) until its process is gone.
t1=$(now_ms)
start stuck --ack never $grp $edu g 0 1M
gmemctl convert g 0 1M private >/dev/null
check "quarantine: a to-private the VFIO participant never acked is committed-unverified (exit 4)" [ $? = 4 ]
q=$(gmemctl --json map g | jnum quarantined_bytes)
echo "# map: $q bytes quarantined"
check "quarantine: map shows the unacked range quarantined" [ "$q" = $((1 << 20)) ]
gmemctl --json status >/tmp/status.json
check "quarantine: status counts the bytes" [ "$(jnum quarantined </tmp/status.json)" = $((1 << 20)) ]
check "quarantine: status names the holder's pid" \
	sh -c "tr -d ' \n' </tmp/status.json | grep -q '\"pid\":$stuck_pid'"
gmemctl convert g 0 1M shared >/dev/null 2>&1
check "quarantine: a to-shared of the quarantined range is refused" [ $? = 1 ]
stop stuck
i=0
while [ "$(gmemctl --json map g | jnum quarantined_bytes)" != 0 ] && [ $i -lt $((100 * scale)) ]; do sleep 0.05; i=$((i + 1)); done
check "quarantine: released once the participant's process is gone" [ "$(gmemctl --json map g | jnum quarantined_bytes)" = 0 ]
gmemctl convert g 0 1M shared >/dev/null
check "quarantine: after the release the range converts back to shared" [ $? = 0 ]

# 7. a guest destroyed while an IOMMU holder of it lives: its PFNs are quarantined (the device can still
# reach them), never given to another guest, until the holder's process is gone; then scrubbed and reused.
start holder $grp $edu g 0 1M
secret=secretXYZ
cmd holder write 0 $secret >/dev/null
gmemctl destroy g
gmemctl --json status >/tmp/status.json
q=$(jnum quarantined </tmp/status.json)
echo "# status: $q bytes quarantined"
check "quarantine: destroying the guest under a live IOMMU holder quarantines all of it" [ "$q" = $G ]
check "quarantine: status names the destroyed guest's holder" \
	sh -c "tr -d ' \n' </tmp/status.json | grep -q '\"destroyed\":true.*\"pid\":$holder_pid'"
check "quarantine: the device still reaches the destroyed guest's PFNs (why they are held)" \
	[ "$(cmd holder read 0 9)" = "data $(hex $secret)" ]
rest=$((pool - G))
check "quarantine: the rest of the pool ($rest bytes) can be allocated" gmemctl create rest $rest
gmemctl create next $G >/dev/null 2>/tmp/enospc
rc=$?
check "quarantine: a create that could only use the destroyed guest's PFNs fails with ENOSPC" \
	sh -c "[ $rc != 0 ] && grep -q 'No space left on device' /tmp/enospc"
[ $rc = 0 ] || sed 's/^/# /' /tmp/enospc
# Whoever got those PFNs must not see the live device's writes. The module hands out the lowest free
# addresses first, so the destroyed guest's first MiB would be the first MiB of the guest that got it.
cmd holder write 128 leaktoken >/dev/null
leak=0
for v in rest next; do
	gmemctl map $v >/dev/null 2>&1 || continue
	start peek - - $v 0 1M
	if [ "$(cmd peek cpu-read 128 9)" = "data $(hex leaktoken)" ]; then
		leak=1
		echo "# the device's DMA wrote into guest $v"
	fi
	stop peek
done
check "quarantine: the live holder's DMA lands in no other guest" [ $leak = 0 ]
stop holder
i=0
while ! gmemctl map next >/dev/null 2>&1 && ! gmemctl create next $G >/dev/null 2>&1 && [ $i -lt $((100 * scale)) ]; do
	sleep 0.05
	i=$((i + 1))
done
check "quarantine: released once the holder's process is gone (the create succeeds)" gmemctl map next >/dev/null
check "quarantine: nothing is quarantined any more" [ "$(gmemctl --json status | jnum quarantined)" = 0 ]
start scrub - - next 0 1M
check "quarantine: released memory was scrubbed before reuse" [ "$(cmd scrub cpu-read 0 9)" = "data $(zeroes 9)" ]
stop scrub
t_quarantine=$(($(now_ms) - t1))
echo "# vfio: checks $t_checks ms, quarantine $t_quarantine ms, script $(($(now_ms) - t_boot)) ms in the guest"
gmemctl destroy next
gmemctl destroy rest
kill $gmemd_pid
wait $gmemd_pid
check "vfio: gmemd stops cleanly" test $? = 0
if grep -qE 'CRIT|ERR' /tmp/gmemd.log; then nok "vfio: gmemd logged no errors"; grep -E 'CRIT|ERR' /tmp/gmemd.log | head -n 20; else ok "vfio: gmemd logged no errors"; fi
exit 0
