# gmemd on the kmod backend inside the guest: started the production way (a plain user owning the
# module's node, CAP_NET_ADMIN its only capability), then driven by gmemd-vm-test's libgmem clients.
# $GMEMD_VM_TESTS: gmemd-vm-test cases (default all); $GMEM_VM_LIBDIR: where libgmem was packed.
export LD_LIBRARY_PATH=$GMEM_VM_LIBDIR
export GMEM_VM_GMEMD_LOG=/tmp/gmemd.log
scale=${GMEM_TEST_TIMEOUT_SCALE:-1}
t() { # name, command...
	name=$1
	shift
	if "$@" >/dev/null 2>&1; then echo "ok - $name"; else echo "not ok - $name"; fi
}
# The initramfs root comes out of mktemp -d (0700): a non-root gmemd could not reach /bin.
chmod 0755 /
echo 'gmemd:x:990:990::/tmp:/bin/sh' >>/etc/passwd
echo 'gmemd:x:990:' >>/etc/group
# What the udev rule (contrib/) does on a host.
chown 990:990 /dev/gmem_pfn
chmod 0600 /dev/gmem_pfn
mkdir -p /run/gmem
chown 990:990 /run/gmem
start=$(date +%s)
# Its primary group is the clients' group (gmem, 1001), so it can hand its socket to that group.
gmemd-vm-test launch 990 1001 /bin/gmemd --backend kmod --bus none --log-level info \
	--socket-group gmem >"$GMEM_VM_GMEMD_LOG" 2>&1 &
gpid=$!
deadline=$((start + 10 * ${scale%.*}))
# Version skew ($GMEMD_VM_EXPECT_ABI: the module was built to report that ABI version): gmemd must
# refuse to start, saying which versions differ.
if [ -n "${GMEMD_VM_EXPECT_ABI:-}" ]; then
	while kill -0 $gpid 2>/dev/null && [ "$(date +%s)" -le $deadline ]; do
		usleep 20000
	done
	if kill -0 $gpid 2>/dev/null; then
		kill -TERM $gpid
		echo "not ok - gmemd-refuses-abi-skew: gmemd is running on a module of ABI $GMEMD_VM_EXPECT_ABI"
	elif wait $gpid; then
		echo "not ok - gmemd-refuses-abi-skew: gmemd exited 0"
	elif grep -q "gmem_pfn speaks ABI version $GMEMD_VM_EXPECT_ABI, this gmemd speaks 1" "$GMEM_VM_GMEMD_LOG"; then
		echo "ok - gmemd-refuses-abi-skew"
	else
		echo "not ok - gmemd-refuses-abi-skew: no clear message"
	fi
	sed 's/^/gmemd: /' "$GMEM_VM_GMEMD_LOG"
	exit 0
fi
while ! grep -q 'ready: backend kmod' "$GMEM_VM_GMEMD_LOG" && kill -0 $gpid 2>/dev/null && [ "$(date +%s)" -le $deadline ]; do
	usleep 20000
done
if ! grep -q 'ready: backend kmod' "$GMEM_VM_GMEMD_LOG"; then
	echo "not ok - gmemd-start: gmemd did not come up; its log:"
	cat "$GMEM_VM_GMEMD_LOG"
	exit 1
fi
echo "ok - gmemd-start"
t "gmemd-runs-as-user" grep -q '^Uid:[[:space:]]*990[[:space:]]' /proc/$gpid/status
# CAP_NET_ADMIN (bit 12) and nothing else, effective and permitted.
t "gmemd-keeps-cap-net-admin-only" sh -c "grep -q '^CapEff:[[:space:]]*0000000000001000\$' /proc/$gpid/status &&
	grep -q '^CapPrm:[[:space:]]*0000000000001000\$' /proc/$gpid/status"
gmemd-vm-test $GMEMD_VM_TESTS
rc=$?
# Restarts (issue 4, kmod): gmemd SIGKILLed and started again by gmemd-vm-test itself (same command
# line as above), which then stops the last one; so it runs after every other case, in the default run.
if [ -z "${GMEMD_VM_TESTS:-}" ]; then
	GMEMD_VM_PID=$gpid gmemd-vm-test restart || rc=1
fi
if [ "${GMEMD_VM_NUMA:-}" = 1 ]; then
	# gmemctl, as an operator types it: a guest on node 0, the pool per node in status.
	t "gmemctl-create-node" gmemctl create --node 0 numa0 4M
	t "gmemctl-status-nodes" sh -c 'gmemctl status | grep -q "^node 0: *60M free of 64M" &&
		gmemctl status --json | grep -q "\"node\": *1"'
	t "gmemctl-create-node-usage" sh -c 'gmemctl create --node x g 4M; [ $? = 2 ]'
	gmemctl destroy numa0 >/dev/null 2>&1
fi
kill -TERM $gpid
wait $gpid
echo "gmem-vm: gmemd's log:"
sed 's/^/gmemd: /' "$GMEM_VM_GMEMD_LOG"
exit $rc
