#!/usr/bin/env python3
"""A small load generator for ferryd's API: CLIENTS processes, each on its
own keep-alive connection (the unix socket, or HTTPS with a client
certificate), send GET PATH back to back for SECONDS and record each
request's latency. Prints "p50_ms p99_ms requests_per_s requests".

usage: api_load.py unix SOCKET PATH CLIENTS SECONDS
       api_load.py https PORT PATH CLIENTS SECONDS CERT KEY
"""
import http.client
import multiprocessing
import socket
import ssl
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("ferry")
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def connect(args):
    if args[0] == "unix":
        return UnixConnection(args[1])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(args[5], args[6])
    return http.client.HTTPSConnection("127.0.0.1", int(args[1]), context=ctx)


def client(args, start_at, seconds, queue):
    conn = connect(args)
    conn.request("GET", "/1.0")  # connect (and handshake) before the clock starts
    conn.getresponse().read()
    while time.time() < start_at:
        time.sleep(0.001)
    latencies = []
    end = start_at + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        conn.request("GET", args[2])
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise SystemExit("GET %s: %d" % (args[2], resp.status))
    queue.put(latencies)


def main():
    args = sys.argv[1:]
    clients, seconds = int(args[3]), float(args[4])
    queue = multiprocessing.Queue()
    start_at = time.time() + 1.0 + clients * 0.02
    procs = [multiprocessing.Process(target=client, args=(args, start_at, seconds, queue)) for _ in range(clients)]
    for p in procs:
        p.start()
    latencies = []
    for _ in procs:
        latencies += queue.get()
    for p in procs:
        p.join()
    latencies.sort()
    n = len(latencies)
    p50 = latencies[int(n * 0.50)] * 1000
    p99 = latencies[min(n - 1, int(n * 0.99))] * 1000
    print("%.2f %.2f %.0f %d" % (p50, p99, n / seconds, n))


if __name__ == "__main__":
    main()
