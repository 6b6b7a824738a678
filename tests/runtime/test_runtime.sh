#!/usr/bin/env bash
# The container runtime on its own (no ferryd), driven by rtctl: a busybox
# container in a user namespace is started, inspected from inside and
# outside, frozen, checkpointed with CRIU, and stopped, and leaves nothing
# behind.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/container.sh"

# The service rewrites its file ten times a second: a read may catch it empty.
counter() {
	local value i
	for i in 1 2 3 4 5; do
		value=$(cat "$TEST_DIR/c1/rootfs/tmp/counter" 2>/dev/null)
		[ -n "$value" ] && break
		sleep 0.02
	done
	echo "$value"
}

mkdir -p "$TEST_DIR/share"
echo hello-from-host >"$TEST_DIR/share/hello"
chmod 755 "$TEST_DIR/share"

# --- start ---------------------------------------------------------------
write_spec c1
C1=$TEST_DIR/c1
mounts_before=$(awk '{print $5}' /proc/self/mountinfo | sort)
# Started from a subshell that exits at once: the container must outlive it.
starter_out=$(bash -c 'echo "starter=$$"; exec "$0" start "$1"' "$RTCTL" "$C1/spec.json" 2>&1)
rc=$?
expect_eq "start succeeds" "$rc" 0
[ $rc -eq 0 ] || printf '#   %s\n' "$starter_out"
starter=$(printf '%s\n' "$starter_out" | sed -n 's/^starter=//p')
expect_eq "status is running" "$(state_field c1 status)" running
INIT=$(state_field c1 init_pid)
MONITOR=$(state_field c1 monitor_pid)
check "init.pid and monitor.pid written" test -s "$C1/init.pid" -a -s "$C1/monitor.pid"
monitor_ppid=$(awk '{print $4}' /proc/"$MONITOR"/stat)
check "the monitor is not the starter's child" test "$monitor_ppid" != "$starter"
check "the monitor is in a session of its own" test "$(awk '{print $6}' /proc/"$MONITOR"/stat)" != "$(awk '{print $6}' /proc/$$/stat)"
expect_eq "init is the monitor's child" "$(awk '{print $4}' /proc/"$INIT"/stat)" "$MONITOR"
kill -TERM "$MONITOR"
sleep 0.2
expect_eq "the container survives SIGTERM to its monitor" "$(state_field c1 status)" running
check_fails "a second start is refused" "$RTCTL" start "$C1/spec.json"

# --- isolation -----------------------------------------------------------
expect_eq "pid 1 inside is init" "$(rexec c1 -- cat /proc/1/comm)" init
expect_eq "pid 1 runs the image's /sbin/init" "$(rexec c1 -- readlink /proc/1/exe)" /bin/busybox
expect_eq "init's host pid is pid 1 inside" "$(awk '/^NSpid/{print $3}' /proc/"$INIT"/status)" 1
expect_eq "hostname is the container's name" "$(rexec c1 -- hostname)" c1
expect_eq "uid_map maps 0 to $HOSTID" "$(awk '{print $1, $2, $3}' /proc/"$INIT"/uid_map)" "0 $HOSTID 65536"
expect_eq "gid_map maps 0 to $HOSTID" "$(awk '{print $1, $2, $3}' /proc/"$INIT"/gid_map)" "0 $HOSTID 65536"
expect_eq "ps shows init owned by $HOSTID" "$(ps -o uid= -p "$INIT" | tr -d ' ')" "$HOSTID"
expect_eq "init's environment has FOO=bar" "$(tr '\0' '\n' </proc/"$INIT"/environ | grep '^FOO=')" FOO=bar
# Mounts that other tests running at the same time make live below /tmp.
new_mounts=$(comm -13 <(echo "$mounts_before") <(awk '{print $5}' /proc/self/mountinfo | sort) | grep -v '^/tmp/')
expect_eq "the host's mount table gained no mount" "$new_mounts" ""
check_fails "no container mount shows in the host's mountinfo" grep -q "$TEST_DIR" /proc/self/mountinfo
expect_match "the container has its own devpts" "$(rexec c1 -- cat /proc/self/mountinfo)" " /dev/pts .* devpts "
expect_match "/dev/console is a pty of that devpts" "$(rexec c1 -- cat /proc/self/mountinfo)" " /[0-9]+ /dev/console .* devpts "
expect_match "init's stdio is the console" "$(readlink /proc/"$INIT"/fd/0)" "^/dev/console$|^/dev/pts/[0-9]+$"
expect_eq "init has no fd beyond stdio" "$(ls /proc/"$INIT"/fd | sort -n | tr '\n' ' ')" "0 1 2 "
expect_match "init is a session leader" "$(awk '{print $6}' /proc/"$INIT"/stat)" "^$INIT$"
expect_eq "the read-only mount is readable" "$(rexec c1 -- cat /mnt/share/hello)" hello-from-host
check_fails "the read-only mount is read-only" rexec c1 -- touch /mnt/share/new
expect_eq "the cgroup namespace starts at the container's cgroup" \
	"$(rexec c1 -- cat /proc/self/cgroup | grep -vc ':/$')" 0

