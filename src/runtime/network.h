/* Host networking through netlink (libnl-route) and nftables (libnftables):
 * the host's bridge, the containers' veths, addresses and routes.
 *
 * Nothing here changes the calling thread's namespaces: work inside a
 * container's network namespace goes through sockets opened there by a
 * short-lived helper thread, so these functions are safe in the
 * multi-threaded ferryd as well as in a monitor. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "runtime/runtime.h"

/* Create (or keep) the bridge with gateway_cidr ("10.166.0.1/24") as its
 * address, up, with IPv4 forwarding on and, when nat is true, masquerading
 * of the subnet's traffic to other interfaces (nftables table
 * "ip ferry-<bridge>", one rule). nat false removes that table. Idempotent:
 * running it again changes nothing. */
int network_bridge_ensure(const char *bridge, const char *gateway_cidr, bool nat, struct ferry_error **err);
/* Give every network namespace made from this one afterwards (the
 * containers', by their start or by CRIU's restore) a TCP established hash
 * table of its own, of NETWORK_CHILD_TCP_EHASH buckets, unless the host
 * chose a size (net.ipv4.tcp_child_ehash_entries not 0). With the host's
 * table (262144 buckets here) every socket dump walks all of it: CRIU's
 * checkpoint asks for TCP sockets four times, ~1.2 ms each here. A kernel
 * without the setting (before 6.1) is left as it is. */
#define NETWORK_CHILD_TCP_EHASH 16384
int network_child_tcp_hash(struct ferry_error **err);
/* Remove the bridge and its NAT table, whichever exist. */
int network_bridge_delete(const char *bridge, struct ferry_error **err);
/* Pick a free private /24 for a new bridge: one no interface or route of this
 * host uses (10.100-250.X.0/24). Returns "10.X.Y.1/24" (free()). */
int network_pick_subnet(char **gateway_cidr, struct ferry_error **err);

/* Create the veth pair for nic: the host end (nic->host_name, required) on
 * nic->bridge, up, mtu nic->mtu; the other end named peer_name, carrying
 * nic->hwaddr, created directly in the network namespace of netns_pid (so
 * peer_name never meets the host's interface names). netns_pid 0 leaves
 * the peer, down, in the caller's namespace (CRIU could move it into a
 * restored namespace with --external netdev[eth0]:peer_name; a restore
 * has CRIU make its veth instead, which spares the move's ~20 ms). */
int network_veth_create(const struct runtime_nic *nic, const char *peer_name, pid_t netns_pid,
			struct ferry_error **err);
/* Inside the network namespace of netns_pid: rename peer_name to nic->name,
 * set its address (nic->ipv4_cidr, if any), bring it and lo up, add the
 * default route via nic->ipv4_gateway (if any). */
int network_configure_inside(pid_t netns_pid, const char *peer_name, const struct runtime_nic *nic,
			     struct ferry_error **err);
/* Put a veth's host end on bridge and up, or (bridge NULL) take it off its
 * bridge: a container's network lock while CRIU dumps or restores it.
 * Off, nothing from the LAN reaches the container and nothing it sends
 * leaves, its own carrier unchanged. */
int network_veth_attach(const char *host_name, const char *bridge, struct ferry_error **err);
/* A live move's held frames (runtime_frame_hold): while the container is
 * stopped, what the LAN sends it goes to a hold port on its bridge (a veth
 * pair named after its veth: this kernel has no dummy driver) instead of
 * being lost, to be given to it where it runs next. */
/* Make the hold port for the veth host_name on bridge (its ifindex). */
int network_hold_port_add(const char *host_name, const char *bridge, int *ifindex, struct ferry_error **err);
/* The bridge sends frames for mac to the hold port from now on (a static
 * FDB entry on it, in place of the veth's). */
int network_hold_port_take(const char *host_name, const unsigned char mac[6], struct ferry_error **err);
/* Delete the hold port, if there is one, and with it its FDB entries. */
void network_hold_port_delete(const char *host_name);
struct network_frame {
	const unsigned char *data; /* a struct virtio_net_hdr, then an Ethernet frame */
	size_t len;
};
/* Send frames out of the host end host_name of a veth: the container
 * receives them. *sent: how many went. */
int network_frames_send(const char *host_name, const struct network_frame *frames, size_t n, size_t *sent,
			struct ferry_error **err);
/* Delete a host-side link if it still exists. */
int network_link_delete(const char *ifname, struct ferry_error **err);
/* A fresh host-side veth name: "veth" + 8 hex digits (free()). */
char *network_new_host_name(void);
/* A random MAC in LXD's 00:16:3e prefix, not used by any interface of this
 * host (free()). */
char *network_new_hwaddr(void);

/* LXD's instance state "network" object for every interface in the network
 * namespace of netns_pid (0: the caller's own):
 * {"eth0": {"addresses": [{"family","address","netmask","scope"}...],
 *  "counters": {...}, "hwaddr", "host_name", "mtu", "state", "type"}, ...}.
 * host_name is the host end of a veth when that end lives in the caller's
 * namespace, else "". */
int network_state_json(pid_t netns_pid, json_t **state, struct ferry_error **err);
/* Send one gratuitous ARP for each IPv4 address of ifname, from inside the
 * network namespace of netns_pid, so that bridges and neighbours learn
 * where the address lives now (after a migration's restore). */
int network_announce(pid_t netns_pid, const char *ifname, struct ferry_error **err);

/* The connections waiting in the accept queues of the TCP listeners (IPv4
 * and IPv6) in the network namespace of netns_pid, which a checkpoint can't
 * save (CRIU's "In-flight connection"): network_accept_queues_open makes
 * the socket that asks (nl_socket_free() it), network_accept_queued asks,
 * ~0.1 ms. */
struct nl_sock;
int network_accept_queues_open(pid_t netns_pid, struct nl_sock **out, struct ferry_error **err);
int network_accept_queued(struct nl_sock *sk, unsigned long *queued, struct ferry_error **err);

/* "10.166.0.1/24" -> *addr (host byte order) and *prefix. A bare address
 * is rejected: the prefix is required. */
int network_cidr_parse(const char *cidr, uint32_t *addr, int *prefix, struct ferry_error **err);
/* The nth host address of gateway_cidr's subnet, without prefix:
 * ("10.166.0.1/24", 23) -> "10.166.0.23" (free()). NULL for n = 0 (the
 * network address), at or past the broadcast address, or a bad cidr. */
char *network_ipv4_nth(const char *gateway_cidr, uint32_t n);
