/* Host networking: see network.h.
 *
 * Netlink goes through libnl-route, NAT through libnftables. Work inside a
 * container's network namespace uses sockets that a short-lived helper
 * thread opens after setns(): a socket stays in the namespace it was
 * created in, and no thread of the caller ever changes namespace. */
#include "runtime/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <nftables/libnftables.h>

#include "common/log.h"
#include "common/util.h"

/* ---- cleanup helpers for libnl and libnftables objects ---- */

static void nl_sock_freep(struct nl_sock **p)
{
	if (*p != NULL)
		nl_socket_free(*p);
}
static void nl_cache_freep(struct nl_cache **p)
{
	if (*p != NULL)
		nl_cache_free(*p);
}
static void nl_addr_putp(struct nl_addr **p)
{
	if (*p != NULL)
		nl_addr_put(*p);
}
static void rtnl_link_putp(struct rtnl_link **p)
{
	if (*p != NULL)
		rtnl_link_put(*p);
}
static void rtnl_addr_putp(struct rtnl_addr **p)
{
	if (*p != NULL)
		rtnl_addr_put(*p);
}
static void rtnl_route_putp(struct rtnl_route **p)
{
	if (*p != NULL)
		rtnl_route_put(*p);
}
static void rtnl_neigh_putp(struct rtnl_neigh **p)
{
	if (*p != NULL)
		rtnl_neigh_put(*p);
}
static void nft_ctx_freep(struct nft_ctx **p)
{
	if (*p != NULL)
		nft_ctx_free(*p);
}
#define cleanup_nl_sock __attribute__((cleanup(nl_sock_freep)))
#define cleanup_nl_cache __attribute__((cleanup(nl_cache_freep)))
#define cleanup_nl_addr __attribute__((cleanup(nl_addr_putp)))
#define cleanup_rtnl_link __attribute__((cleanup(rtnl_link_putp)))
#define cleanup_rtnl_addr __attribute__((cleanup(rtnl_addr_putp)))
#define cleanup_rtnl_route __attribute__((cleanup(rtnl_route_putp)))
#define cleanup_nft_ctx __attribute__((cleanup(nft_ctx_freep)))
#define cleanup_rtnl_neigh __attribute__((cleanup(rtnl_neigh_putp)))

/* Fill *err from a libnl error code (negative NLE_*), with errno and HTTP
 * status where the code has an obvious one. */
__attribute__((format(printf, 3, 4))) static int nl_error(struct ferry_error **err, int nlerr, const char *fmt, ...)
{
	int errnum = 0, status = 500;
	switch (-nlerr) {
	case NLE_EXIST:
		errnum = EEXIST, status = 409;
		break;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		errnum = ENOENT, status = 404;
		break;
	case NLE_INVAL:
	case NLE_RANGE:
		errnum = EINVAL, status = 400;
		break;
	case NLE_PERM:
		errnum = EPERM;
		break;
	case NLE_BUSY:
		errnum = EBUSY;
		break;
	}
	cleanup_free char *what = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0)
		abort();
	va_end(ap);
	return error_set(err, status, errnum, "%s: %s", what, nl_geterror(nlerr));
}

static bool nl_not_found(int nlerr)
{
	return nlerr == -NLE_OBJ_NOTFOUND || nlerr == -NLE_NODEV;
}

static int ifname_check(const char *name, const char *what, struct ferry_error **err)
{
	if (name == NULL || name[0] == '\0')
		return error_bad_request(err, "%s: no interface name", what);
	if (strlen(name) >= IFNAMSIZ)
		return error_bad_request(err, "%s: interface name '%s' is longer than %d characters", what, name,
					 IFNAMSIZ - 1);
	for (const char *c = name; *c; c++)
		if (*c == '/' || *c == ':' || *c == ' ' || *c == '\t' || *c == '\n' || *c == '"')
			return error_bad_request(err, "%s: invalid interface name '%s'", what, name);
	return 0;
}

static void random_bytes(void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = getrandom((char *)buf + done, len - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			abort(); /* only on kernels without getrandom */
		}
		done += (size_t)n;
	}
}

/* ---- pure address helpers ---- */

int network_cidr_parse(const char *cidr, uint32_t *addr, int *prefix, struct ferry_error **err)
{
	if (cidr == NULL)
		return error_bad_request(err, "invalid CIDR: none given");
	const char *slash = strchr(cidr, '/');
	if (slash == NULL || slash == cidr || slash - cidr >= INET_ADDRSTRLEN)
		return error_bad_request(err, "invalid CIDR '%s': expected ADDRESS/PREFIX", cidr);
	char host[INET_ADDRSTRLEN];
	memcpy(host, cidr, (size_t)(slash - cidr));
	host[slash - cidr] = '\0';
	struct in_addr in;
	if (inet_pton(AF_INET, host, &in) != 1)
		return error_bad_request(err, "invalid CIDR '%s': '%s' is not an IPv4 address", cidr, host);
	const char *p = slash + 1;
	if (*p == '\0' || strlen(p) > 2)
		return error_bad_request(err, "invalid CIDR '%s': bad prefix length", cidr);
	int len = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return error_bad_request(err, "invalid CIDR '%s': bad prefix length", cidr);
		len = len * 10 + (*p - '0');
	}
	if (len > 32)
		return error_bad_request(err, "invalid CIDR '%s': prefix length above 32", cidr);
	*addr = ntohl(in.s_addr);
	*prefix = len;
	return 0;
}

static uint32_t prefix_mask(int prefix)
{
	return prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);
}

static char *ipv4_to_string(uint32_t addr)
{
	struct in_addr in = { .s_addr = htonl(addr) };
	char buf[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &in, buf, sizeof(buf));
	return xstrdup(buf);
}

char *network_ipv4_nth(const char *gateway_cidr, uint32_t n)
{
	uint32_t addr;
	int prefix;
	if (network_cidr_parse(gateway_cidr, &addr, &prefix, NULL) < 0)
		return NULL;
	uint64_t size = 1ull << (32 - prefix);
	/* Host numbers run from 1 to size - 2: 0 is the network, size - 1 the broadcast. */
	if (n == 0 || (uint64_t)n >= size - 1 || size <= 2)
		return NULL;
	return ipv4_to_string((addr & prefix_mask(prefix)) + n);
}

