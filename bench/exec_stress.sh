#!/usr/bin/env bash
# Stress the websocket path that exec takes: each run starts a private
# ferryd, builds the busybox image, then ITERATIONS times launches a
# container, execs `true` in it twice (four websockets each) and deletes it
# with --force. A run fails when a command fails or ferryd dies (the heap
# corruption this was written for aborted ferryd in about half the runs of
# 25 iterations). Everything is torn down after each run (tests/lib.sh).
# Usage: bench/exec_stress.sh [ITERATIONS] [RUNS]   (FERRY_BUILD selects the build)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
iterations=${1:-25}
runs=${2:-1}

one_run() { # in a subshell: ferry_setup's EXIT trap tears the run down
	source "$top/tests/lib.sh"
	ferry_setup >/dev/null || exit 2
	ferry_busybox_image || exit 2
	local i done=0 failed=0
	for i in $(seq "$iterations"); do
		if ! { ferry launch busybox "b$i" >/dev/null && ferry exec "b$i" -- true && ferry exec "b$i" -- true &&
			ferry delete --force "b$i" >/dev/null; } 2>>"$TEST_DIR/cli.err"; then
			failed=$((failed + 1))
		fi
		done=$i
		kill -0 "$FERRYD_PID" 2>/dev/null || break
	done
	local alive=yes sanitizer=0
	kill -0 "$FERRYD_PID" 2>/dev/null || alive=no
	# A sanitizer build (FERRY_BUILD with -Db_sanitize=...) may report without dying.
	sanitizer=$(grep -c -E 'AddressSanitizer|ThreadSanitizer|runtime error' "$TEST_DIR/ferryd.out")
	echo "iterations $done failures $failed ferryd-alive $alive sanitizer-reports $sanitizer"
	if [ "$alive" = no ] || [ "$failed" -gt 0 ] || [ "$sanitizer" -gt 0 ]; then
		grep -E 'malloc|free\(\)|corrupt|ERROR|SIG|Sanitizer|runtime error' "$TEST_DIR/ferryd.out" | head -5 | sed 's/^/#   /'
		tail -3 "$TEST_DIR/cli.err" 2>/dev/null | sed 's/^/#   /'
		exit 1
	fi
	exit 0
}

total_iterations=0 total_failures=0 failed_runs=0
for r in $(seq "$runs"); do
	out=$(one_run)
	rc=$?
	echo "run $r: $out"
	read -r _ it _ f _ _ <<<"$(head -1 <<<"$out")"
	total_iterations=$((total_iterations + ${it:-0}))
	total_failures=$((total_failures + ${f:-0}))
	[ "$rc" -eq 0 ] || failed_runs=$((failed_runs + 1))
done
echo "exec stress: $runs runs x $iterations iterations: $total_iterations iterations done, $total_failures failed, $failed_runs runs failed"
[ "$failed_runs" -eq 0 ]
