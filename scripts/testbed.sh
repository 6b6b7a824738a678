#!/usr/bin/env bash
# The multi-host test bed: N "hosts" on this machine, each a network
# namespace with its own ferryd, joined by veths to a "LAN" bridge in one
# more namespace. Tests, benchmarks and the demo use it.
#
#   testbed.sh up DIR N        bring up hosts h1..hN, state under DIR
#   testbed.sh down DIR        stop and remove everything `up` made
#   testbed.sh env DIR hN      print exports to act as host N (FERRY_DIR, FERRY_CONF)
#   testbed.sh exec DIR hN CMD...  run CMD in host N's network namespace
#   testbed.sh addr DIR hN     host N's LAN address
#   testbed.sh start DIR hN    start host N's ferryd again (after a test killed it)
#   testbed.sh lan-exec DIR CMD...  run CMD on the LAN itself (10.X.Y.254)
#
# Layout (X.Y: a private /24 picked at random, unused on this machine):
#
#   netns ferry-lan-ID: bridge "lan" (10.X.Y.254/24, for probes), ports h1..hN
#   netns ferry-ID-hN:  ferryd's container bridge "fbr0" = 10.X.Y.N/24, which
#                       is both the host's LAN address (HTTPS on :8443) and its
#                       containers' gateway; its veth "lan0" is a port of
#                       fbr0, so every host's containers share one L2 segment
#                       (a container keeps its address when it moves). Host N
#                       hands out 10.X.Y.(100+15(N-1)) .. +14 only.
#
# Each host's state (DIR/hN: ferryd's --root) is an ext4 filesystem of its
# own, on a loop device (host_disk).
#
# ID is a short hash of DIR, so beds in different directories never clash.
# ferryd runs under `nsenter --net` (not `ip netns exec`, which would give it
# a fresh /sys without the cgroup mounts). Each host's ferry client (FERRY_CONF
# = DIR/hN/conf) uses that host's server certificate as its client
# certificate, and adds every other host as a remote with the trust password:
# so each daemon trusts every other daemon's server certificate, which is what
# a migration target presents when it pulls from a source.
set -u

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FERRY_BUILD:-$top/build}
FERRYD=${FERRYD:-$BUILD/src/daemon/ferryd}
FERRY=${FERRY:-$BUILD/src/cli/ferry}
BRIDGE=fbr0
HTTPS_PORT=8443
MAX_HOSTS=10

die() { echo "testbed: $*" >&2; exit 1; }

# Running, not a zombie (its state from /proc, after the command's name).
pid_alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}

bed_id() { printf '%s' "$1" | sha256sum | cut -c1-8; }
lan_ns() { echo "ferry-lan-$(bed_id "$1")"; }
host_ns() { echo "ferry-$(bed_id "$1")-$2"; }
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }

# Every IPv4 address and route of this machine, in every named namespace.
addresses_in_use() {
	ip -4 -o addr show 2>/dev/null
	ip -4 route show table all 2>/dev/null
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		ip -n "$ns" -4 -o addr show 2>/dev/null
		ip -n "$ns" -4 route show table all 2>/dev/null
	done
}

pick_subnet() {
	local used i x y
	used=$(addresses_in_use)
	for i in $(seq 100); do
		x=$((RANDOM % 150 + 100)) y=$((RANDOM % 256))
		grep -q "10\.$x\.$y\." <<<"$used" || { echo "10.$x.$y"; return 0; }
	done
	return 1
}

