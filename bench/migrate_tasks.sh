#!/usr/bin/env bash
# A live move's stop against the number of processes in the container.
#
# bench/migrate_downtime.sh varies the memory of a container with a handful
# of processes; real containers have tens of them, and CRIU dumps and
# restores each one apart (its own parasite, fork, images, mappings and
# restorer). Here the memory stays small and the processes grow: a busybox
# container on h1 with N processes (init, then idle `sleep`s started from
# one exec session that ends at once), moved back and forth between two
# test-bed hosts RUNS times with `ferry move c1 HOST: --memory MODE`.
# Each row: the medians of ferry's own account of the stop (checkpoint,
# restore, the whole stop), then the least-squares slope of each against N:
# what one more process costs.
#
# Usage: bench/migrate_tasks.sh [COUNTS...]   (default: 1 8 16 32 64)
#   MODE (post-copy): the memory mode; RUNS (6): moves per count
#   OUT=DIR (default bench/results, or BENCH_OUT); FERRY_BUILD=DIR
# Writes OUT/migrate_tasks.{txt,dat,png}.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
source "$top/tests/lib.sh"
source "$top/bench/lib.sh"
source "$top/tests/migrate/bed_lib.sh"

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 8 16 32 64)
mode=${MODE:-post-copy}
runs=${RUNS:-6}
out=${OUT:-${BENCH_OUT:-$top/bench/results}}
mkdir -p "$out"

bed_up 2 || { echo "test bed up failed" >&2; exit 1; }
fy h1 image build busybox --alias busybox >/dev/null || exit 1

dat="$out/migrate_tasks.dat"
echo "# processes stopped_ms checkpoint_ms restore_ms (medians of $runs $mode moves)" >"$dat"
for n in "${counts[@]}"; do
	fy h1 launch busybox c1 >/dev/null || { echo "launch failed" >&2; exit 1; }
	fy h1 exec c1 -- sh -c "i=1; while [ \$i -lt $n ]; do sleep 100000 </dev/null >/dev/null 2>&1 & i=\$((i+1)); done"
	# The processes the container has: /proc's pids, less this shell.
	procs=$(($(fy h1 exec c1 -- sh -c 'set -- /proc/[0-9]*; echo $#') - 1))
	from=h1 to=h2
	stopped=() checkpoint=() restore=()
	for r in $(seq "$runs"); do
		if ! line=$(fy "$from" move c1 "$to:" --memory "$mode" 2>&1); then
			echo "# $procs processes, move $r ($from -> $to) failed: $line" >&2
			break
		fi
		s= c= rs=
		read -r s c _ rs _ < <(move_account "$line")
		[ -n "${s:-}" ] && stopped+=("$s") checkpoint+=("$c") restore+=("$rs")
		tmp=$from from=$to to=$tmp
	done
	fy "$from" delete -f c1 >/dev/null
	[ ${#stopped[@]} -gt 0 ] || continue
	echo "$procs $(printf '%s\n' "${stopped[@]}" | median) $(printf '%s\n' "${checkpoint[@]}" | median)" \
		"$(printf '%s\n' "${restore[@]}" | median)" >>"$dat"
	echo "# $procs processes: stopped ${stopped[*]}" >&2
done

commit=$(bench_commit)
{
	echo "A live move's stop against the container's processes ($mode, medians of $runs moves, ms):" \
		"$(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $commit"
	echo
	printf '%9s %9s %11s %9s\n' processes stopped checkpoint restore
	awk '!/^#/ {printf "%9d %9d %11d %9d\n", $1, $2, $3, $4}' "$dat"
	echo
	awk '!/^#/ {n++; x+=$1; xx+=$1*$1; for (i = 2; i <= 4; i++) {y[i]+=$i; xy[i]+=$1*$i}}
	     END {if (n < 2 || n*xx == x*x) exit;
	          printf "each process more (least squares): stopped %.1f ms, checkpoint %.1f, restore %.1f\n",
	                 (n*xy[2]-x*y[2])/(n*xx-x*x), (n*xy[3]-x*y[3])/(n*xx-x*x), (n*xy[4]-x*y[4])/(n*xx-x*x)}' "$dat"
} | tee "$out/migrate_tasks.txt"

gnuplot <<GP
set terminal png size 800,450
set output "$out/migrate_tasks.png"
set title "live move ($mode): stop vs processes, commit $commit"
set xlabel "processes in the container"
set ylabel "ms (median)"
set key top left
set grid
plot "$dat" using 1:2 with linespoints title "stopped", \
     "$dat" using 1:3 with linespoints title "checkpoint", \
     "$dat" using 1:4 with linespoints title "restore"
GP
echo "results: $out/migrate_tasks.txt, $out/migrate_tasks.png" >&2
