#!/bin/bash
# drain-syscalls.sh [SPOOL_PARENT]: system calls per delivered message of a
# 20,000-message BenchmarkSchedulerDrain, counted by the kernel's syscall
# tracepoints over two seconds in the middle of the drain. Messages are
# counted by renameat(2): the drain renames each message's envelope once,
# when it claims it. SPOOL_PARENT (default the temporary directory) is
# where the spool is made: a journalled ext4 or a tmpfs against the root
# file system. Needs perf and root.
set -eu
cd "$(dirname "$0")"
dir=${1:-${TMPDIR:-/tmp}}
go test -c -o /tmp/rk-drain.test . >/dev/null
# A fresh machine may not have the tracing file system mounted; perf then
# knows no syscall events.
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
ev=""
for s in openat close read write pread64 pwrite64 newfstat newfstatat renameat renameat2 unlinkat \
	flock fcntl futex epoll_pwait epoll_ctl nanosleep sched_yield fdatasync fsync syncfs getdents64 \
	connect socket setsockopt madvise recvfrom; do
	if [ -d /sys/kernel/tracing/events/syscalls/sys_enter_$s ]; then
		ev="$ev,syscalls:sys_enter_$s"
	fi
done
out=$(mktemp)
TMPDIR=$dir RK_BENCH_MESSAGES=20000 /tmp/rk-drain.test -test.run XXX -test.bench SchedulerDrain \
	-test.benchtime 1x >"$out" 2>&1 &
bench=$!
# The benchmark measures the sink with smtp-source, queues, then opens the
# spool's journal (.journal) and drains.
for _ in $(seq 1200); do
	j=$(find "$dir" -maxdepth 3 -name .journal -newer "$out" -print -quit 2>/dev/null || true)
	[ -n "$j" ] && break
	sleep 0.05
done
sleep 0.5
perf stat -x, -e "${ev#,}" -p $bench -o /tmp/rk-drain.stat -- sleep 2
wait $bench || true
grep -E 'drained' "$out" | sed 's/.*go:[0-9]*: //'
awk -F, '/syscalls:/ { n[$3] = $1 } END {
	m = n["syscalls:sys_enter_renameat"] + n["syscalls:sys_enter_renameat2"]
	if (m == 0) { print "no claims in the window"; exit 1 }
	printf "%d messages claimed in the window\n", m
	for (k in n) if (n[k] > 0) { t += n[k]; printf "%7.2f %s\n", n[k] / m, substr(k, 20) }
	printf "%7.2f in all\n", t / m
}' /tmp/rk-drain.stat | sort -rn
rm -f "$out"
