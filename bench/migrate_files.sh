#!/usr/bin/env bash
# A live move's stop against the size of a file the container writes in
# place all the time (a database's tables).
#
# The rootfs goes twice: whole while the container runs, then, while it is
# frozen, what changed since. A busybox container on h1 holds a file of
# SIZE MiB into which a process writes 4 KiB at a random block every
# 20 ms; it moves back and forth between two test-bed hosts RUNS times
# (`ferry move c1 HOST: --memory MODE`). Each row: the medians of ferry's
# own account of the stop (checkpoint, transfer, restore, the whole stop),
# of what went while it was frozen (the state and the rootfs's changes),
# and of the file's changed blocks that went (ferryd's log). Since commit
# 790e9af the file goes as its changed blocks; before, it went whole
# (FERRY_BUILD=DIR: another build's binaries, to compare).
#
# Usage: bench/migrate_files.sh [MIB...]   (default: 0 64 256 1024)
#   MODE (post-copy): the memory mode; RUNS (4): moves per size
#   OUT=DIR (default bench/results, or BENCH_OUT); FERRY_BUILD=DIR
# Writes OUT/migrate_files.{txt,dat,png}.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/tests/lib.sh"
source "$top/bench/lib.sh"
source "$top/tests/migrate/bed_lib.sh"

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(0 64 256 1024)
mode=${MODE:-post-copy}
runs=${RUNS:-4}
out=${OUT:-${BENCH_OUT:-$top/bench/results}}
mkdir -p "$out"

bed_up 2 || { echo "test bed up failed" >&2; exit 1; }
fy h1 image build busybox --alias busybox >/dev/null || exit 1

# The newest of a line of HOST's ferryd log, through sed expression $2.
log_value() { grep "$3" "$BED_DIR/$1/logs/ferryd.log" | tail -1 | sed -n "$2"; }

dat="$out/migrate_files.dat"
echo "# file_mib stopped_ms checkpoint_ms transfer_ms restore_ms frozen_sent_bytes delta_bytes (medians of $runs $mode moves)" >"$dat"
for mib in "${sizes[@]}"; do
	fy h1 launch busybox c1 >/dev/null || { echo "launch failed" >&2; exit 1; }
	blocks=$((mib * 256))
	if [ "$mib" -gt 0 ]; then
		fy h1 exec c1 -- dd if=/dev/zero of=/root/db bs=1M count="$mib" 2>/dev/null
		fy h1 exec c1 -- sh -c "sh -c 'while :; do dd if=/dev/urandom of=/root/db bs=4k count=1 conv=notrunc \
seek=\$(( (RANDOM * 32768 + RANDOM) % $blocks )) 2>/dev/null; usleep 20000; done' </dev/null >/dev/null 2>&1 &"
	fi
	sleep 1
	from=h1 to=h2
	stopped=() checkpoint=() transfer=() restore=() frozen=() delta=()
	for r in $(seq "$runs"); do
		if ! line=$(fy "$from" move c1 "$to:" --memory "$mode" 2>&1); then
			echo "# $mib MiB, move $r ($from -> $to) failed: $line" >&2
			break
		fi
		s= c= t= rs=
		read -r s c t rs _ < <(move_account "$line")
		[ -n "${s:-}" ] && stopped+=("$s") checkpoint+=("$c") transfer+=("$t") restore+=("$rs")
		frozen+=("$(log_value "$from" 's/.*rootfs changes (\([0-9]*\) bytes).*/\1/p' 'sent its state and rootfs changes')")
		d=0
		[ "$mib" -gt 0 ] && d=$(log_value "$from" 's/.*blocks: \([0-9]*\) of .*/\1/p' 'went as their changed blocks')
		delta+=("${d:-0}")
		tmp=$from from=$to to=$tmp
	done
	fy "$from" delete -f c1 >/dev/null
	[ ${#stopped[@]} -gt 0 ] || continue
	m() { printf '%s\n' "$@" | median; }
	echo "$mib $(m "${stopped[@]}") $(m "${checkpoint[@]}") $(m "${transfer[@]}") $(m "${restore[@]}")" \
		"$(m "${frozen[@]}") $(m "${delta[@]}")" >>"$dat"
	echo "# $mib MiB: stopped ${stopped[*]}; sent while frozen ${frozen[*]}" >&2
done

commit=$(bench_commit)
{
	echo "A live move's stop against a file written in place, 4 KiB every 20 ms ($mode, medians of $runs moves):" \
		"$(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $commit," \
		"binaries from ${FERRY_BUILD:-$top/build}"
	echo
	printf '%9s %9s %11s %9s %9s %13s %13s\n' "file MiB" stopped checkpoint transfer restore "frozen MB" "blocks MB"
	awk '!/^#/ {printf "%9d %9d %11d %9d %9d %13.1f %13.1f\n", $1, $2, $3, $4, $5, $6 / 1e6, $7 / 1e6}' "$dat"
} | tee "$out/migrate_files.txt"

gnuplot <<GP
set terminal png size 800,450
set output "$out/migrate_files.png"
set title "live move ($mode): stop vs a file written in place, commit $commit"
set xlabel "file written in place (MiB)"
set ylabel "ms (median)"
set key top left
set grid
plot "$dat" using 1:2 with linespoints title "stopped", \
     "$dat" using 1:3 with linespoints title "checkpoint", \
     "$dat" using 1:4 with linespoints title "transfer", \
     "$dat" using 1:5 with linespoints title "restore"
GP
echo "results: $out/migrate_files.txt, $out/migrate_files.png" >&2
