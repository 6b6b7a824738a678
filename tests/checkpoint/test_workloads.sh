#!/usr/bin/env bash
# Checkpoint/restore of the kernel objects a real workload holds, each
# checked by the workload itself: small static programs
# (tests/checkpoint/workloads/*.c) run in a busybox container, keep state in
# one kind of object each and report "OK <ticks> ..." or "FAIL <ticks>
# reason" in /tmp/wl/NAME.status:
#   tree       children, a grandchild and an unreaped zombie
#   threads    five threads, a mutex, a condition variable, TLS
#   ipc        unix stream and datagram sockets (named and pairs), a FIFO,
#              with data in flight
#   fds        timerfd, an interval timer, eventfd, epoll, inotify,
#              signalfd, a pending signal
#   shm_locks  SysV and POSIX shared memory, flock and fcntl locks
#   kobjs      a sealed memfd, SysV semaphores and a message queue, a POSIX
#              timer, connected UDP sockets, a pidfd
# The same set runs in an unprivileged container (the default) and a
# privileged one; each goes through stateful stops, a stateful snapshot and
# restores, and after each the workloads must still say OK and count on.
source "$(dirname "$0")/../lib.sh"
TEST_DIR_PREFIX=ferry-wl
source "$(dirname "$0")/../runtime/container.sh"

WORKLOADS=(tree threads ipc fds shm_locks kobjs)
WL_BIN=$BUILD/tests/checkpoint
for w in "${WORKLOADS[@]}"; do
	[ -x "$WL_BIN/$w" ] || { echo "Bail out! $WL_BIN/$w not built"; exit 1; }
done

make_bridge fbrwl

# setup_container NAME IP_SUFFIX [privileged]
setup_container() {
	local name=$1 ip=$2 privileged=${3:-}
	local extra=", \"nics\": [{\"name\": \"eth0\", \"bridge\": \"$BRIDGE\", \"hwaddr\": \"00:16:3e:c5:00:$ip\",
		\"ipv4_cidr\": \"$SUBNET.$ip/24\", \"ipv4_gateway\": \"$SUBNET.1\"}]"
	[ -z "$privileged" ] || extra+=", \"privileged\": true"
	write_spec "$name" "$extra"
	local rootfs=$TEST_DIR/$name/rootfs w
	for w in "${WORKLOADS[@]}"; do
		cp "$WL_BIN/$w" "$rootfs/usr/bin/$w"
	done
	{
		echo '::sysinit:/bin/echo ferry-console-ok'
		for w in "${WORKLOADS[@]}"; do echo "::once:/usr/bin/$w"; done
		echo '::respawn:/bin/sh'
	} >"$rootfs/etc/inittab"
	# A privileged container's files belong to the host's root.
	if [ -n "$privileged" ]; then
		chown -R 0:0 "$rootfs"
	else
		chown -R "$HOSTID:$HOSTID" "$rootfs/usr/bin" "$rootfs/etc/inittab"
	fi
}

status_of() { cat "$TEST_DIR/$1/rootfs/tmp/wl/$2.status" 2>/dev/null; }
ticks_of() { status_of "$1" "$2" | awk '{print $2}'; }

# wait_workloads NAME MIN_TICKS_FILE|- [go]: until every workload reports
# more ticks than recorded (and go=done if asked), at most 10 s.
wait_workloads() {
	local name=$1 want_go=${3:-} i w ready
	for i in $(seq 100); do
		ready=1
		for w in "${WORKLOADS[@]}"; do
			local st t
			st=$(status_of "$name" "$w")
			t=$(awk '{print $2}' <<<"$st")
			[ -n "$t" ] && [ "$t" -gt "${BEFORE[$w]:-2}" ] || ready=0
			[ -z "$want_go" ] || [[ "$st" == *go=done* ]] || [[ "$st" == FAIL* ]] || ready=0
		done
		[ "$ready" -eq 1 ] && return 0
		sleep 0.1
	done
	return 1
}

record_ticks() {
	local w
	for w in "${WORKLOADS[@]}"; do BEFORE[$w]=$(ticks_of "$1" "$w"); done
}