ferryd_wait() {
	local root=$1 pid=$2 i
	for i in $(seq 200); do
		[ -S "$root/unix.socket" ] && FERRY_DIR=$root "$FERRY" info >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# ferry as host N's own client (its unix socket and its client config).
host_ferry() {
	local dir=$1 h=$2
	shift 2
	FERRY_DIR=$dir/$h FERRY_CONF=$dir/$h/conf "$FERRY" "$@"
}

# Start host N's ferryd in its namespace (again, after a crash: its bridge,
# subnet and HTTPS address are kept in its database).
host_start() {
	local dir=$1 h=$2 subnet=$3 i=${2#h} first pid
	first=$((100 + 15 * (i - 1)))
	nsenter --net="/run/netns/$(host_ns "$dir" "$h")" -- setsid "$FERRYD" --root "$dir/$h" --bridge "$BRIDGE" \
		--bridge-cidr "$subnet.$i/24" --address-range "$subnet.$first-$subnet.$((first + 14))" \
		>>"$dir/$h.out" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/$h.pid"
	ferryd_wait "$dir/$h" "$pid" || { tail -20 "$dir/$h.out" >&2; die "ferryd of $h did not start"; }
}

# Host N's state directory, a filesystem of its own: ext4 on a sparse file
# (DIR/hN.disk) through a loop device, freed when it is unmounted. Separate
# machines share no inode, file handle or device number, nor a path: what
# one host's CRIU recorded of its files must not happen to work on another
# because both are the same filesystem.
host_disk() {
	local dir=$1 h=$2
	mkdir -p "$dir/$h"
	truncate -s "${FERRY_BED_DISK:-16G}" "$dir/$h.disk" || die "disk image for $h"
	mkfs.ext4 -q -F -m 0 -E nodiscard "$dir/$h.disk" || die "mkfs.ext4 for $h"
	mount -o loop "$dir/$h.disk" "$dir/$h" || die "mount the disk of $h"
	rmdir "$dir/$h/lost+found"
}

cmd_up() {
	local dir=$1 n=$2
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le $MAX_HOSTS ] || die "N must be 1..$MAX_HOSTS"
	[ -x "$FERRYD" ] || die "no ferryd at $FERRYD (set FERRY_BUILD)"
	mkdir -p "$dir" || die "mkdir $dir"
	dir=$(cd "$dir" && pwd)
	[ ! -e "$dir/bed.env" ] || die "a bed is already up in $dir"
	# Containers' root (a high uid on the host) must get through to their rootfs.
	chmod 711 "$dir"
	local lan subnet password
	lan=$(lan_ns "$dir")
	ip netns list | grep -q "^$lan\b" && die "namespace $lan exists (stale bed? testbed.sh down $dir)"
	subnet=$(pick_subnet) || die "no free /24 found"
	password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	printf 'SUBNET=%s\nHOSTS=%s\nPASSWORD=%s\n' "$subnet" "$n" "$password" >"$dir/bed.env"

	ip netns add "$lan" || die "ip netns add $lan"
	ip -n "$lan" link set lo up
	ip -n "$lan" link add lan type bridge
	ip -n "$lan" addr add "$subnet.254/24" dev lan
	ip -n "$lan" link set lan up

	local i h ns
	for i in $(seq "$n"); do
		h=h$i ns=$(host_ns "$dir" "$h")
		ip netns add "$ns" || die "ip netns add $ns"
		ip -n "$ns" link set lo up
		# Both ends made directly in their namespaces: no name on this host.
		ip link add name lan0 netns "$ns" type veth peer name "$h" netns "$lan" || die "veth for $h"
		ip -n "$lan" link set "$h" master lan up
		host_disk "$dir" "$h"
		host_start "$dir" "$h" "$subnet"
		# The LAN veth joins the containers' bridge, which holds the host's address.
		ip -n "$ns" link set lan0 master "$BRIDGE" up || die "lan0 of $h"
		host_ferry "$dir" "$h" config set core.https_address "$subnet.$i:$HTTPS_PORT" || die "https on $h"
		host_ferry "$dir" "$h" config set core.trust_password "$password" || die "trust password on $h"
		# The host's client identity is its server's.
		mkdir -p "$dir/$h/conf"
		install -m 0644 "$dir/$h/server.crt" "$dir/$h/conf/client.crt"
		install -m 0600 "$dir/$h/server.key" "$dir/$h/conf/client.key"
	done
	local j
	for i in $(seq "$n"); do
		for j in $(seq "$n"); do
			[ "$i" != "$j" ] || continue
			FERRY_DIR=$dir/h$i FERRY_CONF=$dir/h$i/conf in_ns "$(host_ns "$dir" "h$i")" \
				"$FERRY" remote add "h$j" "$subnet.$j:$HTTPS_PORT" --password "$password" \
				--accept-certificate </dev/null >/dev/null || die "h$i: remote add h$j"
		done
	done
	echo "testbed: $n hosts up in $dir on $subnet.0/24"
}

cmd_down() {
	local dir=$1
	[ -d "$dir" ] || return 0
	dir=$(cd "$dir" && pwd)
	local lan pidf h ns pid c i
	lan=$(lan_ns "$dir")
	for pidf in "$dir"/h*.pid; do
		[ -e "$pidf" ] || continue
		h=$(basename "$pidf" .pid) ns=$(host_ns "$dir" "$h")
		pid=$(cat "$pidf")
		if kill -0 "$pid" 2>/dev/null; then
			# Bounded: an instance held by a hung operation must not hang the teardown.
			for c in $(FERRY_DIR=$dir/$h timeout 10 "$FERRY" list --format csv -c n 2>/dev/null); do
				FERRY_DIR=$dir/$h timeout 20 "$FERRY" delete --force "$c" >/dev/null 2>&1
			done
			kill -TERM "$pid" 2>/dev/null
			for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
			kill -KILL "$pid" 2>/dev/null
		fi
		# Monitors that outlived their ferryd: only this bed's.
		local monitors
		monitors=$(cat "$dir/$h"/containers/*/monitor.pid 2>/dev/null | awk '{print $1}')
		for pid in $monitors; do
			kill -KILL "$pid" 2>/dev/null
		done
		kill_cgroup_leftovers "$dir/$h"
		for pid in $monitors; do
			for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		done
		for i in $(seq 40); do
			[ -z "$(cat /sys/fs/cgroup/*/"$(cgroup_parent "$dir/$h")"/*/cgroup.procs 2>/dev/null)" ] && break
			sleep 0.05
		done
		if [ -e "/run/netns/$ns" ]; then
			in_ns "$ns" "$FERRYD" --root "$dir/$h" --bridge "$BRIDGE" --purge >/dev/null 2>&1
			ip netns del "$ns"
		fi
		rm -f "$pidf"
	done
	[ ! -e "/run/netns/$lan" ] || ip netns del "$lan"
	awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
	rm -rf "$dir"/h[0-9]* "$dir/bed.env"
	rmdir "$dir" 2>/dev/null
	return 0
}

# ferryd's cgroup parent for a root: "ferry-" and the FNV-1a hash of the
# root's absolute path (instance_cgroup_parent in src/daemon/instance.c).
cgroup_parent() {
	python3 -c 'import sys
h = 2166136261
for b in sys.argv[1].encode(): h = ((h ^ b) * 16777619) & 0xffffffff
print("ferry-%08x" % h)' "$1"
}

# Processes left in a host's container cgroups (its ferryd died before it
# could stop them): only those, by pid.
kill_cgroup_leftovers() {
	local parent pid
	parent=$(cgroup_parent "$1")
	for pid in $(cat /sys/fs/cgroup/*/"$parent"/*/cgroup.procs 2>/dev/null | sort -u); do
		kill -KILL "$pid" 2>/dev/null
	done
}

bed_var() { sed -n "s/^$2=//p" "$1/bed.env"; }

host_check() {
	local dir=$1 h=$2
	[ -e "$dir/bed.env" ] || die "no bed in $dir"
	[[ $h =~ ^h[0-9]+$ ]] && [ "${h#h}" -le "$(bed_var "$dir" HOSTS)" ] || die "no host $h in $dir"
}

case "${1:-}" in
up)
	[ $# -eq 3 ] || die "usage: testbed.sh up DIR N"
	cmd_up "$2" "$3"
	;;
down)
	[ $# -eq 2 ] || die "usage: testbed.sh down DIR"
	cmd_down "$2"
	;;
env)
	[ $# -eq 3 ] || die "usage: testbed.sh env DIR hN"
	dir=$(cd "$2" && pwd) || exit 1
	host_check "$dir" "$3"
	printf 'export FERRY_DIR=%q FERRY_CONF=%q\n' "$dir/$3" "$dir/$3/conf"
	;;
exec)
	[ $# -ge 4 ] || die "usage: testbed.sh exec DIR hN CMD..."
	dir=$(cd "$2" && pwd) || exit 1
	host_check "$dir" "$3"
	h=$3
	shift 3
	FERRY_DIR=$dir/$h FERRY_CONF=$dir/$h/conf exec nsenter --net="/run/netns/$(host_ns "$dir" "$h")" -- "$@"
	;;
start)
	# Start host N's ferryd again (a test killed it by its pid file).
	[ $# -eq 3 ] || die "usage: testbed.sh start DIR hN"
	dir=$(cd "$2" && pwd) || exit 1
	host_check "$dir" "$3"
	pid=$(cat "$dir/$3.pid" 2>/dev/null)
	# A ferryd just killed may take a moment to exit (or stay a zombie).
	for i in $(seq 50); do
		[ -n "$pid" ] && pid_alive "$pid" || break
		sleep 0.1
	done
	[ -z "$pid" ] || ! pid_alive "$pid" || die "ferryd of $3 is running (pid $pid)"
	host_start "$dir" "$3" "$(bed_var "$dir" SUBNET)"
	;;
addr)
	[ $# -eq 3 ] || die "usage: testbed.sh addr DIR hN"
	dir=$(cd "$2" && pwd) || exit 1
	host_check "$dir" "$3"
	echo "$(bed_var "$dir" SUBNET).${3#h}"
	;;
lan-exec)
	# A third place on the LAN (10.X.Y.254): probes and clients.
	[ $# -ge 3 ] || die "usage: testbed.sh lan-exec DIR CMD..."
	dir=$(cd "$2" && pwd) || exit 1
	shift 2
	exec nsenter --net="/run/netns/$(lan_ns "$dir")" -- "$@"
	;;
*)
	die "usage: testbed.sh up DIR N | down DIR | env DIR hN | exec DIR hN CMD... | addr DIR hN | start DIR hN | lan-exec DIR CMD..."
	;;
esac
