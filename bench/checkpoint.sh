#!/usr/bin/env bash
# Checkpoint (stateful stop) and restore time, and image size, against the
# memory a container has dirtied: ferry (runtime_checkpoint and
# runtime_restore through tests/runtime/rtctl) next to plain `criu dump` and
# `criu restore` of an equivalent process tree, in the same run.
#
# The container: busybox init, a shell on the console, and
# tests/checkpoint/workloads/memhog, which dirties N MiB and idles; user
# namespace (ids 0-65535 -> 1000000+), its own mount/pid/uts/ipc/net/cgroup
# namespaces, a veth on a bridge of the benchmark's own.
# The plain tree: the same rootfs and mounts built by unshare(1) and a
# shell, the same namespaces, its own freezer cgroup and a veth on the same
# bridge; busybox init, a sleep in place of the console shell, memhog. CRIU
# gets the options ferry gives it (criu.c), on the command line, and the
# restore moves a fresh veth in (--external netdev[eth0]:NAME), as ferry does.
#
# Usage: bench/checkpoint.sh [SIZES_MIB...]   (default: 0 16 64 256 1024)
# BENCH_RUNS (5): runs per size, the median is reported.
# Writes bench/results/checkpoint.{txt,dat,png}.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/tests/lib.sh"
source "$top/bench/lib.sh"
TEST_DIR_PREFIX=ferry-bench-ckpt
source "$top/tests/runtime/container.sh"
# BENCH_CRIU, MEMHOG: another CRIU for the plain runs, another memhog (to
# compare a build of an older ferry with FERRY_BUILD).
CRIU=${BENCH_CRIU:-/usr/local/sbin/criu}
MEMHOG=${MEMHOG:-$BUILD/tests/checkpoint/memhog}
[ -x "$MEMHOG" ] || { echo "$MEMHOG not built" >&2; exit 1; }
runs=${BENCH_RUNS:-5}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(0 16 64 256 1024)
out=${BENCH_OUT:-$top/bench/results}
mkdir -p "$out"

PLAIN_PIDS=()
test_cleanup() {
	local cg=/sys/fs/cgroup/freezer/$CGROUP_PREFIX/plain
	[ -e "$cg/freezer.state" ] && echo THAWED >"$cg/freezer.state"
	local v2=/sys/fs/cgroup/unified/$CGROUP_PREFIX/plain/cgroup.freeze
	[ -e "$v2" ] && echo 0 >"$v2"
	[ -e "$cg/cgroup.procs" ] && xargs -r kill -KILL <"$cg/cgroup.procs" 2>/dev/null
	for i in $(seq 50); do [ -s "$cg/cgroup.procs" ] || break; sleep 0.1; done
	local link
	for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^vpb$$"); do
		ip link del "$link" 2>/dev/null
	done
	return 0
}