/* ---- netlink sockets, in our namespace or another ---- */

struct netns_task {
	int nsfd;
	void (*fn)(void *arg);
	void *arg;
	int setns_errno;
};

static void *netns_task_thread(void *p)
{
	struct netns_task *task = p;
	if (setns(task->nsfd, CLONE_NEWNET) < 0) {
		task->setns_errno = errno;
		return NULL;
	}
	task->fn(task->arg);
	return NULL;
}

/* Run fn(arg) in a new thread inside the network namespace of pid (0: run
 * it here). The thread ends with fn, taking the namespace switch with it. */
static int netns_run(pid_t pid, void (*fn)(void *), void *arg, struct ferry_error **err)
{
	if (pid == 0) {
		fn(arg);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	cleanup_close int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return error_sys(err, errno, "network namespace of pid %d: open %s", (int)pid, path);
	struct netns_task task = { .nsfd = nsfd, .fn = fn, .arg = arg };
	pthread_t thread;
	int rc = pthread_create(&thread, NULL, netns_task_thread, &task);
	if (rc != 0)
		return error_sys(err, rc, "network namespace of pid %d: start helper thread", (int)pid);
	pthread_join(thread, NULL);
	if (task.setns_errno != 0)
		return error_sys(err, task.setns_errno, "network namespace of pid %d: setns", (int)pid);
	return 0;
}

struct netlink_connect {
	struct nl_sock *sk;
	int protocol;
	int rc;
};

static void netlink_connect_fn(void *p)
{
	struct netlink_connect *c = p;
	c->rc = nl_connect(c->sk, c->protocol);
}

/* A netlink socket of protocol in the network namespace of pid (0: ours). */
static int netlink_socket_open(pid_t pid, int protocol, struct nl_sock **out, struct ferry_error **err)
{
	cleanup_nl_sock struct nl_sock *sk = nl_socket_alloc();
	if (sk == NULL)
		return error_sys(err, ENOMEM, "netlink socket");
	struct netlink_connect c = { .sk = sk, .protocol = protocol };
	if (netns_run(pid, netlink_connect_fn, &c, err) < 0)
		return -1;
	if (c.rc < 0)
		return nl_error(err, c.rc, "netlink socket");
	*out = steal_pointer(&sk);
	return 0;
}

static int route_socket_open(pid_t pid, struct nl_sock **out, struct ferry_error **err)
{
	return netlink_socket_open(pid, NETLINK_ROUTE, out, err);
}

/* ---- TCP listeners' accept queues (sock_diag) ---- */

int network_accept_queues_open(pid_t netns_pid, struct nl_sock **out, struct ferry_error **err)
{
	if (netlink_socket_open(netns_pid, NETLINK_SOCK_DIAG, out, err) < 0)
		return error_wrap(err, "the TCP listeners of pid %d's network namespace", (int)netns_pid);
	/* A dump ends with NLMSG_DONE; no ack follows it. */
	nl_socket_disable_auto_ack(*out);
	return 0;
}

/* A listener's idiag_rqueue is its accept queue's length. */
static int accept_queue_msg(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || nlmsg_datalen(h) < (int)sizeof(struct inet_diag_msg))
		return NL_SKIP;
	const struct inet_diag_msg *m = nlmsg_data(h);
	*(unsigned long *)arg += m->idiag_rqueue;
	return NL_OK;
}

int network_accept_queued(struct nl_sock *sk, unsigned long *queued, struct ferry_error **err)
{
	static const int families[] = { AF_INET, AF_INET6 };
	*queued = 0;
	if (nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, accept_queue_msg, queued) < 0)
		return error_sys(err, ENOMEM, "netlink callback");
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		struct inet_diag_req_v2 req = {
			.sdiag_family = families[i],
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = 1U << TCP_LISTEN,
		};
		int rc = nl_send_simple(sk, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &req, sizeof(req));
		if (rc >= 0)
			rc = nl_recvmsgs_default(sk);
		/* A namespace without IPv6 has no such listener to count. */
		if (rc < 0 && !(families[i] == AF_INET6 && rc == -NLE_OBJ_NOTFOUND))
			return nl_error(err, rc, "the TCP listeners' accept queues");
	}
	return 0;
}

struct packet_open {
	int fd;
	int errnum;
};

static void packet_open_fn(void *p)
{
	struct packet_open *o = p;
	/* Protocol 0: this socket only sends, it never receives a frame. */
	o->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	o->errnum = o->fd < 0 ? errno : 0;
}

/* ---- links and addresses ---- */

static int link_get(struct nl_sock *sk, const char *name, struct rtnl_link **link, struct ferry_error **err)
{
	int rc = rtnl_link_get_kernel(sk, 0, name, link);
	if (rc < 0)
		return nl_error(err, rc, "interface %s", name);
	return 0;
}

static int link_set_up(struct nl_sock *sk, struct rtnl_link *link, struct ferry_error **err)
{
	if (rtnl_link_get_flags(link) & IFF_UP)
		return 0;
	cleanup_rtnl_link struct rtnl_link *change = rtnl_link_alloc();
	if (change == NULL)
		return error_sys(err, ENOMEM, "bring up %s", rtnl_link_get_name(link));
	rtnl_link_set_flags(change, IFF_UP);
	int rc = rtnl_link_change(sk, link, change, 0);
	if (rc < 0)
		return nl_error(err, rc, "bring up %s", rtnl_link_get_name(link));
	return 0;
}

/* Add cidr to the link unless it is there; the broadcast address as ip's
 * "brd +" would set it. */
