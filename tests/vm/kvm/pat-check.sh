#!/bin/sh
# pat-check START END: passes (exit 0) when the kernel's PAT memtype list covers the physical range
# [START, END) entirely with write-back entries. Any overlapping entry of another type (uncached-minus,
# write-combining...) fails it, and so does a part of the range without an entry: for memory that is not
# System RAM, no entry means PAT gives a mapping uncached-minus. Needs debugfs at /sys/kernel/debug.
list=/sys/kernel/debug/x86/pat_memtype_list
start=$(($1)) end=$(($2))
[ -r $list ] || { echo "pat-check: $list is not readable (debugfs mounted?)" >&2; exit 1; }
covered=0 bad=0
# Lines: "PAT: [mem 0x0000000020000000-0x0000000024000000] write-back" (END exclusive)
sed -n 's/^PAT: \[mem \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\)\] \(.*\)$/\1 \2 \3/p' $list >/tmp/pat.$$
while read -r s e type; do
	s=$((s)) e=$((e))
	[ $e -le $start ] || [ $s -ge $end ] && continue
	if [ "$type" != write-back ]; then
		printf 'pat-check: [%#x-%#x) is %s\n' $s $e "$type" >&2
		bad=1
	fi
	[ $s -lt $start ] && s=$start
	[ $e -gt $end ] && e=$end
	covered=$((covered + e - s))
done </tmp/pat.$$
rm -f /tmp/pat.$$
if [ $covered -lt $((end - start)) ]; then
	printf 'pat-check: only %#x of the %#x bytes at %#x have a memtype entry\n' $covered $((end - start)) $start >&2
	bad=1
fi
exit $bad
