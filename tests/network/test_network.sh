#!/usr/bin/env bash
# Host networking (src/runtime/network.c) on real kernel objects: a test
# bridge on a picked subnet, "containers" that are sleep processes in their
# own network namespaces (one of them also in a user namespace, as ferry's
# unprivileged containers are), veths between them, NAT in nftables.
# Traffic goes only to addresses on the test bridge.
source "$(dirname "$0")/../lib.sh"

NETCTL=$BUILD/tests/network/netctl
if [ ! -x "$NETCTL" ]; then
	echo "Bail out! $NETCTL is not built"
	exit 1
fi
netctl() { "$NETCTL" "$@"; }

tag=$(printf '%05d' $(($$ % 100000)))
BR=ftnb$tag     # the test bridge
CLASH=ftnc$tag  # a host interface named like the veth peer's temporary name
pids=()
host_ends=()
forward_before=$(cat /proc/sys/net/ipv4/ip_forward)

cleanup() {
	local pid h
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for h in "${host_ends[@]}" "$CLASH"; do
		ip link del "$h" 2>/dev/null
	done
	"$NETCTL" bridge-delete "$BR" >/dev/null 2>&1
	ip link del "$BR" 2>/dev/null
	echo "$forward_before" >/proc/sys/net/ipv4/ip_forward
}
trap cleanup EXIT

