/* Host networking through netlink (libnl-route) and nftables (libnftables):
 * the host's bridge, the containers' veths, addresses and routes. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "runtime/runtime.h"

/* Create (or keep) the bridge with gateway_cidr ("10.166.0.1/24") as its
 * address, up, with IPv4 forwarding on and, when nat is true, masquerading
 * of the subnet's traffic to other interfaces. Idempotent. */
int network_bridge_ensure(const char *bridge, const char *gateway_cidr, bool nat, struct ferry_error **err);
/* Remove the bridge and its NAT rule (tests). */
int network_bridge_delete(const char *bridge, struct ferry_error **err);
/* Pick a free private /24 for a new bridge: one no interface or route of this
 * host uses. Returns "10.X.Y.1/24". */
int network_pick_subnet(char **gateway_cidr, struct ferry_error **err);

/* Create the veth pair for nic: the host end (nic->host_name) on nic->bridge,
 * up; the other end named peer_name, carrying nic->hwaddr, moved into the
 * network namespace of netns_pid. */
int network_veth_create(const struct runtime_nic *nic, const char *peer_name, pid_t netns_pid,
			struct ferry_error **err);
/* Inside the network namespace of netns_pid: rename peer_name to nic->name,
 * set its address, bring it and lo up, add the default route via the gateway. */
int network_configure_inside(pid_t netns_pid, const char *peer_name, const struct runtime_nic *nic,
			     struct ferry_error **err);
/* Delete a host-side link if it still exists. */
int network_link_delete(const char *ifname, struct ferry_error **err);
/* A fresh host-side veth name: "veth" + 8 hex digits. */
char *network_new_host_name(void);
/* A random MAC in LXD's 00:16:3e prefix. */
char *network_new_hwaddr(void);
