/* A live move's held frames (runtime.h: runtime_frame_hold_*).
 *
 * The network lock of a dump takes the container's veths off their
 * bridges: what the LAN sends it while it is stopped was lost, and a TCP
 * client whose request fell there waited for its own retransmission
 * (~200 ms: Linux's tail loss probe with one segment out). Here, from
 * right before the freeze, each NIC's MAC goes to a hold port on its
 * bridge (network_hold_port_add: made before), where a packet socket keeps
 * every frame addressed to it; the target sends them into the container
 * once it runs, or, when the dump fails, they go back to it here. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "runtime/internal.h"
#include "runtime/network.h"
#include "runtime/runtime.h"

/* What a hold keeps at most: a stop's worth of traffic, not a flood's. */
#define HOLD_MAX_BYTES (16u << 20)
/* Each hold socket's receive buffer: room for the frames that come while
 * its thread is not run (a busy host; the default ~200 KiB holds ~150). */
#define HOLD_SOCKET_BYTES (4 << 20)

struct hold_port {
	char *host_name;
	unsigned char mac[ETH_ALEN];
	int sock;
};

struct runtime_frame_hold {
	char *dir; /* the container's state directory */
	struct hold_port *ports;
	size_t n_ports;
	int stop[2];
	pthread_t thread;
	bool taken, thread_on, ended, given_back;
	pthread_mutex_t lock;
	char *buf; /* [u32 length, network order][frame]... */
	size_t len, cap, frames, dropped;
};

static void *grow(void *p, size_t size)
{
	p = realloc(p, size);
	if (p == NULL)
		abort();
	return p;
}

static void hold_keep(struct runtime_frame_hold *h, const unsigned char *frame, size_t len)
{
	pthread_mutex_lock(&h->lock);
	if (h->len + 4 + len > HOLD_MAX_BYTES) {
		h->dropped++;
	} else {
		if (h->len + 4 + len > h->cap) {
			h->cap = h->cap ? h->cap * 2 : 64 << 10;
			while (h->cap < h->len + 4 + len)
				h->cap *= 2;
			h->buf = grow(h->buf, h->cap);
		}
		uint32_t be = htonl((uint32_t)len);
		memcpy(h->buf + h->len, &be, 4);
		memcpy(h->buf + h->len + 4, frame, len);
		h->len += 4 + len;
		h->frames++;
	}
	pthread_mutex_unlock(&h->lock);
}

/* A frame as a packet socket with PACKET_VNET_HDR gives it: the
 * virtio_net_hdr (checksum still to be made, GSO) and the frame, which
 * can be a GSO packet of up to 64 KiB. */
#define FRAME_MAX (sizeof(struct virtio_net_hdr) + 65536 + ETH_HLEN)

/* What the bridge sent the hold port for port i's MAC (not floods:
 * broadcasts reach the container's new home too). */
static bool held_here(const struct runtime_frame_hold *h, size_t i, const unsigned char *buf, ssize_t n,
		      const struct sockaddr_ll *from)
{
	return n >= (ssize_t)(sizeof(struct virtio_net_hdr) + ETH_HLEN) && from->sll_pkttype == PACKET_OUTGOING &&
	       memcmp(buf + sizeof(struct virtio_net_hdr), h->ports[i].mac, ETH_ALEN) == 0;
}

/* Keep what port i's socket has queued. Its port deleted (the veth back
 * on its bridge), the socket says ENETDOWN once, then gives the rest. */
static void hold_read(struct runtime_frame_hold *h, size_t i, unsigned char *frame)
{
	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(h->ports[i].sock, frame, FRAME_MAX, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0 && (errno == EINTR || errno == ENETDOWN))
			continue;
		if (n < 0)
			return;
		if (held_here(h, i, frame, n, &from))
			hold_keep(h, frame, (size_t)n);
	}
}