# A process in a new network namespace (extra unshare options: $@).
# Sets NS_PID once its namespace differs from ours.
netns_process() {
	unshare "$@" --net sleep 600 &
	NS_PID=$!
	pids+=("$NS_PID")
	local i
	for i in $(seq 100); do
		[ "$(readlink /proc/$NS_PID/ns/net 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] && return 0
		sleep 0.02
	done
	echo "Bail out! no network namespace for pid $NS_PID"
	exit 1
}

inside() { nsenter -t "$1" -n "${@:2}"; }

# ---- the bridge ----

SUBNET=$(netctl pick-subnet)
expect_match "pick-subnet gives a 10.100-250.x.1/24" "$SUBNET" '^10\.(1[0-9][0-9]|2[0-4][0-9]|250)\.[0-9]{1,3}\.1/24$'
GATEWAY=${SUBNET%/24}
PREFIX3=${GATEWAY%.1}
expect_eq "the picked subnet is not routed on this host" "$(ip -4 route show table all | grep -c "^[a-z ]*$PREFIX3\.")" 0

check "bridge-ensure creates the bridge" netctl bridge-ensure "$BR" "$SUBNET" nat
# Up (administratively: with no port yet it has no carrier).
expect_match "the bridge is up" "$(ip -o link show dev "$BR")" "<[^>]*,UP[,>]"
expect_match "the bridge has the gateway address" "$(ip -4 -o addr show dev "$BR")" "inet $GATEWAY/24 brd $PREFIX3\.255 "
expect_eq "the bridge has a MAC of its own" "$(cat /sys/class/net/$BR/addr_assign_type)" 3
BR_MAC=$(cat /sys/class/net/$BR/address)
expect_eq "IPv4 forwarding is on" "$(cat /proc/sys/net/ipv4/ip_forward)" 1
rules=$(netctl nat-rules "$BR")
expect_eq "NAT table ferry-$BR has one masquerade rule" "$(grep -c masquerade <<<"$rules")" 1
expect_match "the rule masquerades the subnet leaving through other interfaces" "$rules" \
	"ip saddr $PREFIX3\.0/24 oifname != \"$BR\" masquerade"

check "bridge-ensure a second time succeeds" netctl bridge-ensure "$BR" "$SUBNET" nat
expect_eq "still exactly one masquerade rule" "$(netctl nat-rules "$BR" | grep -c masquerade)" 1
expect_eq "still one address on the bridge" "$(ip -4 -o addr show dev "$BR" | wc -l)" 1

check "bridge-ensure without nat succeeds" netctl bridge-ensure "$BR" "$SUBNET" nonat
check_fails "without nat the bridge has no NAT table" netctl nat-rules "$BR"
check "bridge-ensure with nat again" netctl bridge-ensure "$BR" "$SUBNET" nat
expect_eq "the masquerade rule is back, once" "$(netctl nat-rules "$BR" | grep -c masquerade)" 1

# ---- a container's nic ----

netns_process
C1=$NS_PID
HOST1=$(netctl new-host-name)
MAC1=$(netctl new-hwaddr)
ADDR1=$PREFIX3.23
host_ends+=("$HOST1")
expect_match "new-host-name is veth + 8 hex digits" "$HOST1" '^veth[0-9a-f]{8}$'
expect_match "new-hwaddr is in 00:16:3e" "$MAC1" '^00:16:3e(:[0-9a-f]{2}){3}$'

# The peer's temporary name is taken on the host: it must not matter,
# since the peer is created inside the container's namespace.
ip link add "$CLASH" type bridge
check "veth-create with a peer name the host already uses" netctl veth-create "$C1" "$CLASH" "$HOST1" "$BR" "$MAC1" 1400
expect_match "the host end is up on the bridge" "$(ip -o link show dev "$HOST1")" "<[^>]*,UP[,>].* master $BR "
expect_match "the host end has the mtu" "$(ip -o link show dev "$HOST1")" "mtu 1400 "
expect_match "the host's own $CLASH is still its bridge" "$(ip -d -o link show dev "$CLASH")" " bridge "
expect_eq "the peer is not on the host" "$(ip -o link | grep -c "$MAC1")" 0
expect_match "the peer is inside, with the MAC" "$(inside "$C1" ip -o link show dev "$CLASH")" "link/ether $MAC1 "

check "configure-inside" netctl configure-inside "$C1" "$CLASH" eth0 "$ADDR1/24" "$GATEWAY"
expect_match "inside, eth0 has the MAC" "$(inside "$C1" ip -o link show dev eth0)" "link/ether $MAC1 "
expect_match "inside, eth0 is up" "$(inside "$C1" ip -o link show dev eth0)" "<[^>]*,UP[,>]"
expect_match "inside, eth0 has the address" "$(inside "$C1" ip -4 -o addr show dev eth0)" "inet $ADDR1/24 "
expect_eq "inside, the temporary name is gone" "$(inside "$C1" ip -o link show dev "$CLASH" 2>/dev/null)" ""
expect_match "inside, lo is up" "$(inside "$C1" ip -o link show dev lo)" "<LOOPBACK,UP"
expect_match "inside, the default route is via the gateway" "$(inside "$C1" ip -4 route show default)" \
	"^default via $GATEWAY dev eth0"
check "configure-inside again (already renamed) succeeds" netctl configure-inside "$C1" "$CLASH" eth0 "$ADDR1/24" "$GATEWAY"
check "the host pings the container across the bridge" busybox ping -c1 -W1 "$ADDR1"
expect_eq "the bridge kept its MAC with a port" "$(cat /sys/class/net/$BR/address)" "$BR_MAC"

state=$(netctl state "$C1")
expect_eq "state: eth0's first address" "$(jq -r '.eth0.addresses[0] | "\(.family) \(.address) \(.netmask) \(.scope)"' <<<"$state")" \
	"inet $ADDR1 24 global"
expect_match "state: eth0 has its IPv6 link-local address" \
	"$(jq -r '.eth0.addresses[] | select(.family == "inet6") | .scope' <<<"$state")" '^link$'
expect_eq "state: eth0 hwaddr, host_name, mtu, state, type" \
	"$(jq -r '.eth0 | "\(.hwaddr) \(.host_name) \(.mtu) \(.state) \(.type)"' <<<"$state")" \
	"$MAC1 $HOST1 1400 up broadcast"
expect_eq "state: the ping shows in eth0's counters" \
	"$(jq -r '.eth0.counters | (.packets_received > 0 and .packets_sent > 0 and .bytes_received > 0 and .bytes_sent > 0)' <<<"$state")" true
expect_eq "state: every LXD counter is there" \
	"$(jq -r '.eth0.counters | keys | join(",")' <<<"$state")" \
	"bytes_received,bytes_sent,errors_received,errors_sent,packets_dropped_inbound,packets_dropped_outbound,packets_received,packets_sent"
expect_eq "state: lo is a loopback with 127.0.0.1 scope local" \
	"$(jq -r '.lo | "\(.type) \(.state) \(.addresses[0].address) \(.addresses[0].scope)"' <<<"$state")" \
	"loopback up 127.0.0.1 local"
expect_eq "state: only eth0 and lo" "$(jq -r 'keys | join(",")' <<<"$state")" "eth0,lo"

# Announce: the host's stale neighbour entry (as after a move) learns the MAC again.
ip neigh replace "$ADDR1" lladdr 02:00:00:00:00:99 dev "$BR" nud stale
sent_before=$(netctl state "$C1" | jq '.eth0.counters.packets_sent')
check "announce eth0" netctl announce "$C1" eth0
expect_match "the host's neighbour entry has the container's MAC again" "$(ip neigh show "$ADDR1" dev "$BR")" "lladdr $MAC1 "
expect_eq "the announcement left eth0" "$(netctl state "$C1" | jq ".eth0.counters.packets_sent > $sent_before")" true

# ---- an unprivileged container: its netns belongs to a user namespace ----

netns_process --user
C2=$NS_PID
# Ids 0-65535 inside are 100000+ outside, as in ferry's containers (root
# writes the maps itself: no newuidmap needed).
echo "0 100000 65536" >/proc/$C2/uid_map
echo "0 100000 65536" >/proc/$C2/gid_map
HOST2=$(netctl new-host-name)
MAC2=$(netctl new-hwaddr)
ADDR2=$PREFIX3.24
host_ends+=("$HOST2")
check "user-namespaced: veth-create" netctl veth-create "$C2" tmp0 "$HOST2" "$BR" "$MAC2"
check "user-namespaced: configure-inside" netctl configure-inside "$C2" tmp0 eth0 "$ADDR2/24" "$GATEWAY"
expect_match "user-namespaced: eth0 has the address and MAC" \
	"$(inside "$C2" ip -o link show dev eth0) $(inside "$C2" ip -4 -o addr show dev eth0)" "link/ether $MAC2 .*inet $ADDR2/24 "
check "user-namespaced: the host pings it" busybox ping -c1 -W1 "$ADDR2"
check "user-namespaced: the two containers reach each other over the bridge" inside "$C2" busybox ping -c1 -W1 "$ADDR1"

# ---- the shape a CRIU restore wants: the peer waits in our namespace ----

HOST3=$(netctl new-host-name)
PEER3=ftnr$tag
host_ends+=("$HOST3" "$PEER3")
check "veth-create with pid 0 (for a restore)" netctl veth-create 0 "$PEER3" "$HOST3" "$BR" "$MAC1"
expect_match "the peer waits on the host with the container's MAC" "$(ip -o link show dev "$PEER3")" "link/ether $MAC1 "
expect_match "its host end is on the bridge" "$(ip -o link show dev "$HOST3")" " master $BR "
check "link-delete of the peer" netctl link-delete "$PEER3"
expect_eq "deleting one end removes both" "$(ip -o link show dev "$HOST3" 2>/dev/null)" ""

# ---- errors say what failed ----

out=$(netctl veth-create "$C1" tmp1 vethbadbr nosuchbr$tag 00:16:3e:00:00:01 2>&1)
expect_match "veth-create on a missing bridge fails naming it" "$out" "bridge.*(nosuchbr$tag|not found|No such)"
expect_eq "the failed veth-create left no host end" "$(ip -o link show dev vethbadbr 2>/dev/null)" ""
out=$(netctl veth-create "$C1" tmp1 "$HOST1" "$BR" 00:16:3e:00:00:01 2>&1)
expect_match "veth-create with a taken host name fails" "$out" "create veth $HOST1.*(exist|Exist)"
out=$(netctl configure-inside "$C1" nosuch0 eth1 2>&1)
expect_match "configure-inside with a missing peer fails naming it" "$out" "nosuch0"
out=$(netctl bridge-ensure "$HOST1" "$SUBNET" nat 2>&1)
expect_match "bridge-ensure on a veth refuses" "$out" "not a bridge"
check_fails "bridge-ensure with a bad CIDR fails" netctl bridge-ensure "$BR" 10.0.0.1 nat

# ---- teardown: gone namespaces take their veths along ----

for pid in "$C1" "$C2"; do
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
done
pids=()
left=
for i in $(seq 100); do
	left=$(ip -o link show dev "$HOST1" 2>/dev/null; ip -o link show dev "$HOST2" 2>/dev/null)
	[ -z "$left" ] && break
	sleep 0.05
done
expect_eq "no host veth is left once the namespaces are gone" "$left" ""
check "link-delete of a missing link succeeds" netctl link-delete "$HOST1"

check "bridge-delete" netctl bridge-delete "$BR"
expect_eq "the bridge is gone" "$(ip -o link show dev "$BR" 2>/dev/null)" ""
check_fails "the NAT table is gone" netctl nat-rules "$BR"
check "bridge-delete again succeeds" netctl bridge-delete "$BR"
