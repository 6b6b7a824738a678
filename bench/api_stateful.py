#!/usr/bin/env python3
"""Stateful stop and start of one instance through ferryd's API, timed as
an API client meets them: from the request to the end of its operation
(GET /1.0/operations/ID/wait), on one keep-alive connection over the unix
socket, so that no client's own start is counted. Prints a line
"stop_ms start_ms" per run; exits 1 with the operation's error if one
fails.

usage: api_stateful.py SOCKET NAME RUNS PAUSE_S
"""
import json
import sys
import time

from api_load import UnixConnection  # bench/ is the script's directory: on sys.path


def call(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    resp = conn.getresponse()
    return json.loads(resp.read() or b"{}")


def timed_state(conn, name, body):
    """The request and the wait for its operation: (ms, error or None)."""
    t0 = time.perf_counter()
    answer = call(conn, "PUT", f"/1.0/instances/{name}/state", body)
    op = answer.get("operation")
    if not op:
        return 0, answer.get("error") or "no operation"
    done = call(conn, "GET", f"{op}/wait?timeout=300")
    ms = (time.perf_counter() - t0) * 1000
    meta = done.get("metadata") or {}
    if meta.get("status") != "Success":
        return ms, meta.get("err") or done.get("error") or "failed"
    return ms, None


def main():
    sock, name, runs, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    conn = UnixConnection(sock)
    call(conn, "GET", "/1.0")  # connected before the first clock starts
    for _ in range(runs):
        stop_ms, err = timed_state(conn, name, {"action": "stop", "stateful": True, "timeout": 30})
        if err:
            print(f"stateful stop of {name}: {err}", file=sys.stderr)
            sys.exit(1)
        time.sleep(pause)
        start_ms, err = timed_state(conn, name, {"action": "start"})
        if err:
            print(f"start of {name}: {err}", file=sys.stderr)
            sys.exit(1)
        print(f"{stop_ms:.1f} {start_ms:.1f}", flush=True)
        time.sleep(pause)


if __name__ == "__main__":
    main()
