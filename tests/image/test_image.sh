#!/usr/bin/env bash
# Images without a daemon: build the busybox image, unpack it into a shifted
# rootfs, refuse hostile tarballs without writing outside the destination,
# and round-trip an exported rootfs through import.
. "$(dirname "$0")/../lib.sh"

IMGCTL=$BUILD/tests/image/imgctl
MKTAR="python3 $top/tests/image/mktar.py"
WORK=$(mktemp -d /tmp/ferry-image-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
STORE=$WORK/store
SHIFT=1000000

field() { awk -v k="$1:" '$1 == k {print $2}' <<<"$2"; }
owners() { stat -c '%u:%g' "$1"; }
# Every path under a tree with its type, mode and owners, for comparing trees.
tree_listing() { (cd "$1" && find . -printf '%p %y %m %U %G %l\n' | sort); }

# --- busybox build ---------------------------------------------------------
start=$(date +%s%N)
out=$("$IMGCTL" build-busybox "$STORE" 2>&1)
rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "busybox image builds" "$rc" 0
check "busybox image builds in under 5 s ($elapsed_ms ms)" test "$elapsed_ms" -lt 5000
fp=$(field fingerprint "$out")
tarball=$STORE/$fp
expect_eq "fingerprint is the sha256 of the tarball" "$(sha256sum "$tarball" | cut -d' ' -f1)" "$fp"
expect_eq "os property" "$(field property.os "$out")" busybox
expect_match "release property is busybox's version" "$(field property.release "$out")" '^[0-9]+\.[0-9]+'
listing=$(tar tzvf "$tarball")
expect_match "tarball has metadata.yaml" "$listing" ' metadata\.yaml$'
expect_match "tarball has rootfs/sbin/init -> busybox" "$listing" ' rootfs/sbin/init -> /bin/busybox$'
expect_match "tarball has rootfs/bin/busybox" "$listing" ' rootfs/bin/busybox$'
check "every owner in the tarball is 0 or 33" \
	bash -c "tar tzf '$tarball' --numeric-owner -v | awk '{print \$2}' | grep -vxE '0/0|33/33' | (! grep -q .)"
metadata=$(tar xzOf "$tarball" metadata.yaml)
expect_match "metadata.yaml has the architecture" "$metadata" '^architecture: x86_64'
expect_match "metadata.yaml has the creation date" "$metadata" 'creation_date: [0-9]+'
expect_match "metadata.yaml describes busybox" "$metadata" 'description: "busybox [0-9.]+ \([0-9]{8}_'

out2=$("$IMGCTL" build-busybox "$STORE" 2>&1)
expect_eq "a second build gives the same image" "$(field fingerprint "$out2")" "$fp"
check "the image stats" "$IMGCTL" stat "$STORE" "$fp"
out=$("$IMGCTL" stat "$STORE" "$(printf '0%.0s' {1..64})" 2>&1)
expect_match "stat of a missing image is a 404" "$out" 'not found.*status 404'
out=$("$IMGCTL" stat "$STORE" "../../etc/passwd" 2>&1)
expect_match "stat of a non-fingerprint is a 400" "$out" 'status 400'

# --- unpack, shifted and not ----------------------------------------------
rootfs=$WORK/shifted
check "busybox unpacks with shift $SHIFT" "$IMGCTL" unpack "$tarball" "$rootfs" $SHIFT $SHIFT
expect_eq "rootfs dir belongs to the shifted root, mode 755" "$(stat -c '%u:%g %a' "$rootfs")" "$SHIFT:$SHIFT 755"
expect_eq "bin/busybox belongs to the shifted root" "$(owners "$rootfs/bin/busybox")" "$SHIFT:$SHIFT"
expect_eq "var/www belongs to the shifted www-data" "$(owners "$rootfs/var/www")" "$((SHIFT + 33)):$((SHIFT + 33))"
expect_eq "sbin/init is a symlink to busybox" "$(readlink "$rootfs/sbin/init")" /bin/busybox
expect_eq "tmp is 1777" "$(stat -c %a "$rootfs/tmp")" 1777
check "no file in the rootfs is owned below the shift" \
	bash -c "find '$rootfs' \\( ! -uid $SHIFT -a -uid -$SHIFT \\) -print -quit | (! grep -q .)"
check_fails "unpacking into a non-empty directory is refused" "$IMGCTL" unpack "$tarball" "$rootfs" 0 0

plain=$WORK/plain
check "busybox unpacks without a shift" "$IMGCTL" unpack "$tarball" "$plain" 0 0
expect_eq "the unpacked busybox runs in a chroot" "$(chroot "$plain" /bin/sh -c 'echo $((6 * 7))')" 42
expect_eq "its /etc/passwd has www-data as 33" "$(chroot "$plain" /bin/busybox id -u www-data)" 33

# --- setuid, fifos, devices, hard links, implicit directories -------------
$MKTAR special "$WORK/special.tar.gz"
dest=$WORK/special-shifted
check "the special tarball unpacks shifted" "$IMGCTL" unpack "$WORK/special.tar.gz" "$dest" $SHIFT $SHIFT
expect_eq "setuid file keeps its bit and gets the shifted owner" \
	"$(stat -c '%a %u:%g' "$dest/usr/bin/setuid-tool")" "4755 $SHIFT:$SHIFT"
expect_eq "setgid file keeps its bit and gets the shifted group" \
	"$(stat -c '%a %u:%g' "$dest/usr/bin/setgid-tool")" "2755 $SHIFT:$((SHIFT + 42))"
expect_eq "hard link is the same inode" "$(stat -c %i "$dest/usr/bin/same-tool")" \
	"$(stat -c %i "$dest/usr/bin/setuid-tool")"
expect_eq "fifo is kept" "$(stat -c %F "$dest/fifo")" fifo
check_fails "device node is skipped when shifted" test -e "$dest/null"
expect_eq "implicit parent directories belong to the shifted root" \
	"$(owners "$dest/implicit") $(owners "$dest/implicit/deeper")" "$SHIFT:$SHIFT $SHIFT:$SHIFT"
expect_eq "file in them keeps its shifted owner" "$(owners "$dest/implicit/deeper/file")" \
	"$((SHIFT + 33)):$((SHIFT + 33))"
expect_eq "an id the container cannot map becomes its nobody" "$(owners "$dest/big-id")" \
	"$((SHIFT + 65534)):$((SHIFT + 65534))"
dest=$WORK/special-plain
check "the special tarball unpacks without a shift" "$IMGCTL" unpack "$WORK/special.tar.gz" "$dest" 0 0
expect_eq "device node is kept when not shifted" "$(stat -c '%F %t:%T' "$dest/null")" "character special file 1:3"
expect_eq "setuid file keeps its bit unshifted" "$(stat -c '%a %u' "$dest/usr/bin/setuid-tool")" "4755 0"

# --- hostile tarballs ------------------------------------------------------
outside=$WORK/outside
mkdir -p "$outside"
passwd_links=$(stat -c %h /etc/passwd)
# refused KIND ARG WHAT: unpack and import both refuse, nothing lands outside.
refused() {
	local kind=$1 arg=$2 what=$3 evil=$WORK/evil-$1.tar.gz dest=$WORK/dest-$1 out
	$MKTAR "$kind" "$evil" "$arg"
	out=$("$IMGCTL" unpack "$evil" "$dest" $SHIFT $SHIFT 2>&1)
	if [ $? -ne 0 ]; then pass "unpack refuses $what"; else fail "unpack refuses $what" "$out"; fi
	expect_match "the refusal names the entry ($what)" "$out" "refused entry|unsafe path|not a"
	check_fails "nothing is left of the destination ($what)" test -e "$dest"
	out=$("$IMGCTL" import "$STORE" "$evil" 2>&1)
	if [ $? -ne 0 ]; then pass "import refuses $what"; else fail "import refuses $what" "$out"; fi
	expect_match "import answers 400 ($what)" "$out" 'status 400'
}
refused dotdot "escape-dotdot" "a rootfs/../.. path"
check_fails "nothing escaped through .." test -e "$WORK/escape-dotdot"
refused dotdot-top "escape-top" "a ../ path"
check_fails "nothing escaped through ../" test -e "$WORK/escape-top"
refused absolute "$outside/absolute" "an absolute path"
check_fails "nothing was written at the absolute path" test -e "$outside/absolute"
refused symlink "$outside" "a path through a symlink that points out"
check_fails "nothing was written through the symlink" test -e "$outside/file"
refused hardlink "" "a hard link to ../../etc/passwd"
refused hardlink-absolute "" "a hard link to /etc/passwd"
refused hardlink-via-symlink "" "a hard link through a symlink to /"
expect_eq "/etc/passwd got no new link" "$(stat -c %h /etc/passwd)" "$passwd_links"

for kind in no-metadata bad-metadata stray garbage; do
	$MKTAR "$kind" "$WORK/$kind.tar.gz"
	out=$("$IMGCTL" import "$STORE" "$WORK/$kind.tar.gz" 2>&1)
	if [ $? -ne 0 ]; then pass "import refuses $kind"; else fail "import refuses $kind" "$out"; fi
	expect_match "import of $kind answers 400 and says why" "$out" \
		'(metadata\.yaml|unexpected entry|not a).*status 400'
done
check_fails "garbage is refused by unpack too" "$IMGCTL" unpack "$WORK/garbage.tar.gz" "$WORK/dest-garbage" 0 0
expect_eq "refused imports leave nothing in the store" "$(ls -A "$STORE" | grep -vc "^$fp")" 0
expect_eq "no file appeared outside any destination" "$(ls -A "$outside")" ""

# --- export and import round trip -----------------------------------------
exported=$WORK/exported.tar.gz
check "a shifted rootfs packs" "$IMGCTL" pack "$rootfs" "$exported" $SHIFT os=busybox release=exported \
	description="busybox, exported"
check "every owner in the export is unshifted" \
	bash -c "tar tzvf '$exported' --numeric-owner | awk '{print \$2}' | grep -vxE '0/0|33/33' | (! grep -q .)"
out=$("$IMGCTL" import "$STORE" "$exported" 2>&1)
expect_eq "the export imports" "$?" 0
fp2=$(field fingerprint "$out")
expect_eq "imported under its sha256" "$(sha256sum "$exported" | cut -d' ' -f1)" "$fp2"
expect_eq "its properties came along" "$(field property.release "$out") $(field property.os "$out")" \
	"exported busybox"
check "the imported image unpacks" "$IMGCTL" unpack "$STORE/$fp2" "$WORK/roundtrip" $SHIFT $SHIFT
expect_eq "the round trip gives the same tree" "$(tree_listing "$WORK/roundtrip")" "$(tree_listing "$rootfs")"
check "an import from a pipe works" bash -c "cat '$exported' | '$IMGCTL' import '$STORE' /dev/stdin"
check "the image is removed" "$IMGCTL" remove "$STORE" "$fp2"
check_fails "and is gone" "$IMGCTL" stat "$STORE" "$fp2"
check_fails "removing it again fails" "$IMGCTL" remove "$STORE" "$fp2"