static int link_address_add(struct nl_sock *sk, struct rtnl_link *link, const char *cidr, struct ferry_error **err)
{
	const char *name = rtnl_link_get_name(link);
	uint32_t host;
	int prefix;
	if (network_cidr_parse(cidr, &host, &prefix, err) < 0)
		return error_wrap(err, "address of %s", name);
	uint32_t local_be = htonl(host), brd_be = htonl(host | ~prefix_mask(prefix));
	cleanup_nl_addr struct nl_addr *local = nl_addr_build(AF_INET, &local_be, sizeof(local_be));
	cleanup_nl_addr struct nl_addr *brd = nl_addr_build(AF_INET, &brd_be, sizeof(brd_be));
	cleanup_rtnl_addr struct rtnl_addr *addr = rtnl_addr_alloc();
	if (local == NULL || brd == NULL || addr == NULL)
		return error_sys(err, ENOMEM, "add address %s to %s", cidr, name);
	nl_addr_set_prefixlen(local, prefix);
	rtnl_addr_set_ifindex(addr, rtnl_link_get_ifindex(link));
	rtnl_addr_set_local(addr, local);
	rtnl_addr_set_prefixlen(addr, prefix);
	if (prefix < 31)
		rtnl_addr_set_broadcast(addr, brd);
	int rc = rtnl_addr_add(sk, addr, 0);
	if (rc < 0 && rc != -NLE_EXIST)
		return nl_error(err, rc, "add address %s to %s", cidr, name);
	return 0;
}

/* ---- nftables ---- */

static int nft_run_locked(const char *script, char **output, struct ferry_error **err)
{
	cleanup_nft_ctx struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (ctx == NULL)
		return error_sys(err, ENOMEM, "nftables context");
	if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0)
		return error_sys(err, ENOMEM, "nftables buffers");
	if (nft_run_cmd_from_buffer(ctx, script) != 0) {
		cleanup_free char *msg = xstrdup(nft_ctx_get_error_buffer(ctx));
		size_t len = strlen(msg);
		while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
			msg[--len] = '\0';
		return error_set(err, 500, 0, "nftables: %s", msg[0] ? msg : "command failed");
	}
	if (output != NULL)
		*output = xstrdup(nft_ctx_get_output_buffer(ctx));
	return 0;
}

/* Run an nft script as one transaction; *output (if not NULL) gets what it
 * printed. */
static int nft_run(const char *script, char **output, struct ferry_error **err)
{
	/* libnftables keeps some process-wide caches: one transaction at a time. */
	static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&nft_lock);
	int rc = nft_run_locked(script, output, err);
	pthread_mutex_unlock(&nft_lock);
	return rc;
}

static char *nat_table_name(const char *bridge)
{
	return xasprintf("ferry-%s", bridge);
}

/* The bridge's NAT table, replaced as a whole in one transaction: the
 * chain is flushed and its one rule added again, so re-running never
 * duplicates it. */
static int nat_table_apply(const char *bridge, uint32_t subnet, int prefix, struct ferry_error **err)
{
	cleanup_free char *table = nat_table_name(bridge);
	cleanup_free char *net = ipv4_to_string(subnet);
	cleanup_free char *script = xasprintf(
		"add table ip %1$s\n"
		"add chain ip %1$s postrouting { type nat hook postrouting priority 100; policy accept; }\n"
		"flush chain ip %1$s postrouting\n"
		"add rule ip %1$s postrouting ip saddr %2$s/%3$d oifname != \"%4$s\" masquerade\n",
		table, net, prefix, bridge);
	if (nft_run(script, NULL, err) < 0)
		return error_wrap(err, "NAT for bridge %s (table ip %s)", bridge, table);
	return 0;
}

static int nat_table_remove(const char *bridge, struct ferry_error **err)
{
	cleanup_free char *table = nat_table_name(bridge);
	/* "add" first so that the delete never fails on a missing table. */
	cleanup_free char *script = xasprintf("add table ip %1$s\ndelete table ip %1$s\n", table);
	if (nft_run(script, NULL, err) < 0)
		return error_wrap(err, "remove NAT table ip %s", table);
	return 0;
}

/* ---- the bridge ---- */

static int bridge_link_ensure(struct nl_sock *sk, const char *bridge, struct rtnl_link **out, struct ferry_error **err)
{
	cleanup_rtnl_link struct rtnl_link *link = NULL;
	int rc = rtnl_link_get_kernel(sk, 0, bridge, &link);
	if (rc < 0 && !nl_not_found(rc))
		return nl_error(err, rc, "look up bridge %s", bridge);
	if (rc < 0) {
		cleanup_rtnl_link struct rtnl_link *create = rtnl_link_bridge_alloc();
		if (create == NULL)
			return error_sys(err, ENOMEM, "create bridge %s", bridge);
		rtnl_link_set_name(create, bridge);
		/* A MAC of its own: a bridge without one takes the lowest of its
		 * ports' and changes it as containers come and go, under the
		 * gateway address the containers have in their ARP caches. */
		uint8_t mac[6];
		random_bytes(mac, sizeof(mac));
		mac[0] = (mac[0] & 0xfe) | 0x02; /* unicast, locally administered */
		cleanup_nl_addr struct nl_addr *hwaddr = nl_addr_build(AF_LLC, mac, sizeof(mac));
		if (hwaddr == NULL)
			return error_sys(err, ENOMEM, "create bridge %s", bridge);
		rtnl_link_set_addr(create, hwaddr);
		rc = rtnl_link_add(sk, create, NLM_F_CREATE | NLM_F_EXCL);
		/* Someone else may have created it meanwhile: fine if it is a bridge. */
		if (rc < 0 && rc != -NLE_EXIST)
			return nl_error(err, rc, "create bridge %s", bridge);
		if (link_get(sk, bridge, &link, err) < 0)
			return error_wrap(err, "create bridge %s", bridge);
		log_info("created bridge %s", bridge);
	}
	const char *type = rtnl_link_get_type(link);
	if (type == NULL || strcmp(type, "bridge") != 0)
		return error_conflict(err, "interface %s exists and is not a bridge (%s)", bridge, type ? type : "no type");
	*out = steal_pointer(&link);
	return 0;
}

