#!/usr/bin/env bash
# The Debian image: debootstrap bookworm once (minutes; the tree is cached in
# /var/cache/ferry/debian so later runs take seconds), then check what a
# container would boot: systemd as /sbin/init, bookworm, no machine-id of
# the build host, owners shifted, setuid bits kept; nginx, redis, sshd and
# postgres installed and enabled, kept checkpointable.
. "$(dirname "$0")/../lib.sh"

IMGCTL=$BUILD/tests/image/imgctl
CACHE=${FERRY_DEBIAN_CACHE:-/var/cache/ferry/debian}
WORK=$(mktemp -d /tmp/ferry-image-debian.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
STORE=$WORK/store
SHIFT=1000000

field() { awk -v k="$1:" '$1 == k {print $2}' <<<"$2"; }

out=$("$IMGCTL" build-debian "$STORE" "$CACHE" 2>&1)
rc=$?
expect_eq "debian image builds" "$rc" 0
[ "$rc" -eq 0 ] || { echo "#   $out" | tail -5; exit 0; }
fp=$(field fingerprint "$out")
tarball=$STORE/$fp
expect_eq "os property" "$(field property.os "$out")" debian
expect_eq "release property" "$(field property.release "$out")" bookworm
expect_match "metadata.yaml says bookworm" "$(tar xzOf "$tarball" metadata.yaml)" 'release: "bookworm"'

start=$(date +%s)
out=$("$IMGCTL" build-debian "$STORE" "$CACHE" 2>&1)
expect_eq "a second build works" "$?" 0
expect_match "a second build uses the cached tree" "$out" 'using the cached tree'
check "a second build takes less than a minute ($(($(date +%s) - start)) s)" test $(($(date +%s) - start)) -lt 60
fp=$(field fingerprint "$out")
tarball=$STORE/$fp

rootfs=$WORK/rootfs
check "the image unpacks with shift $SHIFT" "$IMGCTL" unpack "$tarball" "$rootfs" $SHIFT $SHIFT
expect_eq "/sbin/init is systemd" "$(readlink "$rootfs/sbin/init")" /lib/systemd/systemd
check "systemd itself is there" test -x "$rootfs/lib/systemd/systemd"
expect_match "/etc/os-release says bookworm" "$(cat "$rootfs/etc/os-release")" 'VERSION_CODENAME=bookworm'
expect_eq "/etc/machine-id is empty (systemd makes one at first boot)" "$(stat -c %s "$rootfs/etc/machine-id")" 0
expect_eq "/etc/hostname" "$(cat "$rootfs/etc/hostname")" debian
expect_eq "/etc/passwd belongs to the shifted root" "$(stat -c %u:%g "$rootfs/etc/passwd")" "$SHIFT:$SHIFT"
check "no device nodes in a shifted rootfs" bash -c "find '$rootfs' \\( -type c -o -type b \\) -print -quit | (! grep -q .)"
su=$(find "$rootfs/usr/bin" -perm -4000 -name su)
expect_eq "su keeps its setuid bit with the shifted owner" "$(stat -c '%a %u' "$su" 2>/dev/null)" "4755 $SHIFT"
check "no apt package lists or archives in the image" \
	bash -c "! ls '$rootfs'/var/lib/apt/lists/*_* '$rootfs'/var/cache/apt/archives/*.deb 2>/dev/null | grep -q ."

plain=$WORK/plain
check "the image unpacks without a shift" "$IMGCTL" unpack "$tarball" "$plain" 0 0
check "device nodes are kept without a shift" test -c "$plain/dev/null"
expect_eq "systemd-sysv, iproute2 and procps are installed" \
	"$(chroot "$plain" /usr/bin/dpkg-query -W -f '${Status}\n' systemd-sysv iproute2 procps | grep -c 'ok installed')" 3
expect_eq "nginx-light, redis-server, openssh-server and postgresql are installed" \
	"$(chroot "$plain" /usr/bin/dpkg-query -W -f '${Status}\n' nginx-light redis-server openssh-server postgresql |
		grep -c 'ok installed')" 4
wants=$rootfs/etc/systemd/system/multi-user.target.wants
check "their services are enabled" test -L "$wants/nginx.service" -a -L "$wants/redis-server.service" \
	-a -L "$wants/ssh.service" -a -L "$wants/postgresql.service"
check "postgres has its cluster, sshd its host keys" test -s "$plain/var/lib/postgresql/15/main/PG_VERSION" \
	-a -s "$plain/etc/ssh/ssh_host_ed25519_key"
dropin=$rootfs/etc/systemd/system/service.d/ferry-checkpoint.conf
check "services keep no nested user namespace (CRIU can't dump one)" \
	sh -c "grep -qx PrivateUsers=no '$dropin' && ! grep -q ProtectHostname '$dropin'"