make_bridge fbrbc
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
minimum() { sort -n | head -1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_file() { local i; for i in $(seq 600); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

# --- ferry ------------------------------------------------------------------
# ferry_setup MIB: the container, started, its memory dirtied.
ferry_setup() {
	local mib=$1 name=f$1
	write_spec "$name" ", \"nics\": [{\"name\": \"eth0\", \"bridge\": \"$BRIDGE\", \"hwaddr\": \"00:16:3e:b0:00:02\",
		\"ipv4_cidr\": \"$SUBNET.2/24\", \"ipv4_gateway\": \"$SUBNET.1\"}]"
	local dir=$TEST_DIR/$name
	sed -i 's/"limits_memory": [0-9]*/"limits_memory": 0/' "$dir/spec.json"
	cp "$MEMHOG" "$dir/rootfs/usr/bin/memhog"
	printf '::once:/usr/bin/memhog %s\n::respawn:/bin/sh\n' "$mib" >"$dir/rootfs/etc/inittab"
	chown "$HOSTID:$HOSTID" "$dir/rootfs/usr/bin/memhog" "$dir/rootfs/etc/inittab"
	"$RTCTL" start "$dir/spec.json" || return 1
	wait_file "$dir/rootfs/tmp/memhog.ready"
}

# ferry_run MIB: one stateful stop and restore; prints "dump_ms restore_ms image_bytes".
ferry_run() {
	local mib=$1 name=f$1 dump restore size
	local dir=$TEST_DIR/$name
	rm -rf "$TEST_DIR/img" && mkdir -p "$TEST_DIR/img"
	dump=$("$RTCTL" checkpoint "$name" "$dir" "$TEST_DIR/img" 2>/dev/null | sed -n 's/^dump \([0-9]*\) ms$/\1/p')
	[ -n "$dump" ] || { echo "ferry dump failed ($mib MiB)" >&2; return 1; }
	size=$(du -sb "$TEST_DIR/img" | cut -f1)
	sleep 0.2
	restore=$("$RTCTL" restore "$dir/spec.json" "$TEST_DIR/img" 2>/dev/null | sed -n 's/^restore \([0-9]*\) ms$/\1/p')
	[ -n "$restore" ] || { echo "ferry restore failed ($mib MiB)" >&2; return 1; }
	echo "$dump $restore $size"
}

# --- plain CRIU -----------------------------------------------------------------
PLAIN_CG=$CGROUP_PREFIX/plain
PLAIN_HIERARCHIES="cpu cpuacct cpuset memory pids freezer devices blkio systemd unified"
plain_opts=(--tcp-established --file-locks --ext-mount-map auto --enable-external-sharing
	--enable-external-masters --ghost-limit 134217728 --manage-cgroups=soft "-v${FERRY_CRIU_LOG_LEVEL:-3}")
[ -n "${PLAIN_NETWORK_LOCK:-}" ] || PLAIN_NETWORK_LOCK=nftables

# The plain tree's setup, run by unshare as the new namespaces' pid 1: the
# same mounts a ferry container gets, then busybox init as session leader
# with stdio from inside.
plain_setup_script() {
	cat <<-'SH'
	set -e
	R=$1
	mount --make-rslave /
	mount --bind "$R" "$R"
	mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
	mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
	mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup" || true
	mount --bind "$3" "$R/dev" && mount -o remount,bind,nosuid,noexec "$R/dev"
	for d in null zero full random urandom tty; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
	mkdir -p "$R/dev/shm" "$R/dev/pts" "$R/dev/mqueue"
	mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm "$R/dev/shm"
	mount -t mqueue -o nosuid,nodev,noexec mqueue "$R/dev/mqueue"
	mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
	ln -s pts/ptmx "$R/dev/ptmx"
	mount --bind "$2" "$R/mnt/share" && mount -o remount,bind,ro "$R/mnt/share"
	cd "$R"
	mkdir -p .oldroot
	pivot_root . .oldroot
	umount -l /.oldroot
	rmdir /.oldroot
	cd /
	# wait for the network and the cgroup from outside
	while [ ! -e /tmp/plain.go ]; do sleep 0.01; done
	exec setsid /sbin/init </dev/null >/dev/null 2>&1
	SH
}

plain_veth() { # NEW_HOST_NAME PEER: a veth pair, host end on the bridge
	ip link add "$1" type veth peer name "$2" &&
		ip link set "$2" address 00:16:3e:b0:00:03 &&
		ip link set "$1" master "$BRIDGE" up
}

# plain_setup MIB: the plain tree, started, its memory dirtied.
PLAIN_WRAPPER=
plain_setup() {
	local mib=$1 rootfs=$TEST_DIR/plain-$1 run pid
	make_rootfs "$rootfs"
	# /dev: a host directory bound in, as ferry's (runtime/container.c)
	mkdir -p "$TEST_DIR/plain-dev-$mib"
	cp "$MEMHOG" "$rootfs/usr/bin/memhog"
	printf '::once:/usr/bin/memhog %s\n::respawn:/bin/sleep 100000\n' "$mib" >"$rootfs/etc/inittab"
	# Owned by root: unshare maps the tree's root to the host's.
	chown -R 0:0 "$rootfs"
	# Cgroups in every hierarchy, as a ferry container has (cpuset's need cpus and mems first).
	local cg d
	for d in "$CGROUP_PREFIX" "$PLAIN_CG"; do
		mkdir -p "/sys/fs/cgroup/cpuset/$d"
		for f in cpuset.cpus cpuset.mems; do
			[ -n "$(cat "/sys/fs/cgroup/cpuset/$d/$f")" ] || cat "/sys/fs/cgroup/cpuset/$(dirname "$d")/$f" >"/sys/fs/cgroup/cpuset/$d/$f"
		done
	done
	for cg in $PLAIN_HIERARCHIES; do mkdir -p "/sys/fs/cgroup/$cg/$PLAIN_CG"; done
	# No fd of this shell may reach the tree (CRIU can't dump a host file).
	local script
	script=$(plain_setup_script)
	(
		for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
		exec unshare --user --map-root-user --pid --mount --uts --ipc --net --fork \
			sh -c "$script" plain "$rootfs" "$TEST_DIR/share" "$TEST_DIR/plain-dev-$mib" </dev/null >/dev/null 2>&1
	) &
	PLAIN_WRAPPER=$!
	for run in $(seq 100); do
		pid=$(pgrep -P "$PLAIN_WRAPPER" 2>/dev/null | head -1)
		[ -n "$pid" ] && break
		sleep 0.02
	done
	for cg in $PLAIN_HIERARCHIES; do echo "$pid" >"/sys/fs/cgroup/$cg/$PLAIN_CG/cgroup.procs"; done
	plain_veth "$(plain_host_veth 0)" vpbp$$ && ip link set vpbp$$ netns "$pid" &&
		nsenter -t "$pid" -n sh -c "ip link set vpbp$$ name eth0 && ip addr add $SUBNET.3/24 dev eth0 &&
			ip link set eth0 up && ip link set lo up && ip route add default via $SUBNET.1" || return 1
	# The tree starts once its root has pivoted (the go file is in its rootfs now).
	touch "$rootfs/tmp/plain.go"
	wait_file "$rootfs/tmp/memhog.ready"
}

# The freezer plain CRIU is given: cgroup v2's where there is one, as ferry
# uses (a v1 freezer write costs ~2 ms here, against ~0.07).
plain_freezer() {
	if [ -e "/sys/fs/cgroup/unified/$PLAIN_CG/cgroup.freeze" ]; then
		echo "/sys/fs/cgroup/unified/$PLAIN_CG"
	else
		echo "/sys/fs/cgroup/freezer/$PLAIN_CG"
	fi
}

# plain_run MIB RUN: one criu dump and restore; prints "dump_ms restore_ms image_bytes".
plain_run() {
	local mib=$1 run=$2 rootfs=$TEST_DIR/plain-$1 t0 dump restore size pid
	pid=$(pgrep -x init -P "$PLAIN_WRAPPER" 2>/dev/null | head -1)
	[ -n "$pid" ] || pid=$(awk '{print $1}' "$TEST_DIR/plain.pid" 2>/dev/null)
	rm -rf "$TEST_DIR/pimg" && mkdir -p "$TEST_DIR/pimg"
	t0=$(now_ms)
	"$CRIU" dump -t "$pid" -D "$TEST_DIR/pimg" -o dump.log "${plain_opts[@]}" --network-lock "$PLAIN_NETWORK_LOCK" \
		--freeze-cgroup "$(plain_freezer)" ||
		{ echo "plain dump failed: $TEST_DIR/pimg/dump.log" >&2; return 1; }
	dump=$(($(now_ms) - t0))
	size=$(du -sb "$TEST_DIR/pimg" | cut -f1)
	sleep 0.2
	# As ferry: a fresh host end each time (vpb<pid>r<run>), the container
	# end under a temporary name; the previous host end goes first.
	ip link del "$(plain_host_veth $((run - 1)))" 2>/dev/null
	plain_veth "$(plain_host_veth "$run")" vpbt$$ || return 1
	rm -f "$TEST_DIR/plain.pid"
	t0=$(now_ms)
	"$CRIU" restore -D "$TEST_DIR/pimg" -o restore.log "${plain_opts[@]}" --network-lock "$PLAIN_NETWORK_LOCK" \
		--root "$rootfs" --restore-detached --pidfile "$TEST_DIR/plain.pid" \
		--cgroup-root "/$PLAIN_CG" --external "netdev[eth0]:vpbt$$" </dev/null >/dev/null 2>&1 ||
		{ echo "plain restore failed: $TEST_DIR/pimg/restore.log" >&2; return 1; }
	restore=$(($(now_ms) - t0))
	echo "$dump $restore $size"
}
plain_host_veth() { [ "$1" -eq 0 ] && echo "vpb$$" || echo "vpb$$r$1"; }

plain_teardown() {
	test_cleanup
	rmdir /sys/fs/cgroup/*/"$PLAIN_CG" 2>/dev/null
	PLAIN_WRAPPER=
	return 0
}

data=$out/checkpoint.dat
echo "# MiB ferry_dump_ms ferry_restore_ms ferry_image_MiB criu_dump_ms criu_restore_ms criu_image_MiB" >"$data"
table=() mins=()
for mib in "${sizes[@]}"; do
	echo "# $mib MiB ..." >&2
	ferry_setup "$mib" || { echo "ferry: start failed at $mib MiB" >&2; exit 1; }
	plain_setup "$mib" || { echo "plain: start failed at $mib MiB" >&2; exit 1; }
	sleep 0.5
	# Interleaved, so that the load of the moment weighs on both alike.
	f= p=
	for run in $(seq "$runs"); do
		r=$(ferry_run "$mib") || exit 1
		f+="$r"$'\n'
		sleep 0.3
		r=$(plain_run "$mib" "$run") || exit 1
		p+="$r"$'\n'
		sleep 0.3
	done
	f=${f%$'\n'} p=${p%$'\n'}
	"$RTCTL" stop "f$mib" "$TEST_DIR/f$mib" 0 --force
	plain_teardown
	fd=$(awk '{print $1}' <<<"$f" | median) fr=$(awk '{print $2}' <<<"$f" | median)
	fs=$(awk '{print $3}' <<<"$f" | median) pd=$(awk '{print $1}' <<<"$p" | median)
	pr=$(awk '{print $2}' <<<"$p" | median) ps=$(awk '{print $3}' <<<"$p" | median)
	echo "# ferry runs: $(tr '\n' '|' <<<"$f")  plain runs: $(tr '\n' '|' <<<"$p")" >&2
	fsm=$(awk -v b="$fs" 'BEGIN {printf "%.1f", b / 1048576}')
	psm=$(awk -v b="$ps" 'BEGIN {printf "%.1f", b / 1048576}')
	echo "$mib $fd $fr $fsm $pd $pr $psm" >>"$data"
	# The fastest run: what each costs when the machine's other load leaves it alone.
	mins+=("$(printf '%8s %10s %10s %7s %10s %10s %7s' "$mib" \
		"$(awk '{print $1}' <<<"$f" | minimum)" "$(awk '{print $1}' <<<"$p" | minimum)" \
		"$(awk -v a="$(awk '{print $1}' <<<"$f" | minimum)" -v b="$(awk '{print $1}' <<<"$p" | minimum)" 'BEGIN {printf "%.2f", a / b}')" \
		"$(awk '{print $2}' <<<"$f" | minimum)" "$(awk '{print $2}' <<<"$p" | minimum)" \
		"$(awk -v a="$(awk '{print $2}' <<<"$f" | minimum)" -v b="$(awk '{print $2}' <<<"$p" | minimum)" 'BEGIN {printf "%.2f", a / b}')")")
	table+=("$(printf '%8s %10s %10s %7s %10s %10s %7s %10s %10s' "$mib" "$fd" "$pd" \
		"$(awk -v a="$fd" -v b="$pd" 'BEGIN {printf "%.2f", a / b}')" "$fr" "$pr" \
		"$(awk -v a="$fr" -v b="$pr" 'BEGIN {printf "%.2f", a / b}')" "$fsm" "$psm")")
done

commit=$(bench_commit)
{
	echo "checkpoint/restore vs dirtied memory: median of $runs, $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $commit, $($CRIU --version | head -1)"
	printf '%8s %10s %10s %7s %10s %10s %7s %10s %10s\n' "MiB" "ferry dump" "criu dump" "ratio" "ferry rst" "criu rst" "ratio" "ferry img" "criu img"
	printf '%8s %10s %10s %7s %10s %10s %7s %10s %10s\n' "" "ms" "ms" "" "ms" "ms" "" "MiB" "MiB"
	printf '%s\n' "${table[@]}"
	echo "fastest of $runs:"
	printf '%s\n' "${mins[@]}"
} | tee "$out/checkpoint.txt"

gnuplot <<GP
set terminal png size 900,500
set output "$out/checkpoint.png"
set title "checkpoint (stop) and restore vs dirtied memory: ferry and plain CRIU (median of $runs, commit $commit)"
set xlabel "dirtied memory (MiB)"
set ylabel "ms"
set key top left
set logscale x 2
set xrange [8:*]
plot "$data" using (\$1 > 0 ? \$1 : 8):2 with linespoints title "ferry checkpoint", \
     "$data" using (\$1 > 0 ? \$1 : 8):5 with linespoints title "criu dump", \
     "$data" using (\$1 > 0 ? \$1 : 8):3 with linespoints title "ferry restore", \
     "$data" using (\$1 > 0 ? \$1 : 8):6 with linespoints title "criu restore"
GP
echo "results: $out/checkpoint.txt, $out/checkpoint.png" >&2