int network_bridge_ensure(const char *bridge, const char *gateway_cidr, bool nat, struct ferry_error **err)
{
	if (ifname_check(bridge, "bridge", err) < 0)
		return -1;
	uint32_t gateway;
	int prefix;
	if (network_cidr_parse(gateway_cidr, &gateway, &prefix, err) < 0)
		return error_wrap(err, "bridge %s", bridge);
	cleanup_nl_sock struct nl_sock *sk = NULL;
	if (route_socket_open(0, &sk, err) < 0)
		return error_wrap(err, "bridge %s", bridge);
	cleanup_rtnl_link struct rtnl_link *link = NULL;
	if (bridge_link_ensure(sk, bridge, &link, err) < 0)
		return -1;
	if (link_address_add(sk, link, gateway_cidr, err) < 0)
		return error_wrap(err, "bridge %s", bridge);
	if (link_set_up(sk, link, err) < 0)
		return error_wrap(err, "bridge %s", bridge);

	if (file_write_string("/proc/sys/net/ipv4/ip_forward", "1", err) < 0)
		return error_wrap(err, "bridge %s: enable IPv4 forwarding", bridge);

	if (nat)
		return nat_table_apply(bridge, gateway & prefix_mask(prefix), prefix, err);
	return nat_table_remove(bridge, err);
}

int network_child_tcp_hash(struct ferry_error **err)
{
	static const char path[] = "/proc/sys/net/ipv4/tcp_child_ehash_entries";
	cleanup_free char *now = NULL;
	cleanup_error struct ferry_error *e = NULL;
	if (file_read(path, &now, NULL, &e) < 0) {
		if (e->errnum == ENOENT)
			return 0;
		error_move(err, &e);
		return -1;
	}
	if (strtol(now, NULL, 10) != 0)
		return 0;
	char size[16];
	snprintf(size, sizeof(size), "%d", NETWORK_CHILD_TCP_EHASH);
	if (file_write_string(path, size, err) < 0)
		return -1;
	log_info("containers get a TCP hash table of their own (net.ipv4.tcp_child_ehash_entries = %s)", size);
	return 0;
}

int network_veth_attach(const char *host_name, const char *bridge, struct ferry_error **err)
{
	if (ifname_check(host_name, "veth host end", err) < 0 ||
	    (bridge != NULL && ifname_check(bridge, "veth bridge", err) < 0))
		return -1;
	cleanup_nl_sock struct nl_sock *sk = NULL;
	if (route_socket_open(0, &sk, err) < 0)
		return -1;
	cleanup_rtnl_link struct rtnl_link *link = NULL;
	if (link_get(sk, host_name, &link, err) < 0)
		return -1;
	cleanup_rtnl_link struct rtnl_link *br = NULL;
	if (bridge != NULL && link_get(sk, bridge, &br, err) < 0)
		return -1;
	cleanup_rtnl_link struct rtnl_link *change = rtnl_link_alloc();
	if (change == NULL)
		return error_sys(err, ENOMEM, "%s", host_name);
	rtnl_link_set_master(change, br != NULL ? rtnl_link_get_ifindex(br) : 0);
	if (br != NULL)
		rtnl_link_set_flags(change, IFF_UP);
	int rc = rtnl_link_change(sk, link, change, 0);
	if (rc < 0)
		return br != NULL ? nl_error(err, rc, "put %s on %s", host_name, bridge)
				  : nl_error(err, rc, "take %s off its bridge", host_name);
	/* Back on its bridge: a hold port left by a live move that ended
	 * (with its ferryd, even) would keep the container's frames. Deleted
	 * after the veth is on the bridge: until then it keeps them (its
	 * packet socket is read to the end after); before, they were lost
	 * for as long as the deletion takes (~15 ms here). */
	if (br != NULL)
		network_hold_port_delete(host_name);
	return 0;
}

/* ---- a live move's held frames ---- */

/* "fh" and the last 13 characters of the veth's name (its peer: "fp"...). */
static void hold_port_name(const char *host_name, char name[IFNAMSIZ])
{
	size_t n = strlen(host_name);
	snprintf(name, IFNAMSIZ, "fh%s", host_name + (n > IFNAMSIZ - 3 ? n - (IFNAMSIZ - 3) : 0));
}

int network_hold_port_add(const char *host_name, const char *bridge, int *ifindex, struct ferry_error **err)
{
	if (ifname_check(host_name, "veth host end", err) < 0 || ifname_check(bridge, "hold bridge", err) < 0)
		return -1;
	char name[IFNAMSIZ];
	hold_port_name(host_name, name);
	network_hold_port_delete(host_name);
	cleanup_nl_sock struct nl_sock *sk = NULL;
	if (route_socket_open(0, &sk, err) < 0)
		return -1;
	cleanup_rtnl_link struct rtnl_link *br = NULL;
	if (link_get(sk, bridge, &br, err) < 0)
		return -1;
	/* A veth (this kernel has no dummy driver) whose other end, up so that
	 * the bridge forwards to this one, drops what it gets. */
	cleanup_rtnl_link struct rtnl_link *link = rtnl_link_veth_alloc();
	if (link == NULL)
		return error_sys(err, ENOMEM, "%s", name);
	cleanup_rtnl_link struct rtnl_link *peer = rtnl_link_veth_get_peer(link);
	char peer_name[IFNAMSIZ];
	snprintf(peer_name, sizeof(peer_name), "fp%s", name + 2);
	rtnl_link_set_name(link, name);
	rtnl_link_set_name(peer, peer_name);
	/* Not to lower the bridge's MTU, which follows its smallest port's. */
	rtnl_link_set_mtu(link, 65535);
	rtnl_link_set_mtu(peer, 65535);
	rtnl_link_set_master(link, rtnl_link_get_ifindex(br));
	rtnl_link_set_flags(link, IFF_UP);
	int rc = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	if (rc < 0)
		return nl_error(err, rc, "hold port %s on %s", name, bridge);
	cleanup_rtnl_link struct rtnl_link *made = NULL;
	cleanup_rtnl_link struct rtnl_link *made_peer = NULL;
	if (link_get(sk, name, &made, err) < 0 || link_get(sk, peer_name, &made_peer, err) < 0 ||
	    link_set_up(sk, made_peer, err) < 0) {
		network_hold_port_delete(host_name);
		return -1;
	}
	*ifindex = rtnl_link_get_ifindex(made);
	return 0;
}

