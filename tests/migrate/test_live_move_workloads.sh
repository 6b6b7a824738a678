#!/usr/bin/env bash
# The kernel objects a real service holds, moved live between two hosts:
# the workloads of tests/checkpoint (tree, threads, ipc, fds, shm_locks, kobjs;
# see test_workloads.sh) run in a busybox container on h1, started from an
# exec session that ends at once so that they live on below init. The
# container then moves h1 -> h2 (stop-and-copy), h2 -> h1 (post-copy) and
# h1 -> h2 (post-copy again: a container restored by a post-copy move is
# moved again). After each move every workload must say OK, be the same
# process, and have counted on; after the first, the checks of the state
# held in flight across the move (queued socket data, a pending signal, an
# inotify event, a FIFO's bytes, a SysV message, a pidfd's child) run and
# must pass. Beside them, a process
# pinned to one CPU stays pinned (CRIU saves no affinity; ferry does).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"

WORKLOADS=(tree threads ipc fds shm_locks kobjs)
WL_BIN=$BUILD/tests/checkpoint
for w in "${WORKLOADS[@]}"; do
	[ -x "$WL_BIN/$w" ] || { echo "Bail out! $WL_BIN/$w not built"; exit 1; }
done

bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }
trap 'bed_down' EXIT

status_of() { fy "$1" exec c1 -- cat "/tmp/wl/$2.status" 2>/dev/null; }
# The pid (in the container) of workload $2 on host $1: its status file's
# writer, found by the file it holds open.
wl_pid() {
	fy "$1" exec c1 -- sh -c "for p in /proc/[0-9]*; do ls -l \$p/fd 2>/dev/null | grep -q '/tmp/wl/$2.status' && { echo \${p#/proc/}; break; }; done"
}

declare -A BEFORE=() PIDS=()
record() { # HOST
	local w
	for w in "${WORKLOADS[@]}"; do BEFORE[$w]=$(status_of "$1" "$w" | awk '{print $2}'); done
}
# wait_workloads HOST [go]: until every workload counted past BEFORE (and,
# with go, ran its in-flight checks or failed), at most 15 s.
wait_workloads() {
	local host=$1 want_go=${2:-} i w st t ready
	for i in $(seq 150); do
		ready=1
		for w in "${WORKLOADS[@]}"; do
			st=$(status_of "$host" "$w")
			t=$(awk '{print $2}' <<<"$st")
			[ -n "$t" ] && [ "$t" -gt "${BEFORE[$w]:-2}" ] || { ready=0; break; }
			[ -z "$want_go" ] || [[ "$st" == *go=done* ]] || [[ "$st" == FAIL* ]] || { ready=0; break; }
		done
		[ "$ready" -eq 1 ] && return 0
		sleep 0.1
	done
	return 1
}
# expect_all_ok HOST WHEN: each workload says OK, is the same process as
# before the first move, and counted on since record.
expect_all_ok() {
	local host=$1 when=$2 w st
	for w in "${WORKLOADS[@]}"; do
		st=$(status_of "$host" "$w")
		expect_match "$w says OK $when" "$st" '^OK '
		check "$w counted on $when (${BEFORE[$w]:-?} -> $(awk '{print $2}' <<<"$st"))" \
			test "$(awk '{print $2}' <<<"$st")" -gt "${BEFORE[$w]:-0}"
		expect_eq "$w is the same process $when" "$(wl_pid "$host" "$w")" "${PIDS[$w]}"
	done
	expect_eq "the pinned process runs on CPU $LAST_CPU alone $when" "$(mask_of "$host" "$PINNED")" "$PINNED_MASK"
	expect_eq "... and the workloads' threads on every CPU $when" \
		"$(fy "$host" exec c1 -- sh -c 'cat /proc/'"${PIDS[threads]}"'/task/*/status' | awk '/^Cpus_allowed:/ {print $2}' | sort -u)" \
		"$ALL_CPUS"
}
# busybox taskset -p prints "pid N's current affinity mask: HEX".
mask_of() { fy "$1" exec c1 -- taskset -p "$2" | awk '{print $NF}'; }


fy h1 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
for w in "${WORKLOADS[@]}"; do
	check "put $w in c1" fy h1 file push --mode 0755 --uid 0 --gid 0 "$WL_BIN/$w" "c1/usr/bin/$w"
done
start="for w in ${WORKLOADS[*]}; do /usr/bin/\$w </dev/null >/dev/null 2>&1 & done"
check "start the workloads in c1" fy h1 exec c1 -- sh -c "$start"
LAST_CPU=$(($(nproc) - 1))
PINNED_MASK=$(printf '%x' $((1 << LAST_CPU)))
check "start a process pinned to CPU $LAST_CPU" fy h1 exec c1 -- sh -c \
	"sh -c 'echo \$\$ >/tmp/pinned.pid; exec taskset -c $LAST_CPU sleep 1000007' </dev/null >/dev/null 2>&1 &"
for i in $(seq 50); do
	PINNED=$(fy h1 exec c1 -- cat /tmp/pinned.pid 2>/dev/null)
	[ -n "$PINNED" ] && break
	sleep 0.1
done
ALL_CPUS=$(awk '/^Cpus_allowed:/ {print $2}' /proc/self/status)
wait_workloads h1
for w in "${WORKLOADS[@]}"; do
	PIDS[$w]=$(wl_pid h1 "$w")
	check "$w runs in c1 (pid ${PIDS[$w]})" test -n "${PIDS[$w]}"
done
expect_all_ok h1 "before the moves"
record h1

if move_c1 h1 h2 stop-and-copy; then
	# What the workloads wait for: a file in the inotify-watched directory,
	# SIGUSR1 for the signalfd, then the go for the in-flight checks.
	check "trigger the in-flight checks" fy h2 exec c1 -- sh -c \
		'touch /tmp/wl/watched/after-restore; kill -USR1 $(cat /tmp/wl/fds.pid); touch /tmp/wl/go'
	wait_workloads h2 go
	expect_all_ok h2 "after a stop-and-copy move"
	for w in ipc fds kobjs; do
		expect_match "$w's in-flight checks passed after the move" "$(status_of h2 $w)" '^OK .*go=done'
	done
	record h2
	if move_c1 h2 h1 post-copy; then
		wait_workloads h1
		expect_all_ok h1 "after a post-copy move"
		record h1
		if move_c1 h1 h2 post-copy; then
			wait_workloads h2
			expect_all_ok h2 "after a second post-copy move"
		fi
	fi
fi
for h in h1 h2; do
	[ -z "$(names "$h")" ] || fy "$h" delete -f c1 >/dev/null
done
check "no instance is left" test -z "$(names h1)$(names h2)"
