#!/usr/bin/env bash
# A Debian bookworm container with systemd as init and two real services
# (nginx, redis), as ferry's Debian image ships them, checkpointed and
# restored: after a stateful stop and restore, and after a stateful
# snapshot, systemd still runs its units (a service restarts), nginx answers
# from the host, also on the keep-alive connection opened before the
# checkpoint, and redis still holds the key set before it.
# Builds the image with tests/image/imgctl (debootstrap on first use, then
# the cached tree in /var/cache/ferry/debian: seconds).
source "$(dirname "$0")/../lib.sh"
TEST_DIR_PREFIX=ferry-ckdeb
source "$(dirname "$0")/../runtime/container.sh"
source "$(dirname "$0")/../debian_lib.sh"

test_cleanup() { [ -z "${HTTP_PID:-}" ] || kill "$HTTP_PID" 2>/dev/null; }

out=$("$IMGCTL" build-debian "$TEST_DIR/store" "$CACHE" 2>&1)
rc=$?
expect_eq "the debian image builds" "$rc" 0
[ "$rc" -eq 0 ] || { printf '#   %s\n' "$out" | tail -5; exit 0; }
tarball=$(awk '$1 == "path:" {print $2}' <<<"$out")

make_bridge fbrdb
D1=$TEST_DIR/d1
mkdir -p "$D1" && chmod 711 "$D1"
check "the image unpacks with the container's id shift" "$IMGCTL" unpack "$tarball" "$D1/rootfs" "$HOSTID" "$HOSTID"
IP=$SUBNET.2
write_spec d1 ", \"init\": \"/sbin/init\", \"nics\": [{\"name\": \"eth0\", \"bridge\": \"$BRIDGE\",
	\"hwaddr\": \"00:16:3e:c6:00:02\", \"ipv4_cidr\": \"$IP/24\", \"ipv4_gateway\": \"$SUBNET.1\"}]"
sed -i 's/"limits_memory": [0-9]*/"limits_memory": 1073741824/; s/"limits_cpu": "[^"]*"/"limits_cpu": "0-1"/' "$D1/spec.json"

system_state() { rexec d1 -- systemctl is-system-running 2>/dev/null; }
http_code() { curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$IP/"; }
services_answer() { # WHEN
	expect_match "systemd runs ($1)" "$(system_state)" '^(running|degraded)$'
	expect_eq "nginx and redis are active ($1)" "$(rexec d1 -- systemctl is-active nginx redis-server | tr '\n' ' ')" "active active "
	expect_eq "nginx answers the host ($1)" "$(http_code)" 200
	check "the keep-alive connection opened before still works ($1)" keepalive_get
	expect_eq "redis answers ($1)" "$(rexec d1 -- redis-cli ping)" PONG
	expect_eq "redis still holds its key ($1)" "$(rexec d1 -- redis-cli get ferry-key)" "$KEY"
}

check "start the debian container" "$RTCTL" start "$D1/spec.json"
st=$(wait_booted)
expect_match "systemd boots to running/degraded ($st)" "$st" '^(running|degraded)$'
expect_eq "nginx answers the host" "$(http_code)" 200
KEY=value-$RANDOM
expect_eq "redis takes a key" "$(rexec d1 -- redis-cli set ferry-key "$KEY")" OK
coproc HTTP { exec socat - "TCP:$IP:80,connect-timeout=5"; }
HTTP_PID=$HTTP_PID
check "a keep-alive HTTP connection from the host" keepalive_get

mkdir -p "$TEST_DIR/stop"
out=$("$RTCTL" checkpoint d1 "$D1" "$TEST_DIR/stop" 2>&1)
rc=$?
expect_eq "stateful stop of the debian container" "$rc" 0
[ "$rc" -eq 0 ] || printf '#   %s\n' "$out"
echo "# debian: $(grep -o 'dump [0-9]* ms' <<<"$out")"
expect_eq "it is stopped" "$(state_field d1 status)" stopped
out=$("$RTCTL" restore "$D1/spec.json" "$TEST_DIR/stop" 2>&1)
rc=$?
expect_eq "restore the debian container" "$rc" 0
[ "$rc" -eq 0 ] || printf '#   %s\n' "$out"
echo "# debian: $(grep -o 'restore [0-9]* ms' <<<"$out")"
services_answer "after a stateful stop and restore"
check "systemd restarts a service after the restore" rexec d1 -- systemctl restart nginx
expect_eq "nginx answers after its restart" "$(http_code)" 200

mkdir -p "$TEST_DIR/snap"
out=$("$RTCTL" checkpoint d1 "$D1" "$TEST_DIR/snap" --leave-running 2>&1)
rc=$?
expect_eq "stateful snapshot of the restored container" "$rc" 0
[ "$rc" -eq 0 ] || printf '#   %s\n' "$out"
check "stop it" "$RTCTL" stop d1 "$D1" 0 --force
out=$("$RTCTL" restore "$D1/spec.json" "$TEST_DIR/snap" 2>&1)
rc=$?
expect_eq "restore the snapshot" "$rc" 0
[ "$rc" -eq 0 ] || printf '#   %s\n' "$out"
expect_eq "nginx answers after the snapshot's restore" "$(http_code)" 200
expect_eq "redis still holds its key after the snapshot's restore" "$(rexec d1 -- redis-cli get ferry-key)" "$KEY"
check "a clean shutdown through systemd" "$RTCTL" stop d1 "$D1" 30
expect_eq "stopped at the end" "$(state_field d1 status)" stopped