int network_hold_port_take(const char *host_name, const unsigned char mac[ETH_ALEN], struct ferry_error **err)
{
	char name[IFNAMSIZ];
	hold_port_name(host_name, name);
	char hwaddr[18];
	snprintf(hwaddr, sizeof(hwaddr), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	cleanup_nl_sock struct nl_sock *sk = NULL;
	if (route_socket_open(0, &sk, err) < 0)
		return -1;
	cleanup_rtnl_link struct rtnl_link *port = NULL;
	if (link_get(sk, name, &port, err) < 0)
		return -1;
	cleanup_nl_addr struct nl_addr *lladdr = nl_addr_build(AF_LLC, mac, ETH_ALEN);
	cleanup_rtnl_neigh struct rtnl_neigh *n = rtnl_neigh_alloc();
	if (lladdr == NULL || n == NULL)
		return error_sys(err, ENOMEM, "%s", name);
	/* `bridge fdb replace MAC dev PORT master static sticky`: sticky, or
	 * a frame the container's kernel sends before the lock would move the
	 * entry back to its veth. */
	rtnl_neigh_set_family(n, AF_BRIDGE);
	rtnl_neigh_set_ifindex(n, rtnl_link_get_ifindex(port));
	rtnl_neigh_set_lladdr(n, lladdr);
	rtnl_neigh_set_state(n, NUD_NOARP);
	rtnl_neigh_set_flags(n, NTF_MASTER | NTF_STICKY);
	int rc = rtnl_neigh_add(sk, n, NLM_F_CREATE | NLM_F_REPLACE);
	if (rc < 0)
		return nl_error(err, rc, "send %s's frames to %s", hwaddr, name);
	return 0;
}

void network_hold_port_delete(const char *host_name)
{
	char name[IFNAMSIZ];
	hold_port_name(host_name, name);
	cleanup_error struct ferry_error *e = NULL;
	if (network_link_delete(name, &e) < 0)
		log_warn("hold port %s: %s", name, e->msg);
}

int network_frames_send(const char *host_name, const struct network_frame *frames, size_t n, size_t *sent,
			struct ferry_error **err)
{
	*sent = 0;
	unsigned ifindex = if_nametoindex(host_name);
	if (ifindex == 0)
		return error_sys(err, errno, "interface %s", host_name);
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	int on = 1;
	if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof(on)) < 0) {
		int errnum = errno;
		if (fd >= 0)
			close(fd);
		return error_sys(err, errnum, "packet socket");
	}
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = (int)ifindex, .sll_halen = ETH_ALEN };
	for (size_t i = 0; i < n; i++) {
		if (frames[i].len < sizeof(struct virtio_net_hdr) + ETH_HLEN)
			continue;
		memcpy(to.sll_addr, frames[i].data + sizeof(struct virtio_net_hdr), ETH_ALEN);
		if (sendto(fd, frames[i].data, frames[i].len, 0, (struct sockaddr *)&to, sizeof(to)) >= 0)
			(*sent)++;
	}
	close(fd);
	return 0;
}

int network_link_delete(const char *ifname, struct ferry_error **err)
{
	if (ifname_check(ifname, "delete interface", err) < 0)
		return -1;
	cleanup_nl_sock struct nl_sock *sk = NULL;
	if (route_socket_open(0, &sk, err) < 0)
		return error_wrap(err, "delete interface %s", ifname);
	cleanup_rtnl_link struct rtnl_link *link = rtnl_link_alloc();
	if (link == NULL)
		return error_sys(err, ENOMEM, "delete interface %s", ifname);
	rtnl_link_set_name(link, ifname);
	int rc = rtnl_link_delete(sk, link);
	if (rc < 0 && !nl_not_found(rc))
		return nl_error(err, rc, "delete interface %s", ifname);
	return 0;
}

int network_bridge_delete(const char *bridge, struct ferry_error **err)
{
	if (network_link_delete(bridge, err) < 0)
		return error_wrap(err, "delete bridge %s", bridge);
	return nat_table_remove(bridge, err) < 0 ? error_wrap(err, "delete bridge %s", bridge) : 0;
}

/* ---- picking a subnet ---- */

struct ipv4_prefix {
	uint32_t addr;
	int len;
};

static bool prefixes_overlap(struct ipv4_prefix a, struct ipv4_prefix b)
{
	uint32_t mask = prefix_mask(a.len < b.len ? a.len : b.len);
	return (a.addr & mask) == (b.addr & mask);
}

static void prefix_list_add(struct ipv4_prefix **list, size_t *n, struct nl_addr *addr, int len)
{
	if (addr == NULL || nl_addr_get_family(addr) != AF_INET || nl_addr_get_len(addr) != 4)
		return;
	uint32_t be;
	memcpy(&be, nl_addr_get_binary_addr(addr), sizeof(be));
	*list = realloc(*list, (*n + 1) * sizeof(**list));
	if (*list == NULL)
		abort();
	(*list)[(*n)++] = (struct ipv4_prefix){ .addr = ntohl(be), .len = len };
}

int network_pick_subnet(char **gateway_cidr, struct ferry_error **err)
{
	cleanup_nl_sock struct nl_sock *sk = NULL;
	if (route_socket_open(0, &sk, err) < 0)
		return error_wrap(err, "pick a subnet");
	cleanup_nl_cache struct nl_cache *addrs = NULL, *routes = NULL;
	int rc = rtnl_addr_alloc_cache(sk, &addrs);
	if (rc < 0)
		return nl_error(err, rc, "pick a subnet: list addresses");
	rc = rtnl_route_alloc_cache(sk, AF_INET, 0, &routes);
	if (rc < 0)
		return nl_error(err, rc, "pick a subnet: list routes");

	cleanup_free struct ipv4_prefix *used = NULL;
	size_t n_used = 0;
	for (struct nl_object *o = nl_cache_get_first(addrs); o != NULL; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		prefix_list_add(&used, &n_used, rtnl_addr_get_local(a), rtnl_addr_get_prefixlen(a));
	}
	for (struct nl_object *o = nl_cache_get_first(routes); o != NULL; o = nl_cache_get_next(o)) {
		struct nl_addr *dst = rtnl_route_get_dst((struct rtnl_route *)o);
		/* A default route overlaps everything and says nothing about local use. */
		if (dst != NULL && nl_addr_get_prefixlen(dst) > 0)
			prefix_list_add(&used, &n_used, dst, (int)nl_addr_get_prefixlen(dst));
	}

	for (int attempt = 0; attempt < 1000; attempt++) {
		uint8_t r[2];
		random_bytes(r, sizeof(r));
		struct ipv4_prefix candidate = {
			.addr = (10u << 24) | ((100u + r[0] % 151u) << 16) | ((uint32_t)r[1] << 8),
			.len = 24,
		};
		bool taken = false;
		for (size_t i = 0; i < n_used && !taken; i++)
			taken = prefixes_overlap(candidate, used[i]);
		if (taken)
			continue;
		cleanup_free char *gw = ipv4_to_string(candidate.addr + 1);
		*gateway_cidr = xasprintf("%s/24", gw);
		return 0;
	}
	return error_set(err, 500, EADDRINUSE, "pick a subnet: no free 10.100-250.x.0/24 found");
}

