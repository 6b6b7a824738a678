#!/usr/bin/env python3
"""Hold N idle TCP connections to ferryd's HTTPS port, plus one TLS
connection that sent half a request and then nothing (slowloris). Touches
READY_FILE when all are open, then waits until STOP_FILE exists or
timeout_s pass. Prints how many idle connections were accepted and, when
the server closes the half-sent request, after how many seconds.

usage: https_flood.py PORT N READY_FILE STOP_FILE TIMEOUT_S
"""
import select
import socket
import ssl
import sys
import time

port, n, ready_file, stop_file, timeout_s = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
idle = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", int(port)))
    idle.append(s)

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
half = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))))
half.sendall(b"GET /1.0 HTTP/1.1\r\nHost: ferry\r\nX-Slow: ")
sent_at = time.time()
open(ready_file, "w").close()

closed_after = None
deadline = time.time() + timeout_s
import os
while time.time() < deadline and not os.path.exists(stop_file):
    r, _, _ = select.select([half], [], [], 0.2)
    if r and closed_after is None:
        try:
            data = half.recv(4096)
        except (ssl.SSLError, OSError):
            data = b""
        if not data:
            closed_after = time.time() - sent_at
            break
alive = 0
for s in idle:
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        alive += 1
    else:
        try:
            if s.recv(1, socket.MSG_PEEK):
                alive += 1
        except OSError:
            pass
print("idle_open", alive)
print("half_request_closed_after", "%.1f" % closed_after if closed_after is not None else "never")
