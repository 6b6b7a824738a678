#!/usr/bin/env python3
"""A TCP request/response client, for bench/migrate_downtime.sh: connects to
HOST:PORT (an echo server), sends a numbered line, waits for its echo,
sleeps INTERVAL_MS, and again, until SIGTERM; then prints one line:

  requests=N slowest_ms=X slowest_at_epoch_ms=T broken=0|1

slowest_ms: the longest a request waited for its answer (a request sent
while the server was stopped waits for the stop, and, when the stop dropped
it, for the client's TCP retransmission); slowest_at_epoch_ms: when that
request was sent. broken=1: the connection failed (a stateless move)."""
import signal
import socket
import sys
import time


class Stop(Exception):
    pass


def on_term(signum, frame):
    raise Stop()


def main():
    host, port, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
    signal.signal(signal.SIGTERM, on_term)
    requests, slowest, slowest_at, broken = 0, 0.0, 0, 0
    try:
        sock = socket.create_connection((host, port), timeout=5)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            requests += 1
            line = b"%d\n" % requests
            sent_at = time.time()
            start = time.monotonic()
            sock.sendall(line)
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(64)
                if not chunk:
                    raise OSError("connection closed")
                answer += chunk
            took = time.monotonic() - start
            if answer != line:
                raise OSError("wrong answer")
            if took > slowest:
                slowest, slowest_at = took, int(sent_at * 1000)
            time.sleep(interval)
    except Stop:
        pass
    except OSError:
        broken = 1
        try:
            signal.pause()  # until the bench stops the probe
        except Stop:
            pass
    print("requests=%d slowest_ms=%.1f slowest_at_epoch_ms=%d broken=%d" % (requests, slowest * 1000, slowest_at, broken))


if __name__ == "__main__":
    main()