/* ---- veths ---- */

int network_veth_create(const struct runtime_nic *nic, const char *peer_name, pid_t netns_pid,
			struct ferry_error **err)
{
	if (ifname_check(nic->host_name, "veth host end", err) < 0 || ifname_check(peer_name, "veth peer", err) < 0 ||
	    ifname_check(nic->bridge, "veth bridge", err) < 0)
		return -1;
	const char *host = nic->host_name;
	unsigned mtu = nic->mtu ? nic->mtu : 1500;

	cleanup_nl_sock struct nl_sock *sk = NULL;
	if (route_socket_open(0, &sk, err) < 0)
		return error_wrap(err, "create veth %s", host);
	cleanup_rtnl_link struct rtnl_link *bridge = NULL;
	if (link_get(sk, nic->bridge, &bridge, err) < 0)
		return error_wrap(err, "create veth %s: bridge", host);

	cleanup_close int nsfd = -1;
	if (netns_pid != 0) {
		char nspath[64];
		snprintf(nspath, sizeof(nspath), "/proc/%d/ns/net", (int)netns_pid);
		nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0)
			return error_sys(err, errno, "create veth %s: network namespace of pid %d", host,
					 (int)netns_pid);
	}

	cleanup_rtnl_link struct rtnl_link *link = rtnl_link_veth_alloc();
	if (link == NULL)
		return error_sys(err, ENOMEM, "create veth %s", host);
	cleanup_rtnl_link struct rtnl_link *peer = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(link, host);
	rtnl_link_set_mtu(link, mtu);
	rtnl_link_set_master(link, rtnl_link_get_ifindex(bridge));
	rtnl_link_set_flags(link, IFF_UP);

	rtnl_link_set_name(peer, peer_name);
	rtnl_link_set_mtu(peer, mtu);
	/* The peer is born in the container's namespace: its temporary name
	 * can't collide with the host's interfaces, and it never shows on the host. */
	if (nsfd >= 0)
		rtnl_link_set_ns_fd(peer, nsfd);
	if (nic->hwaddr != NULL) {
		cleanup_nl_addr struct nl_addr *mac = NULL;
		int rc = nl_addr_parse(nic->hwaddr, AF_LLC, &mac);
		if (rc < 0 || nl_addr_get_len(mac) != 6)
			return error_bad_request(err, "create veth %s: invalid MAC address '%s'", host, nic->hwaddr);
		rtnl_link_set_addr(peer, mac);
	}

	int rc = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
	if (rc < 0)
		return nl_error(err, rc, "create veth %s (peer %s in the namespace of pid %d) on %s", host, peer_name,
				(int)netns_pid, nic->bridge);
	return 0;
}

static int default_route_add(struct nl_sock *sk, int ifindex, const char *gateway, struct ferry_error **err)
{
	cleanup_nl_addr struct nl_addr *gw = NULL, *dst = NULL;
	if (nl_addr_parse(gateway, AF_INET, &gw) < 0)
		return error_bad_request(err, "default route: invalid gateway '%s'", gateway);
	if (nl_addr_parse("0.0.0.0/0", AF_INET, &dst) < 0)
		return error_sys(err, ENOMEM, "default route");
	cleanup_rtnl_route struct rtnl_route *route = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	if (route == NULL || nh == NULL) {
		if (nh != NULL)
			rtnl_route_nh_free(nh);
		return error_sys(err, ENOMEM, "default route");
	}
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_protocol(route, RTPROT_STATIC);
	rtnl_route_set_scope(route, RT_SCOPE_UNIVERSE);
	rtnl_route_set_type(route, RTN_UNICAST);
	rtnl_route_set_dst(route, dst);
	rtnl_route_nh_set_gateway(nh, gw);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_add_nexthop(route, nh); /* the route owns nh now */
	int rc = rtnl_route_add(sk, route, NLM_F_REPLACE);
	if (rc < 0)
		return nl_error(err, rc, "default route via %s", gateway);
	return 0;
}

int network_configure_inside(pid_t netns_pid, const char *peer_name, const struct runtime_nic *nic,
			     struct ferry_error **err)
{
	if (ifname_check(peer_name, "configure nic", err) < 0 || ifname_check(nic->name, "configure nic", err) < 0)
		return -1;
	cleanup_nl_sock struct nl_sock *sk = NULL;
	if (route_socket_open(netns_pid, &sk, err) < 0)
		return error_wrap(err, "configure %s", nic->name);

	cleanup_rtnl_link struct rtnl_link *link = NULL;
	int rc = rtnl_link_get_kernel(sk, 0, peer_name, &link);
	/* Renamed by an earlier attempt: carry on with it. */
	if (nl_not_found(rc) && strcmp(peer_name, nic->name) != 0)
		rc = rtnl_link_get_kernel(sk, 0, nic->name, &link);
	if (rc < 0)
		return nl_error(err, rc, "configure %s: find %s in the namespace of pid %d", nic->name, peer_name,
				(int)netns_pid);

