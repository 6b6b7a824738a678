#!/usr/bin/python3
"""test_stock_clients.sh's pylxd part: with Debian's pylxd (2.2.10, which
knows /1.0/containers only), trust two hosts by password and move a running
container from the first to the second live, as a pylxd user does.

usage: pylxd_migrate.py ADDR1 ADDR2 CERT KEY PASSWORD NAME
Prints "trusted", then "moved SECONDS" and the names on both hosts."""
import sys
import time
import warnings

import pylxd

warnings.filterwarnings("ignore")  # urllib3: unverified HTTPS (self-signed servers)
a1, a2, crt, key, password, name = sys.argv[1:7]
h1 = pylxd.Client(endpoint="https://%s:8443" % a1, cert=(crt, key), verify=False)
h2 = pylxd.Client(endpoint="https://%s:8443" % a2, cert=(crt, key), verify=False)
for host in (h1, h2):
    if not host.trusted:
        host.authenticate(password)
print("trusted" if h1.trusted and h2.trusted else "not trusted")
c = h1.containers.get(name)
print("status", c.status)
t = time.monotonic()
c.migrate(h2, live=True, wait=True)
print("moved %.2f" % (time.monotonic() - t))
print("h1", " ".join(x.name for x in h1.containers.all()))
print("h2", " ".join("%s:%s" % (x.name, x.status) for x in h2.containers.all()))