# expect_all_ok NAME WHEN: every workload says OK and counted on since record_ticks.
expect_all_ok() {
	local name=$1 when=$2 w st
	for w in "${WORKLOADS[@]}"; do
		st=$(status_of "$name" "$w")
		expect_match "$name: $w OK $when" "$st" '^OK '
		check "$name: $w continued $when (${BEFORE[$w]:-?} -> $(awk '{print $2}' <<<"$st"))" \
			test "$(awk '{print $2}' <<<"$st")" -gt "${BEFORE[$w]:-0}"
	done
}

checkpoint() { # NAME IMAGES [rtctl options]
	local name=$1 images=$2
	shift 2
	rm -rf "$images" && mkdir -p "$images"
	OUT=$("$RTCTL" checkpoint "$name" "$TEST_DIR/$name" "$images" "$@" 2>&1)
}
restore() { OUT=$("$RTCTL" restore "$TEST_DIR/$1/spec.json" "$2" 2>&1); }

run_workloads() {
	local name=$1 cycle rc
	declare -gA BEFORE=()
	check "$name: start" "$RTCTL" start "$TEST_DIR/$name/spec.json"
	wait_workloads "$name"
	expect_all_ok "$name" "before the checkpoint"
	record_ticks "$name"

	checkpoint "$name" "$TEST_DIR/$name.img"
	rc=$?
	[ "$rc" -eq 0 ] || printf '#   %s\n' "$OUT"
	expect_eq "$name: stateful stop" "$rc" 0
	expect_eq "$name: stopped" "$(state_field "$name" status)" stopped
	sleep 0.3
	restore "$name" "$TEST_DIR/$name.img"
	rc=$?
	[ "$rc" -eq 0 ] || printf '#   %s\n' "$OUT"
	expect_eq "$name: restore" "$rc" 0
	# What the workloads wait for: a file in the inotify-watched directory,
	# SIGUSR1 for the signalfd, then the go for the in-flight checks.
	rexec "$name" -- sh -c 'touch /tmp/wl/watched/after-restore; kill -USR1 $(cat /tmp/wl/fds.pid); touch /tmp/wl/go'
	wait_workloads "$name" - go
	expect_all_ok "$name" "after a stateful stop and restore"
	for w in ipc fds kobjs; do
		expect_match "$name: $w's in-flight checks ran after the restore" "$(status_of "$name" $w)" 'go=done'
	done

	# Still checkpointable after a restore: a snapshot, then more stops.
	record_ticks "$name"
	checkpoint "$name" "$TEST_DIR/$name.snap" --leave-running
	expect_eq "$name: stateful snapshot of the restored container" "$?" 0
	wait_workloads "$name"
	expect_all_ok "$name" "after the snapshot (left running)"
	check "$name: stop" "$RTCTL" stop "$name" "$TEST_DIR/$name" 0 --force
	restore "$name" "$TEST_DIR/$name.snap"
	rc=$?
	[ "$rc" -eq 0 ] || printf '#   %s\n' "$OUT"
	expect_eq "$name: restore the snapshot" "$rc" 0
	record_ticks "$name"
	wait_workloads "$name"
	expect_all_ok "$name" "after restoring the snapshot"
	for cycle in 1 2 3; do
		record_ticks "$name"
		checkpoint "$name" "$TEST_DIR/$name.img"
		# Once without the container's /dev directory, as on another
		# host: the restore makes it again.
		[ "$cycle" -ne 2 ] || rm -rf "$TEST_DIR/$name/dev"
		restore "$name" "$TEST_DIR/$name.img"
		expect_eq "$name: stop/restore cycle $cycle$([ "$cycle" -ne 2 ] || echo ", /dev directory gone")" "$?" 0
		wait_workloads "$name"
	done
	expect_all_ok "$name" "after three more cycles"
	check "$name: stop at the end" "$RTCTL" stop "$name" "$TEST_DIR/$name" 0 --force
}

setup_container w1 2
run_workloads w1
setup_container p1 3 privileged
run_workloads p1
check "no container cgroup left" test -z "$(find /sys/fs/cgroup/*/"$CGROUP_PREFIX" -mindepth 1 -type d 2>/dev/null)"