# --- exec ----------------------------------------------------------------
expect_eq "exec id runs as root" "$(rexec c1 -- id)" "uid=0(root) gid=0(root)"
expect_eq "exec as uid 1000" "$(rexec c1 --uid 1000 --gid 1000 -- id)" "uid=1000(user) gid=1000(user)"
expect_match "exec sees its ids in /proc/self/status" "$(rexec c1 -- cat /proc/self/status)" "Uid:	0	0	0	0"
rexec c1 -- sh -c 'exit 3'
expect_eq "exec passes the exit code on" "$?" 3
rexec c1 -- sh -c 'kill -9 $$'
expect_eq "exec reports a signal as 128+N" "$?" 137
out=$(rexec c1 -- /no/such/command 2>&1)
expect_match "exec of a missing command says so" "$out" "No such file or directory"
stat_line=$(rexec c1 -- cat /proc/self/stat)
expect_eq "the exec'd process is a session leader" "$(echo "$stat_line" | awk '{print $6}')" \
	"$(echo "$stat_line" | awk '{print $1}')"
expect_eq "the exec'd process's parent is outside" "$(echo "$stat_line" | awk '{print $4}')" 0
expect_eq "exec's cwd defaults to /root" "$(rexec c1 -- pwd)" /root
expect_eq "exec --cwd" "$(rexec c1 --cwd /tmp -- pwd)" /tmp
expect_match "exec with a tty gets a pty of the container" "$(rexec c1 --tty -- tty)" "^/dev/pts/[0-9]+"
rexec c1 --pid-file "$TEST_DIR/inner.pid" -- sleep 0.3
inner=$(cat "$TEST_DIR/inner.pid")
check "exec reports the command's host pid" test "$inner" -gt 0

# --- cgroups and limits ----------------------------------------------------
CG=$CGROUP_PREFIX/c1
expect_eq "memory limit in the cgroup" "$(cat /sys/fs/cgroup/memory/$CG/memory.limit_in_bytes)" 268435456
expect_eq "cpuset in the cgroup" "$(cat /sys/fs/cgroup/cpuset/$CG/cpuset.cpus)" 0
expect_eq "pids limit in the cgroup" "$(cat /sys/fs/cgroup/pids/$CG/pids.max)" 500
check "init is in the memory cgroup" grep -qx "$INIT" /sys/fs/cgroup/memory/$CG/cgroup.procs
check "init is in the unified cgroup" grep -qx "$INIT" /sys/fs/cgroup/unified/$CG/cgroup.procs
check "state counts processes" test "$(state_field c1 processes)" -ge 3
check "state reads memory usage" test "$(state_field c1 memory_usage)" -gt 0
check "state reads cpu usage" test "$(state_field c1 cpu_usage_ns)" -gt 0

# --- freeze --------------------------------------------------------------
unfrozen=$(counter)
check "freeze" "$RTCTL" freeze "$C1"
expect_eq "status is frozen" "$(state_field c1 status)" frozen
# As it is: frozen between its truncation and its write, the file stays empty.
frozen=$(cat "$TEST_DIR/c1/rootfs/tmp/counter")
sleep 0.5
expect_eq "the counter stops while frozen" "$(cat "$TEST_DIR/c1/rootfs/tmp/counter")" "$frozen"
check_fails "exec into a frozen container is refused" rexec c1 -- true
check "unfreeze" "$RTCTL" unfreeze "$C1"
sleep 0.5
check "the counter resumes" test "$(counter)" -gt "$unfrozen"
expect_eq "status is running again" "$(state_field c1 status)" running

# --- console -------------------------------------------------------------
check "console.log has init's output" grep -q ferry-console-ok "$C1/console.log"
console_out=$( (sleep 0.3; echo 'echo console-$((40+2))'; sleep 0.5) | "$RTCTL" console "$C1" 2)
expect_match "console attach relays both ways" "$console_out" "console-42"

# --- CRIU ----------------------------------------------------------------
# A process that an exec left behind, re-parented to init, must not stop the dump.
rexec c1 -- sh -c 'sleep 1000 >/dev/null 2>&1 </dev/null &'
mkdir -p "$TEST_DIR/images"
if "$RTCTL" dump "$C1" "$TEST_DIR/images" >"$TEST_DIR/dump.out" 2>&1; then
	pass "criu dump of the running container"
else
	fail "criu dump of the running container" "$(cat "$TEST_DIR/dump.out")" \
		"$(grep -E 'Error' "$TEST_DIR/images/dump.log" | head -5)"
fi
before=$(counter)
sleep 0.4
check "the container keeps running after the dump" test "$(counter)" -gt "$before"

# --- stop ----------------------------------------------------------------
check "graceful stop" "$RTCTL" stop c1 "$C1" 10
expect_eq "status is stopped" "$(state_field c1 status)" stopped
check "init ran its shutdown actions" grep -q ferry-shutdown "$C1/console.log"
check "init is gone" gone "$INIT"
check "the monitor is gone" gone "$MONITOR"
for f in monitor.pid init.pid monitor.sock; do
	check_fails "$f removed" test -e "$C1/$f"