	if (strcmp(rtnl_link_get_name(link), nic->name) != 0) {
		cleanup_rtnl_link struct rtnl_link *change = rtnl_link_alloc();
		if (change == NULL)
			return error_sys(err, ENOMEM, "configure %s", nic->name);
		rtnl_link_set_name(change, nic->name);
		rc = rtnl_link_change(sk, link, change, 0);
		if (rc < 0)
			return nl_error(err, rc, "configure %s: rename %s", nic->name, peer_name);
		rtnl_link_put(link);
		link = NULL;
		if (link_get(sk, nic->name, &link, err) < 0)
			return error_wrap(err, "configure %s", nic->name);
	}

	if (nic->ipv4_cidr != NULL && link_address_add(sk, link, nic->ipv4_cidr, err) < 0)
		return error_wrap(err, "configure %s", nic->name);

	cleanup_rtnl_link struct rtnl_link *lo = NULL;
	if (link_get(sk, "lo", &lo, err) < 0 || link_set_up(sk, lo, err) < 0)
		return error_wrap(err, "configure %s", nic->name);
	if (link_set_up(sk, link, err) < 0)
		return error_wrap(err, "configure %s", nic->name);

	if (nic->ipv4_gateway != NULL &&
	    default_route_add(sk, rtnl_link_get_ifindex(link), nic->ipv4_gateway, err) < 0)
		return error_wrap(err, "configure %s", nic->name);
	return 0;
}

/* ---- names ---- */

char *network_new_host_name(void)
{
	uint32_t r;
	random_bytes(&r, sizeof(r));
	return xasprintf("veth%08x", r);
}

/* Whether any interface of our namespace carries this MAC. */
static bool hwaddr_in_use(struct nl_cache *links, const uint8_t mac[6])
{
	if (links == NULL)
		return false;
	for (struct nl_object *o = nl_cache_get_first(links); o != NULL; o = nl_cache_get_next(o)) {
		struct nl_addr *a = rtnl_link_get_addr((struct rtnl_link *)o);
		if (a != NULL && nl_addr_get_len(a) == 6 && memcmp(nl_addr_get_binary_addr(a), mac, 6) == 0)
			return true;
	}
	return false;
}

char *network_new_hwaddr(void)
{
	cleanup_nl_sock struct nl_sock *sk = NULL;
	cleanup_nl_cache struct nl_cache *links = NULL;
	struct ferry_error *ignored = NULL;
	/* Best effort: without a link list a random MAC is still very likely unique. */
	if (route_socket_open(0, &sk, &ignored) < 0 || rtnl_link_alloc_cache(sk, AF_UNSPEC, &links) < 0)
		links = NULL;
	error_free(&ignored);
	uint8_t mac[6] = { 0x00, 0x16, 0x3e };
	for (int attempt = 0; attempt < 100; attempt++) {
		random_bytes(mac + 3, 3);
		if (!hwaddr_in_use(links, mac))
			break;
	}
	return xasprintf("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

/* ---- state ---- */

/* LXD's scope names (shared.GetIPScope): loopback "local", link-local "link". */
static const char *address_scope(int family, const void *bin)
{
	const uint8_t *b = bin;
	if (family == AF_INET) {
		if (b[0] == 127)
			return "local";
		if (b[0] == 169 && b[1] == 254)
			return "link";
		return "global";
	}
	if (IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)bin))
		return "local";
	if (IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)bin) || IN6_IS_ADDR_MC_LINKLOCAL((const struct in6_addr *)bin))
		return "link";
	return "global";
}

static json_t *link_addresses_json(struct nl_cache *addrs, int ifindex)
{
	json_t *list = json_array();
	/* IPv4 first: clients show the first address of each family. */
	static const int families[] = { AF_INET, AF_INET6 };
	for (size_t f = 0; f < 2; f++) {
		for (struct nl_object *o = nl_cache_get_first(addrs); o != NULL; o = nl_cache_get_next(o)) {
			struct rtnl_addr *a = (struct rtnl_addr *)o;
			struct nl_addr *local = rtnl_addr_get_local(a);
			if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != families[f] ||
			    local == NULL)
				continue;
			char text[INET6_ADDRSTRLEN];
			if (inet_ntop(families[f], nl_addr_get_binary_addr(local), text, sizeof(text)) == NULL)
				continue;
			char netmask[8];
			snprintf(netmask, sizeof(netmask), "%d", rtnl_addr_get_prefixlen(a));
			json_array_append_new(list,
					      json_pack("{s:s, s:s, s:s, s:s}", "family",
							families[f] == AF_INET ? "inet" : "inet6", "address", text,
							"netmask", netmask, "scope",
							address_scope(families[f], nl_addr_get_binary_addr(local))));
		}
	}
	return list;
}

static json_t *link_counters_json(struct rtnl_link *link)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "bytes_received", (json_int_t)rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES),
			 "bytes_sent", (json_int_t)rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES),
			 "packets_received", (json_int_t)rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS),
			 "packets_sent", (json_int_t)rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS),
			 "errors_received", (json_int_t)rtnl_link_get_stat(link, RTNL_LINK_RX_ERRORS),
			 "errors_sent", (json_int_t)rtnl_link_get_stat(link, RTNL_LINK_TX_ERRORS),
			 "packets_dropped_outbound", (json_int_t)rtnl_link_get_stat(link, RTNL_LINK_TX_DROPPED),
			 "packets_dropped_inbound", (json_int_t)rtnl_link_get_stat(link, RTNL_LINK_RX_DROPPED));
}

/* The host end of a veth whose other end is link (inside the namespace):
 * the interface of our namespace that IFLA_LINK names, if it points back. */
static char *veth_host_name(struct nl_sock *host_sk, struct rtnl_link *link)
{
	int32_t netnsid;
	const char *type = rtnl_link_get_type(link);
	if (host_sk == NULL || type == NULL || strcmp(type, "veth") != 0 ||
	    rtnl_link_get_link_netnsid(link, &netnsid) < 0)
		return xstrdup("");
	cleanup_rtnl_link struct rtnl_link *peer = NULL;
	if (rtnl_link_get_link(link) <= 0 || rtnl_link_get_kernel(host_sk, rtnl_link_get_link(link), NULL, &peer) < 0)
		return xstrdup("");
	const char *peer_type = rtnl_link_get_type(peer);
	if (peer_type == NULL || strcmp(peer_type, "veth") != 0 ||
	    rtnl_link_get_link(peer) != rtnl_link_get_ifindex(link))
		return xstrdup("");
	return xstrdup(rtnl_link_get_name(peer));
}

