# Sourced by the tests of tests/runtime and tests/checkpoint (after
# ../lib.sh): rtctl, a private test directory and cgroup prefix, busybox root
# filesystems owned by the container's id range, spec.json files, a bridge of
# the test's own, and a cleanup that leaves nothing behind. A test may define
# test_cleanup, which runs first.

RTCTL=$BUILD/tests/runtime/rtctl
HOSTID=1000000
CGROUP_PREFIX=ferry-test-$$

if [ ! -x "$RTCTL" ]; then
	echo "Bail out! $RTCTL not built"
	exit 1
fi

TEST_DIR=$(mktemp -d "/tmp/${TEST_DIR_PREFIX:-ferry-rt}.XXXXXX")
# The container's root (host uid $HOSTID) must be able to reach its rootfs.
chmod 711 "$TEST_DIR"
# What every container gets bound read-only at /mnt/share (write_spec).
mkdir -p "$TEST_DIR/share"
echo hello-from-host >"$TEST_DIR/share/hello"
chmod 755 "$TEST_DIR/share"

cleanup() {
	local dir pid h
	declare -F test_cleanup >/dev/null && test_cleanup
	for dir in "$TEST_DIR"/*/; do
		[ -f "$dir/spec.json" ] || continue
		"$RTCTL" stop x "$dir" 0 --force >/dev/null 2>&1
		pid=$(awk '{print $1}' "$dir/monitor.pid" 2>/dev/null)
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done
	for h in /sys/fs/cgroup/*/; do
		[ -d "$h$CGROUP_PREFIX" ] || continue
		find "$h$CGROUP_PREFIX" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	if [ -n "${BRIDGE:-}" ]; then
		# Host ends still on the bridge (a killed monitor's); deleting one
		# deletes its pair.
		for h in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
			ip link del "$h" 2>/dev/null
		done
		ip link del "$BRIDGE" 2>/dev/null
	fi
	awk -v d="$TEST_DIR" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
	[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$TEST_DIR"
}
trap cleanup EXIT

# A busybox root filesystem owned by the container's id range, as ferry's
# images are on disk.
make_rootfs() {
	local rootfs=$1 applet
	mkdir -p "$rootfs"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin,var/log,run,mnt}
	cp /bin/busybox "$rootfs/bin/busybox"
	for applet in $(/bin/busybox --list-full); do
		[ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
	done
	# A service that counts (for freeze), and shutdown output (for stop).
	cat >"$rootfs/etc/inittab" <<-'EOF'
	::sysinit:/bin/echo ferry-console-ok
	::once:/bin/sh -c 'i=0; while :; do i=$((i+1)); echo $i >/tmp/counter; sleep 0.1; done'
	::respawn:/bin/sh
	::shutdown:/bin/echo ferry-shutdown
	EOF
	printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\ntty:x:5:\nuser:x:1000:\n' >"$rootfs/etc/group"
	chmod 1777 "$rootfs/tmp"
	chmod 700 "$rootfs/root"
	# chown clears setuid/setgid bits: put them back.
	local setid
	setid=$(find "$rootfs" -perm /6000 -type f -printf '%m %p\n')
	chown -hR "$HOSTID:$HOSTID" "$rootfs"
	[ -z "$setid" ] || printf '%s\n' "$setid" | while read -r mode path; do chmod "$mode" "$path"; done
}

# write_spec NAME [EXTRA_JSON_FIELDS]: the container's state dir and spec.json.
write_spec() {
	local name=$1 extra=${2:-}
	local dir=$TEST_DIR/$name
	mkdir -p "$dir"
	chmod 711 "$dir"
	[ -d "$dir/rootfs" ] || make_rootfs "$dir/rootfs"
	cat >"$dir/spec.json" <<-EOF
	{"name": "$name", "dir": "$dir", "rootfs": "$dir/rootfs", "log_dir": "$TEST_DIR/log/$name",
	 "cgroup": "$CGROUP_PREFIX/$name", "idmap_hostid": $HOSTID, "idmap_range": 65536,
	 "limits_memory": 268435456, "limits_cpu": "0", "limits_processes": 500,
	 "environment": ["FOO=bar"],
	 "mounts": [{"source": "$TEST_DIR/share", "target": "/mnt/share", "readonly": true}]
	 $extra}
	EOF
}

state_field() { "$RTCTL" state "$1" "$TEST_DIR/$1" | sed -n "s/^$2=//p"; }
rexec() {
	local name=$1
	shift
	"$RTCTL" exec "$name" "$TEST_DIR/$name" "$@"
}
# A process is gone when it has no /proc entry or is a zombie waiting for
# whoever adopted it.
gone() { [ ! -e /proc/"$1"/stat ] || [ "$(awk '{print $3}' /proc/"$1"/stat)" = Z ]; }
# make_bridge: a bridge of this test's own ($BRIDGE) on a /24 no route of
# this host uses ($SUBNET.0/24, the bridge is $SUBNET.1).
make_bridge() {
	local n
	BRIDGE=${1:-fbrrt}$(printf '%05d' $(($$ % 100000)))
	for n in $(seq 200 254); do
		ip -4 route | grep -q "^10\.213\.$n\." || break
	done
	SUBNET=10.213.$n
	ip link add "$BRIDGE" type bridge && ip addr add "$SUBNET.1/24" dev "$BRIDGE" && ip link set "$BRIDGE" up
}
