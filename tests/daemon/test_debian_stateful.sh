#!/usr/bin/env bash
# Stateful stop, stateful snapshots and their restores through ferryd, of a
# Debian bookworm container with systemd and two services (nginx, redis):
# what a user of a real container does with them. After each restore the
# same redis process runs (its MainPID) with the key it held when the state
# was saved, nginx answers the host, systemd runs; and the container can be
# checkpointed again. A snapshot restored in place takes the container back
# to it (a key set after the snapshot is gone). Renamed, the container
# restores a snapshot under its new name and rootfs path, the rootfs a copy
# with other inodes: systemd's inotify watch on /etc/localtime and redis's
# sandbox mounts must follow (CRIU patches 0035 and 0034).
# The image comes from tests/image/imgctl (debootstrap on first use, then
# the cached tree in /var/cache/ferry/debian: seconds).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../debian_lib.sh"

ferry_setup
test_cleanup() {
	[ -z "${HTTP_PID:-}" ] || kill "$HTTP_PID" 2>/dev/null
	ferry_teardown
}
trap test_cleanup EXIT

mkdir -p "$TEST_DIR/store"
out=$("$IMGCTL" build-debian "$TEST_DIR/store" "$CACHE" 2>&1)
rc=$?
expect_eq "the debian image builds" "$rc" 0
[ "$rc" -eq 0 ] || { printf '#   %s\n' "$out" | tail -5; exit 0; }
check "import it" ferry image import "$(awk '$1 == "path:" {print $2}' <<<"$out")" --alias debian

state() { ferry list "$1" --format csv -c s; }
system_state() { ferry exec "$1" -- systemctl is-system-running 2>/dev/null; }
redis_pid() { ferry exec "$1" -- systemctl show -p MainPID --value redis-server; }
redis_key() { ferry exec "$1" -- redis-cli get ferry-key; }
address() { ferry list "$1" --format csv -c 4 | cut -d' ' -f1; }
http_code() { curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$1/"; }
# NAME WHEN PID KEY: the same redis with its key, nginx and systemd up.
came_back() {
	expect_eq "$1 runs ($2)" "$(state "$1")" RUNNING
	expect_match "... systemd runs" "$(system_state "$1")" '^(running|degraded)$'
	expect_eq "... the same redis ($3)" "$(redis_pid "$1")" "$3"
	expect_eq "... with its key" "$(redis_key "$1")" "$4"
	expect_eq "... nginx answers the host" "$(http_code "$(address "$1")")" 200
}

check "launch the debian container d1" ferry launch debian d1 -c limits.memory=1GiB
st=$(wait_booted d1)
expect_match "systemd boots to running/degraded ($st)" "$st" '^(running|degraded)$'
IP=$(address d1)
KEY1=one-$RANDOM
expect_eq "redis takes a key" "$(ferry exec d1 -- redis-cli set ferry-key "$KEY1")" OK
PID1=$(redis_pid d1)
expect_match "redis runs ($PID1)" "$PID1" '^[1-9][0-9]*$'
coproc HTTP { exec socat - "TCP:$IP:80,connect-timeout=5"; }
HTTP_PID=$HTTP_PID
check "a keep-alive HTTP connection from the host" keepalive_get
# redis on the first CPU alone (as CPUAffinity= would put it): its cgroup
# is systemd's, below the container's own (CRIU saves no affinity; ferry
# does, from the whole cgroup tree).
redis_cpus() { ferry exec d1 -- taskset -p "$(redis_pid d1)" | awk '{print $NF}'; }
check "pin redis to CPU 0" ferry exec d1 -- taskset -p 1 "$PID1"
expect_eq "redis runs on CPU 0 alone" "$(redis_cpus)" 1

# --- stateful stop and start
out=$(ferry stop d1 --stateful 2>&1)
expect_eq "ferry stop d1 --stateful" "$?" 0
[ -z "$out" ] || echo "# $out"
expect_eq "d1 is stopped" "$(state d1)" STOPPED
expect_match "ferry info says its state is saved" "$(ferry info d1)" 'Stateful: *true'
check "ferry start d1" ferry start d1
came_back d1 "after a stateful stop and start" "$PID1" "$KEY1"
expect_eq "... redis still on CPU 0 alone" "$(redis_cpus)" 1
check "the keep-alive connection still works" keepalive_get

# --- a stateful snapshot, then restored in place (running)
check "ferry snapshot d1 s1 --stateful" ferry snapshot d1 s1 --stateful
KEY2=two-$RANDOM
expect_eq "redis takes another key after the snapshot" "$(ferry exec d1 -- redis-cli set ferry-key "$KEY2")" OK
expect_match "ferry info lists s1 as stateful" "$(ferry info d1 | grep '^| s1 ')" '\| YES +\|$'
out=$(ferry restore d1 s1 2>&1)
expect_eq "ferry restore d1 s1 (d1 running)" "$?" 0
[ -z "$out" ] || echo "# $out"
came_back d1 "after restoring s1" "$PID1" "$KEY1"

# --- restored once, checkpointed again: a snapshot and a stateful stop
check "ferry snapshot d1 s2 --stateful (after a restore)" ferry snapshot d1 s2 --stateful
check "ferry stop d1 --stateful (after a restore)" ferry stop d1 --stateful
check "ferry start d1" ferry start d1
came_back d1 "after a second stateful stop and start" "$PID1" "$KEY1"
check "systemd restarts nginx" ferry exec d1 -- systemctl restart nginx
expect_eq "nginx answers after its restart" "$(http_code "$IP")" 200

# --- renamed, it restores a snapshot under its new name and rootfs path
check "stop d1" ferry stop d1 --force
check "rename d1 to d2" ferry move d1 d2
out=$(ferry restore d2 s2 2>&1)
expect_eq "ferry restore d2 s2 (taken after a restore)" "$?" 0
[ -z "$out" ] || echo "# $out"
came_back d2 "d2 from s2" "$PID1" "$KEY1"
# The sandbox is a mount namespace of its own, bound from inside the rootfs.
expect_eq "... redis's sandbox binds /usr/lib from d2's rootfs" \
	"$(ferry exec d2 -- sh -c 'awk '\''$5 == "/usr/lib" {print $4}'\'' /proc/$(systemctl show -p MainPID --value redis-server)/mountinfo')" \
	"$FERRY_DIR/containers/d2/rootfs/usr/lib"
check "ferry snapshot d2 s3 --stateful (renamed, restored)" ferry snapshot d2 s3 --stateful

check "delete d2" ferry delete --force d2