done
check "exit.status recorded" test -s "$C1/exit.status"
leftover=$(ls -d /sys/fs/cgroup/*/"$CG" 2>/dev/null)
expect_eq "no cgroup left" "$leftover" ""
check_fails "no mount left" grep -q "$TEST_DIR" /proc/self/mountinfo
check "the monitor logged" grep -q "monitor exiting" "$TEST_DIR/log/c1/monitor.log"

check "start again" "$RTCTL" start "$C1/spec.json"
INIT=$(state_field c1 init_pid)
MONITOR=$(state_field c1 monitor_pid)
kill -KILL "$MONITOR"
sleep 0.3
check "init dies with its monitor" gone "$INIT"
check "stop cleans up after a killed monitor" "$RTCTL" stop c1 "$C1" 10
expect_eq "no cgroup left after a killed monitor" "$(ls -d /sys/fs/cgroup/*/"$CG" 2>/dev/null)" ""

check "start once more" "$RTCTL" start "$C1/spec.json"
INIT=$(state_field c1 init_pid)
check "force stop" "$RTCTL" stop c1 "$C1" 10 --force
expect_eq "init was killed" "$(state_field c1 last_exit_status)" 9
check "init is gone after force stop" gone "$INIT"
expect_eq "no cgroup left after force stop" "$(ls -d /sys/fs/cgroup/*/"$CG" 2>/dev/null)" ""

# --- errors --------------------------------------------------------------
write_spec c2 ', "init": "/sbin/nope"'
out=$("$RTCTL" start "$TEST_DIR/c2/spec.json" 2>&1)
expect_match "a missing init is reported precisely" "$out" "exec /sbin/nope: No such file or directory"
expect_eq "a failed start leaves no cgroup" "$(ls -d /sys/fs/cgroup/*/"$CGROUP_PREFIX/c2" 2>/dev/null)" ""
expect_eq "a failed start leaves no monitor" "$(state_field c2 status)" stopped

# --- privileged ----------------------------------------------------------
write_spec c3 ', "privileged": true'
chown -hR 0:0 "$TEST_DIR/c3/rootfs"
check "privileged start" "$RTCTL" start "$TEST_DIR/c3/spec.json"
INIT3=$(state_field c3 init_pid)
expect_eq "privileged: no user namespace" "$(readlink /proc/"$INIT3"/ns/user)" "$(readlink /proc/self/ns/user)"
expect_eq "privileged: exec id" "$(rexec c3 -- id)" "uid=0(root) gid=0(root)"
expect_eq "privileged: hostname" "$(rexec c3 -- hostname)" c3
check "privileged stop" "$RTCTL" stop c3 "$TEST_DIR/c3" 0 --force

# --- errors, continued ---------------------------------------------------
write_spec c5
chmod 700 "$TEST_DIR/c5"
out=$("$RTCTL" start "$TEST_DIR/c5/spec.json" 2>&1)
expect_match "an unreachable rootfs is reported" "$out" "not searchable by the container's root"

# --- network -------------------------------------------------------------
# A bridge of this test's own, on a /24 no route of this host uses; traffic
# stays between the bridge and the container.
make_bridge
n=${SUBNET##*.}
write_spec c4 ", \"nics\": [{\"name\": \"eth0\", \"bridge\": \"$BRIDGE\", \"hwaddr\": \"00:16:3e:aa:bb:cc\",
	\"ipv4_cidr\": \"10.213.$n.2/24\", \"ipv4_gateway\": \"10.213.$n.1\"}]"
check "start with a nic" "$RTCTL" start "$TEST_DIR/c4/spec.json"
addr=$(rexec c4 -- ip addr show eth0)
expect_match "eth0 has its address" "$addr" "inet 10\.213\.$n\.2/24"
expect_match "eth0 has its MAC" "$addr" "00:16:3e:aa:bb:cc"
expect_match "the default route goes via the bridge" "$(rexec c4 -- ip route)" "default via 10\.213\.$n\.1"
check "the container reaches the host through the bridge" rexec c4 -- ping -c1 -W2 "10.213.$n.1"
host_veth=$(ip -o link show master "$BRIDGE" | awk -F': ' '{print $2}' | cut -d@ -f1)
check "the host end is on the bridge" test -n "$host_veth"
expect_match "spec.json records the host end" "$(cat "$TEST_DIR/c4/spec.json")" "\"host_name\": \"$host_veth\""
mkdir -p "$TEST_DIR/images4"
if "$RTCTL" dump "$TEST_DIR/c4" "$TEST_DIR/images4" >"$TEST_DIR/dump4.out" 2>&1; then
	pass "criu dump of a container with a veth"
else
	fail "criu dump of a container with a veth" "$(cat "$TEST_DIR/dump4.out")"
fi
check "stop the container with a nic" "$RTCTL" stop c4 "$TEST_DIR/c4" 0 --force
check_fails "the host veth is gone" ip link show "$host_veth"
