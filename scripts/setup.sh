#!/usr/bin/env bash
# Install everything ferry needs on a Debian 12 machine, then build it.
# Safe to run again: every step skips what is already in place.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CRIU_VERSION=4.2.1
CRIU_DEB_VERSION=4.2.1-1
CRIU_SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
# CRIU caches its kernel-feature probe (about 45 ms of every run) in
# RUNDIR/criu.kdat, and only on a tmpfs; /run is no tmpfs on these machines,
# /dev/shm is. CRIU does not create the directory: src/checkpoint makes it,
# root's own (0700), before each run; without it CRIU just probes again.
CRIU_RUNDIR=/dev/shm/ferry-criu
# Fixes ferry carries until CRIU has them (each patch says why), applied in
# name order. A stamp records what the installed CRIU was built with; a
# different stamp (older build, new patch, other run dir) means a rebuild.
CRIU_PATCHES_DIR=$here/scripts/criu-patches
CRIU_STAMP=/usr/local/share/ferry/criu-build
# Without GnuTLS (CRIU's own --tls, which ferry doesn't use: its migration
# streams have their own TLS): 9 fewer libraries to map at every start of
# criu, 200 page faults instead of 350, ~7 ms instead of ~12 here.
CRIU_MAKE_FLAGS=(RUNDIR="$CRIU_RUNDIR" NO_GNUTLS=1)
criu_build_id() {
	printf 'criu %s flags %s patches %s\n' "$CRIU_VERSION" "${CRIU_MAKE_FLAGS[*]}" \
		"$(cat "$CRIU_PATCHES_DIR"/*.patch 2>/dev/null | sha256sum | cut -c1-16)"
}

log() { printf 'setup: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "run as root (it installs packages and CRIU)"; exit 1; }

packages=(
	# build
	gcc make meson ninja-build pkg-config
	# ferry's libraries (README lists why each)
	libmicrohttpd-dev libwslay-dev libcurl4-gnutls-dev libgnutls28-dev
	libjansson-dev libyaml-dev libsqlite3-dev libarchive-dev
	libnl-3-dev libnl-route-3-dev libcap-dev libxxhash-dev
	# CRIU's build dependencies
	libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler
	libnet1-dev libbsd-dev libnftables-dev libaio-dev uuid-dev
	python3-protobuf xz-utils patch
	# run time: CRIU's network lock, images, networking
	iptables iproute2 busybox-static debootstrap
	# tests: the stock clients, and tools the tests drive
	lxd-client python3-pylxd socat curl jq gnuplot-nox openssl procps
	# ... and the clients of the Debian image's services (ssh, psql)
	openssh-client postgresql-client
	# the test bed: a filesystem of its own for each host
	e2fsprogs mount
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

criu_ok() {
	[ -x /usr/local/sbin/criu ] && /usr/local/sbin/criu --version 2>/dev/null | grep -q "Version: $CRIU_VERSION" &&
		[ -e /usr/local/include/criu/criu.h ] && pkg-config --exists 'criu >= 4.2.1' &&
		# built with our run dir (an older build looks in /run) and patches
		grep -qaF "$CRIU_RUNDIR/criu.kdat" /usr/local/sbin/criu &&
		[ "$(cat "$CRIU_STAMP" 2>/dev/null)" = "$(criu_build_id)" ]
}

# The mirror comes from this machine's own apt configuration: the project names no host.
mirror_uri() {
	local f uri=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		uri=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$f")
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ] && [ -e /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
	fi
	[ -n "$uri" ] || { log "no Debian mirror found in /etc/apt"; return 1; }
	printf '%s\n' "$uri"
}

build_criu() {
	local work=/var/cache/ferry/criu
	local tarball=$work/criu_$CRIU_VERSION.orig.tar.xz
	mkdir -p "$work/lists/partial"
	if ! echo "$CRIU_SHA256  $tarball" | sha256sum -c --status 2>/dev/null; then
		local uri
		uri=$(mirror_uri)
		cat >"$work/sid-src.sources" <<SRC
Types: deb-src
URIs: $uri
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		local opts=(-o "Dir::Etc::SourceList=$work/sid-src.sources" -o Dir::Etc::SourceParts=/dev/null
			-o "Dir::State::Lists=$work/lists")
		log "fetching CRIU $CRIU_DEB_VERSION source from $uri"
		apt-get "${opts[@]}" update -qq
		# The .debian.tar.xz may be missing while the .orig.tar.xz arrives: the checksum decides.
		(cd "$work" && apt-get "${opts[@]}" source --download-only "criu=$CRIU_DEB_VERSION" >/dev/null 2>&1) || true
		echo "$CRIU_SHA256  $tarball" | sha256sum -c --status ||
			{ log "CRIU source missing or its sha256 is wrong: $tarball"; exit 1; }
	fi
	rm -rf "$work/src" && mkdir -p "$work/src"
	tar -xJf "$tarball" -C "$work/src" --strip-components=1
	local p
	for p in "$CRIU_PATCHES_DIR"/*.patch; do
		[ -e "$p" ] || continue
		log "applying $(basename "$p")"
		patch -d "$work/src" -p1 --quiet <"$p" || { log "CRIU patch failed: $p"; exit 1; }
	done
	log "building CRIU $CRIU_VERSION"
	make -C "$work/src" -j"$(nproc)" "${CRIU_MAKE_FLAGS[@]}" criu lib >"$work/build.log" 2>&1 ||
		{ tail -30 "$work/build.log"; log "CRIU build failed: $work/build.log"; exit 1; }
	make -C "$work/src" PREFIX=/usr/local "${CRIU_MAKE_FLAGS[@]}" SKIP_PIP_INSTALL=1 install-criu install-lib >>"$work/build.log" 2>&1 ||
		{ tail -30 "$work/build.log"; log "CRIU install failed: $work/build.log"; exit 1; }
	ldconfig
	mkdir -p "$(dirname "$CRIU_STAMP")"
	criu_build_id >"$CRIU_STAMP"
}

criu_ok || build_criu
criu_ok || { log "CRIU $CRIU_VERSION is not installed correctly"; exit 1; }

log "building ferry"
if [ ! -e "$here/build/build.ninja" ]; then
	meson setup "$here/build" "$here" --buildtype=debugoptimized >/dev/null
fi
ninja -C "$here/build" >/dev/null || ninja -C "$here/build"
log "ready: $here/build/ferryd, $here/build/ferry"
