#!/usr/bin/env bash
# The multi-host test bed (scripts/testbed.sh): two hosts come up, each
# answering on its own socket and over HTTPS on the LAN; h1 lists h2's
# containers as a remote, and h2 trusts h1's daemon (what a migration
# target presents); a container on h1 pings one on h2 across the LAN; and
# `down` leaves no namespace, link, ferryd, monitor, cgroup, staging
# directory, mount or loop device behind, also after a ferryd died. Each
# host's state is a filesystem of its own.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/bed_lib.sh"
bed_up 2 || { echo "Bail out! testbed up failed"; exit 1; }

check "h1 answers ferry info" fy h1 info
check "h2 answers ferry info" fy h2 info
expect_eq "h1 and h2 have their own LAN addresses" "$(bed_addr h1) $(bed_addr h2)" \
	"$(sed -n 's/^SUBNET=//p' "$BED_DIR/bed.env").1 $(sed -n 's/^SUBNET=//p' "$BED_DIR/bed.env").2"
expect_match "h1 knows h2 as a remote" "$(fy h1 remote list --format csv)" "^h2,https://$(bed_addr h2):8443,"
check "h1 can list h2: over HTTPS" fy h1 list h2:
check "h2 can list h1: over HTTPS" fy h2 list h1:
h1_fp=$(openssl x509 -in "$BED_DIR/h1/server.crt" -outform der | sha256sum | cut -c1-12)
expect_match "h2 trusts h1's server certificate" "$(fy h2 config trust list --format csv)" ",$h1_fp,"

# Each host's state is a filesystem of its own, as on separate machines.
check "h1's state is a filesystem of its own" mountpoint -q "$BED_DIR/h1"
check "h2's state is a filesystem of its own" mountpoint -q "$BED_DIR/h2"
check_fails "... not the same one" test "$(mountpoint -d "$BED_DIR/h1")" = "$(mountpoint -d "$BED_DIR/h2")"
loops=$(losetup -n -O NAME -j "$BED_DIR/h1.disk"; losetup -n -O NAME -j "$BED_DIR/h2.disk")
expect_eq "... each on a loop device" "$(wc -w <<<"$loops")" 2

fy h1 image build busybox --alias busybox >/dev/null
fy h2 image build busybox --alias busybox >/dev/null
check "launch c1 on h1" fy h1 launch busybox c1
check "launch c2 on h2" fy h2 launch busybox c2
ip1=$(fy h1 list c1 --format csv -c 4 | cut -d' ' -f1)
ip2=$(fy h2 list c2 --format csv -c 4 | cut -d' ' -f1)
expect_match "c1 has an address in the bed's subnet" "$ip1" "^$(sed -n 's/^SUBNET=//p' "$BED_DIR/bed.env")\."
check_fails "c1 and c2 got different addresses" test "$ip1" = "$ip2"
check "c1 (on h1) pings c2 (on h2) over the LAN" fy h1 exec c1 -- ping -c1 -W2 "$ip2"
check "c2 pings h1's address" fy h2 exec c2 -- ping -c1 -W2 "$(bed_addr h1)"

pids="$(cat "$BED_DIR"/h*.pid) $(cat "$BED_DIR"/h*/containers/*/monitor.pid 2>/dev/null | awk '{print $1}')"
nss="$(bed_ns h1) $(bed_ns h2) ferry-lan-$(printf '%s' "$BED_DIR" | sha256sum | cut -c1-8)"
# ferryd's cgroup parent: "ferry-" and the FNV-1a hash of its root (instance_cgroup_parent).
cgroup_parent() { python3 -c 'import sys
h = 2166136261
for b in sys.argv[1].encode(): h = ((h ^ b) * 16777619) & 0xffffffff
print("ferry-%08x" % h)' "$1"; }
cgs="$(cgroup_parent "$BED_DIR/h1") $(cgroup_parent "$BED_DIR/h2")"
cg1=$(for c in $cgs; do ls -d /sys/fs/cgroup/*/"$c" 2>/dev/null; done)
expect_match "the hosts' containers have their cgroups" "$cg1" "ferry-"
# A ferryd that died (its staging directory for pages left on /dev/shm,
# its container running on), and a container whose cgroup has cgroups
# below it (systemd makes a tree of them): down removes those too.
stagings=$(for c in $cgs; do echo "/dev/shm/ferry-pages-${c#ferry-}"; done)
expect_eq "the hosts have their staging directories" "$(ls -d $stagings 2>/dev/null | wc -l)" 2
check "cgroups below c2's" mkdir -p "/sys/fs/cgroup/unified/$(cgroup_parent "$BED_DIR/h2")/c2/system.slice/x.service"
kill -KILL "$(cat "$BED_DIR/h2.pid")"
dir=$BED_DIR
check "testbed down" bed_down
left=""
for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
expect_eq "no ferryd or monitor of the bed is left" "$left" ""
left=""
for ns in $nss; do [ -e "/run/netns/$ns" ] && left="$left $ns"; done
expect_eq "no namespace of the bed is left" "$left" ""
left=""
for c in $cg1; do [ -e "$c" ] && left="$left $c"; done
expect_eq "no cgroup of the bed is left" "$left" ""
expect_eq "no staging directory of the bed is left" "$(ls -d $stagings 2>/dev/null)" ""
expect_eq "no mount of the bed is left" "$(awk -v d="$dir/" 'index($2, d) == 1' /proc/mounts)" ""
left=""
for l in $loops; do losetup "$l" >/dev/null 2>&1 && left="$left $l"; done
expect_eq "no loop device of the bed is left" "$left" ""
check_fails "no bed directory is left" test -e "$dir"