static void *hold_thread(void *arg)
{
	struct runtime_frame_hold *h = arg;
	struct pollfd *fds = xcalloc(h->n_ports + 1, sizeof(*fds));
	for (size_t i = 0; i < h->n_ports; i++)
		fds[i] = (struct pollfd){ .fd = h->ports[i].sock, .events = POLLIN };
	fds[h->n_ports] = (struct pollfd){ .fd = h->stop[0], .events = POLLIN };
	unsigned char *frame = xcalloc(1, FRAME_MAX);
	for (;;) {
		if (poll(fds, h->n_ports + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[h->n_ports].revents)
			break;
		for (size_t i = 0; i < h->n_ports; i++)
			if (fds[i].revents)
				hold_read(h, i, frame);
	}
	free(frame);
	free(fds);
	return NULL;
}

static bool mac_parse(const char *text, unsigned char mac[ETH_ALEN])
{
	unsigned v[ETH_ALEN];
	char tail;
	if (text == NULL || sscanf(text, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return false;
	for (int i = 0; i < ETH_ALEN; i++) {
		if (v[i] > 0xff)
			return false;
		mac[i] = (unsigned char)v[i];
	}
	return true;
}

int runtime_frame_hold_prepare(const char *dir, struct runtime_frame_hold **out, struct ferry_error **err)
{
	*out = NULL;
	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return -1;
	struct runtime_frame_hold *h = xcalloc(1, sizeof(*h));
	h->dir = xstrdup(dir);
	h->stop[0] = h->stop[1] = -1;
	pthread_mutex_init(&h->lock, NULL);
	h->ports = xcalloc(spec->n_nics ? spec->n_nics : 1, sizeof(*h->ports));
	int r = 0;
	for (size_t i = 0; i < spec->n_nics && r == 0; i++) {
		const struct runtime_nic *nic = &spec->nics[i];
		if (nic->host_name == NULL || nic->bridge == NULL)
			continue;
		struct hold_port *p = &h->ports[h->n_ports];
		if (!mac_parse(nic->hwaddr, p->mac)) {
			r = error_bad_request(err, "NIC %s: MAC address %s", nic->name, nic->hwaddr ? nic->hwaddr : "none");
			break;
		}
		p->sock = -1;
		int ifindex = 0;
		if (network_hold_port_add(nic->host_name, nic->bridge, &ifindex, err) < 0) {
			r = -1;
			break;
		}
		p->host_name = xstrdup(nic->host_name);
		h->n_ports++;
		p->sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
		struct sockaddr_ll at = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = ifindex };
		/* With their checksum state: a frame from a veth may carry a
		 * checksum still to be made, which would fail where it is sent
		 * again without it. */
		int on = 1;
		if (p->sock < 0 || setsockopt(p->sock, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof(on)) < 0 ||
		    bind(p->sock, (struct sockaddr *)&at, sizeof(at)) < 0) {
			r = error_sys(err, errno, "packet socket on the hold port of %s", nic->host_name);
			break;
		}
		int room = HOLD_SOCKET_BYTES;
		if (setsockopt(p->sock, SOL_SOCKET, SO_RCVBUFFORCE, &room, sizeof(room)) < 0)
			setsockopt(p->sock, SOL_SOCKET, SO_RCVBUF, &room, sizeof(room));
	}
	if (r == 0 && pipe2(h->stop, O_CLOEXEC) < 0)
		r = error_sys(err, errno, "pipe");
	runtime_spec_free(spec);
	if (r < 0) {
		runtime_frame_hold_free(h);
		return -1;
	}
	*out = h;
	return 0;
}

int runtime_frame_hold_take(struct runtime_frame_hold *h, struct ferry_error **err)
{
	pthread_mutex_lock(&h->lock);
	bool go = !h->taken && !h->ended;
	h->taken = true;
	pthread_mutex_unlock(&h->lock);
	if (!go)
		return 0;
	if (pthread_create(&h->thread, NULL, hold_thread, h) != 0)
		return error_sys(err, EAGAIN, "hold thread");
	h->thread_on = true;
	for (size_t i = 0; i < h->n_ports; i++)
		if (network_hold_port_take(h->ports[i].host_name, h->ports[i].mac, err) < 0)
			return -1;
	return 0;
}

void runtime_frame_hold_end(struct runtime_frame_hold *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	bool first = !h->ended;
	h->ended = true;
	pthread_mutex_unlock(&h->lock);
	if (!first)
		return;
	/* The ports stay (deleting a link takes ~20 ms here): free deletes
	 * them, and so does putting the veths back on their bridges. */
	if (h->thread_on) {
		ssize_t w = write(h->stop[1], "x", 1);
		(void)w;
		pthread_join(h->thread, NULL);
		h->thread_on = false;
	}
	/* What was still queued on the sockets, and what they had no room for
	 * (counted as dropped, though some were floods, not kept anyway). */
	if (h->taken) {
		unsigned char *frame = xcalloc(1, FRAME_MAX);
		for (size_t i = 0; i < h->n_ports; i++) {
			hold_read(h, i, frame);
			struct tpacket_stats st;
			socklen_t sl = sizeof(st);
			if (getsockopt(h->ports[i].sock, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0)
				h->dropped += st.tp_drops;
		}
		free(frame);
	}
}

const char *runtime_frame_hold_frames(const struct runtime_frame_hold *h, size_t *len, size_t *count, size_t *dropped)
{
	*len = h->len;
	*count = h->frames;
	*dropped = h->dropped;
	return h->buf;
}

void runtime_frame_hold_free(struct runtime_frame_hold *h)
{
	if (h == NULL)
		return;
	runtime_frame_hold_end(h);
	for (size_t i = 0; i < h->n_ports; i++) {
		network_hold_port_delete(h->ports[i].host_name);
		if (h->ports[i].sock >= 0)
			close(h->ports[i].sock);
		free(h->ports[i].host_name);
	}
	free(h->ports);
	if (h->stop[0] >= 0)
		close(h->stop[0]);
	if (h->stop[1] >= 0)
		close(h->stop[1]);
	pthread_mutex_destroy(&h->lock);
	free(h->buf);
	free(h->dir);
	free(h);
}

/* How many frames go at once: a stop's worth at once (hundreds) would
 * overflow a UDP socket's receive buffer (~350 small datagrams by default)
 * before its task has read any. */
#define GIVE_BATCH 32
/* Between batches, the container's UDP sockets may hold this much... */
#define GIVE_QUEUED_MAX (32 << 10)
/* ... waited for at most this long. */
#define GIVE_WAIT_MS 20

/* Bytes waiting on the UDP sockets of pid's network namespace
 * (/proc/PID/net/udp and udp6: rx_queue), or -1. */
static long udp_queued(pid_t pid)
{
	long total = -1;
	for (int v6 = 0; v6 < 2; v6++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/net/udp%s", (int)pid, v6 ? "6" : "");
		FILE *f = fopen(path, "re");
		if (f == NULL)
			continue;
		char line[512];
		if (fgets(line, sizeof(line), f) != NULL) { /* the header */
			while (fgets(line, sizeof(line), f) != NULL) {
				unsigned long tx, rx;
				if (sscanf(line, "%*s %*s %*s %*s %lx:%lx", &tx, &rx) == 2)
					total = (total < 0 ? 0 : total) + (long)rx;
			}
		}
		fclose(f);
	}
	return total;
}

/* Until the container whose init is pid has read what it was given (its
 * UDP sockets nearly empty), GIVE_WAIT_MS at most. */
static void wait_read(pid_t pid)
{
	if (pid <= 0)
		return;
	long long until = now_ms() + GIVE_WAIT_MS;
	while (udp_queued(pid) > GIVE_QUEUED_MAX && now_ms() < until) {
		struct timespec ts = { 0, 200 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* Send the frames of data addressed to mac out of the host veth host_name
 * into the container whose init is pid (0: unknown), in their order, a
 * batch at a time; *given += how many went. */
static int give_to(const char *host_name, const unsigned char mac[ETH_ALEN], const char *data, size_t len, pid_t pid,
		   size_t *given, struct ferry_error **err)
{
	struct network_frame *frames = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	for (size_t off = 0; off + 4 <= len;) {
		uint32_t be;
		memcpy(&be, data + off, 4);
		size_t flen = ntohl(be);
		if (flen > len - off - 4) {
			r = error_bad_request(err, "held frames: a frame of %zu bytes past the end", flen);
			break;
		}
		const unsigned char *f = (const unsigned char *)data + off + 4;
		if (flen >= sizeof(struct virtio_net_hdr) + ETH_HLEN &&
		    memcmp(f + sizeof(struct virtio_net_hdr), mac, ETH_ALEN) == 0) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				frames = grow(frames, cap * sizeof(*frames));
			}
			frames[n++] = (struct network_frame){ .data = f, .len = flen };
		}
		off += 4 + flen;
	}
	for (size_t i = 0; r == 0 && i < n; i += GIVE_BATCH) {
		if (i > 0)
			wait_read(pid);
		size_t sent = 0;
		if (network_frames_send(host_name, frames + i, n - i < GIVE_BATCH ? n - i : GIVE_BATCH, &sent, err) < 0)
			r = -1;
		*given += sent;
	}
	free(frames);
	return r;
}

int runtime_frames_give(const char *dir, const char *data, size_t len, size_t *given, struct ferry_error **err)
{
	*given = 0;
	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return -1;
	int r = 0;
	pid_t init = init_find(dir);
	for (size_t i = 0; i < spec->n_nics && r == 0; i++) {
		const struct runtime_nic *nic = &spec->nics[i];
		unsigned char mac[ETH_ALEN];
		if (nic->host_name != NULL && mac_parse(nic->hwaddr, mac))
			r = give_to(nic->host_name, mac, data, len, init, given, err);
	}
	runtime_spec_free(spec);
	return r;
}

void runtime_frame_hold_give_back(struct runtime_frame_hold *h, const char *name)
{
	if (h == NULL)
		return;
	runtime_frame_hold_end(h);
	pthread_mutex_lock(&h->lock);
	bool first = !h->given_back;
	h->given_back = true;
	pthread_mutex_unlock(&h->lock);
	if (!first || h->frames == 0)
		return;
	size_t given = 0;
	pid_t init = init_find(h->dir);
	for (size_t i = 0; i < h->n_ports; i++) {
		cleanup_error struct ferry_error *e = NULL;
		if (give_to(h->ports[i].host_name, h->ports[i].mac, h->buf, h->len, init, &given, &e) < 0)
			log_warn("container %s: the frames held for it: %s", name, e->msg);
	}
	log_info("container %s: gave it back %zu frames held while it was stopped", name, given);
}