static const char *link_type_name(unsigned flags)
{
	if (flags & IFF_BROADCAST)
		return "broadcast";
	if (flags & IFF_LOOPBACK)
		return "loopback";
	if (flags & IFF_POINTOPOINT)
		return "point-to-point";
	return "unknown";
}

int network_state_json(pid_t netns_pid, json_t **state, struct ferry_error **err)
{
	cleanup_nl_sock struct nl_sock *sk = NULL, *host_sk = NULL;
	if (route_socket_open(netns_pid, &sk, err) < 0)
		return error_wrap(err, "network state");
	cleanup_nl_cache struct nl_cache *links = NULL, *addrs = NULL;
	int rc = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
	if (rc < 0)
		return nl_error(err, rc, "network state: list interfaces");
	rc = rtnl_addr_alloc_cache(sk, &addrs);
	if (rc < 0)
		return nl_error(err, rc, "network state: list addresses");
	if (netns_pid != 0) {
		struct ferry_error *ignored = NULL;
		/* Only for host_name: the state is still worth having without it. */
		if (route_socket_open(0, &host_sk, &ignored) < 0)
			error_free(&ignored);
	}

	json_t *result = json_object();
	for (struct nl_object *o = nl_cache_get_first(links); o != NULL; o = nl_cache_get_next(o)) {
		struct rtnl_link *link = (struct rtnl_link *)o;
		unsigned flags = rtnl_link_get_flags(link);
		char hwaddr[64] = "";
		struct nl_addr *mac = rtnl_link_get_addr(link);
		if (mac != NULL && nl_addr_get_len(mac) > 0)
			nl_addr2str(mac, hwaddr, sizeof(hwaddr));
		cleanup_free char *host_name = veth_host_name(host_sk, link);
		json_object_set_new(
			result, rtnl_link_get_name(link),
			json_pack("{s:o, s:o, s:s, s:s, s:i, s:s, s:s}", "addresses",
				  link_addresses_json(addrs, rtnl_link_get_ifindex(link)), "counters",
				  link_counters_json(link), "hwaddr", hwaddr, "host_name", host_name, "mtu",
				  (int)rtnl_link_get_mtu(link), "state", (flags & IFF_UP) ? "up" : "down", "type",
				  link_type_name(flags)));
	}
	*state = result;
	return 0;
}

/* ---- announcing addresses ---- */

struct arp_frame {
	struct ether_header eth;
	struct ether_arp arp;
} __attribute__((packed));

int network_announce(pid_t netns_pid, const char *ifname, struct ferry_error **err)
{
	if (ifname_check(ifname, "announce", err) < 0)
		return -1;
	cleanup_nl_sock struct nl_sock *sk = NULL;
	if (route_socket_open(netns_pid, &sk, err) < 0)
		return error_wrap(err, "announce %s", ifname);
	cleanup_rtnl_link struct rtnl_link *link = NULL;
	if (link_get(sk, ifname, &link, err) < 0)
		return error_wrap(err, "announce %s", ifname);
	if (!(rtnl_link_get_flags(link) & IFF_UP))
		return error_set(err, 409, ENETDOWN, "announce %s: interface is down", ifname);
	struct nl_addr *mac = rtnl_link_get_addr(link);
	if (mac == NULL || nl_addr_get_len(mac) != ETH_ALEN)
		return error_set(err, 400, EINVAL, "announce %s: not an Ethernet interface", ifname);
	int ifindex = rtnl_link_get_ifindex(link);

	cleanup_nl_cache struct nl_cache *addrs = NULL;
	int rc = rtnl_addr_alloc_cache(sk, &addrs);
	if (rc < 0)
		return nl_error(err, rc, "announce %s: list addresses", ifname);

	struct packet_open po = { .fd = -1 };
	if (netns_run(netns_pid, packet_open_fn, &po, err) < 0)
		return error_wrap(err, "announce %s", ifname);
	cleanup_close int fd = po.fd;
	if (fd < 0)
		return error_sys(err, po.errnum, "announce %s: packet socket", ifname);

	struct sockaddr_ll to = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ARP),
		.sll_ifindex = ifindex,
		.sll_halen = ETH_ALEN,
	};
	memset(to.sll_addr, 0xff, ETH_ALEN);

	int sent = 0;
	for (struct nl_object *o = nl_cache_get_first(addrs); o != NULL; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *local = rtnl_addr_get_local(a);
		if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != AF_INET || local == NULL ||
		    nl_addr_get_len(local) != 4)
			continue;
		/* A gratuitous ARP request: sender and target are both our address. */
		struct arp_frame frame = { 0 };
		memset(frame.eth.ether_dhost, 0xff, ETH_ALEN);
		memcpy(frame.eth.ether_shost, nl_addr_get_binary_addr(mac), ETH_ALEN);
		frame.eth.ether_type = htons(ETHERTYPE_ARP);
		frame.arp.arp_hrd = htons(ARPHRD_ETHER);
		frame.arp.arp_pro = htons(ETHERTYPE_IP);
		frame.arp.arp_hln = ETH_ALEN;
		frame.arp.arp_pln = 4;
		frame.arp.arp_op = htons(ARPOP_REQUEST);
		memcpy(frame.arp.arp_sha, nl_addr_get_binary_addr(mac), ETH_ALEN);
		memcpy(frame.arp.arp_spa, nl_addr_get_binary_addr(local), 4);
		memcpy(frame.arp.arp_tpa, nl_addr_get_binary_addr(local), 4);
		if (sendto(fd, &frame, sizeof(frame), 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
			char text[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, nl_addr_get_binary_addr(local), text, sizeof(text));
			return error_sys(err, errno, "announce %s: send ARP for %s", ifname, text);
		}
		sent++;
	}
	log_debug("announced %d IPv4 address(es) of %s in the namespace of pid %d", sent, ifname, (int)netns_pid);
	return 0;
}
