/* ferryd: the daemon. Sets up its directories, log, database and bridge,
 * serves the API on ROOT/unix.socket, and on SIGTERM/SIGINT stops serving
 * and exits, leaving the containers to their monitors. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <linux/magic.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/db.h"
#include "daemon/db_networks.h"
#include "daemon/instance.h"
#include "daemon/server.h"
#include "daemon/snapshots.h"
#include "daemon/tls.h"
#include "runtime/network.h"
#include "runtime/runtime.h"

/* How long in-flight requests get to finish at shutdown. */
#define SHUTDOWN_GRACE_MS 3000

static void usage(FILE *out)
{
	fprintf(out, "Usage: ferryd [--root DIR] [--bridge NAME] [--bridge-cidr CIDR] [--address-range FIRST-LAST] [--debug]\n"
		     "       ferryd --root DIR --bridge NAME --purge\n"
		     "\n"
		     "  --root DIR       state directory (default /var/lib/ferry)\n"
		     "  --bridge NAME    the containers' bridge (default ferrybr0)\n"
		     "  --bridge-cidr CIDR  the bridge's address and subnet (\"10.5.6.1/24\"), kept\n"
		     "                   from then on (default: a free /24 picked once)\n"
		     "  --address-range FIRST-LAST  give containers addresses from this range of\n"
		     "                   the subnet only (hosts sharing one L2 segment)\n"
		     "  --debug          log every request, and CRIU's debug lines\n"
		     "  --purge          remove what this daemon made outside its root (the bridge,\n"
		     "                   its NAT rule, empty cgroups), then exit\n");
}

/* Fatal start-up errors go to the log and to stderr (whoever started us). */
static int die(struct ferry_error *err, const char *what)
{
	log_error("%s: %s", what, err ? err->msg : "unknown error");
	fprintf(stderr, "ferryd: %s: %s\n", what, err ? err->msg : "unknown error");
	return 1;
}

static int dirs_create(struct daemon *d, struct ferry_error **err)
{
	if (mkdir_p(d->root, 0711, err) < 0)
		return -1;
	/* Monitors (and, unprivileged, containers) pass through it: traverse only. */
	if (chmod(d->root, 0711) < 0)
		return error_sys(err, errno, "chmod %s", d->root);
	const char *dirs[] = { d->containers_dir, d->images_dir, d->cache_dir, d->log_dir, d->trash_dir };
	const mode_t modes[] = { 0711, 0700, 0700, 0700, 0700 };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (mkdir_p(dirs[i], modes[i], err) < 0)
			return -1;
	cleanup_free char *database = xasprintf("%s/database", d->root);
	return mkdir_p(database, 0700, err);
}

/* Where a live move's pages wait for their restore (migrate/target.c): in
 * memory, a directory of this root's own on /dev/shm. Emptied here (what a
 * killed ferryd left) and at a clean exit. NULL without a tmpfs there. */
static char *staging_dir_path(const char *root)
{
	uint32_t h = 2166136261u; /* FNV-1a of the root: one directory per ferryd */
	for (const char *p = root; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return xasprintf("/dev/shm/ferry-pages-%08x", h);
}

static char *staging_dir_make(const char *root)
{
	struct statfs st;
	if (statfs("/dev/shm", &st) < 0 || st.f_type != TMPFS_MAGIC)
		return NULL;
	char *dir = staging_dir_path(root);
	cleanup_error struct ferry_error *err = NULL;
	if (rm_rf(dir, &err) < 0 || mkdir_p(dir, 0711, &err) < 0) {
		log_warn("%s: %s (live moves' pages go beside their instances)", dir, err->msg);
		free(dir);
		return NULL;
	}
	/* The containers' root groups pass through it to their own (as containers/). */
	chmod(dir, 0711);
	return dir;
}

/* One ferryd per root: a lock held for the process's life. */
static int root_lock(const char *root, struct ferry_error **err)
{
	cleanup_free char *path = xasprintf("%s/ferryd.lock", root);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_sys(err, errno, "open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return error_set(err, 409, e, "another ferryd is already running on %s", root);
		return error_sys(err, e, "lock %s", path);
	}
	return fd; /* kept open on purpose */
}

/* Every HTTPS connection holds a descriptor: allow as many as the hard
 * limit does (the listener caps connections itself). */
static void nofile_limit_raise(void)
{
	struct rlimit lim;
	if (getrlimit(RLIMIT_NOFILE, &lim) < 0 || lim.rlim_cur >= lim.rlim_max)
		return;
	lim.rlim_cur = lim.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		log_warn("raise the open files limit to %llu: %s", (unsigned long long)lim.rlim_max, strerror(errno));
}

/* core.https_address as stored: serve it again. A failure (the port taken
 * meanwhile) leaves the unix socket serving, as LXD does. */
static void https_listener_restore(struct daemon *d)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *config = NULL;
	if (db_config_get_all(d->db, &config, &err) < 0) {
		log_error("HTTPS listener: %s", err->msg);
		return;
	}
	const char *address = json_string_value(json_object_get(config, "core.https_address"));
	if (address != NULL && *address != '\0' && server_https_set(address, &err) < 0)
		log_error("HTTPS listener on %s: %s", address, err->msg);
	json_decref(config);
}

/* The bridge's subnet is picked once and kept in the database, so
 * containers keep their addresses across restarts. */
static int bridge_setup(struct daemon *d, const char *fixed_cidr, struct ferry_error **err)
{
	json_t *config = NULL;
	cleanup_error struct ferry_error *lookup_err = NULL;
	if (fixed_cidr != NULL) {
		/* --bridge-cidr: the hosts of one L2 segment share a subnet. */
		if (db_network_get(d->db, d->bridge, &config, &lookup_err) < 0) {
			if (lookup_err->status != 404) {
				error_move(err, &lookup_err);
				return -1;
			}
			config = json_pack("{s:s}", "ipv4.nat", "true");
		}
		json_object_set_new(config, "ipv4.address", json_string(fixed_cidr));
		if (db_network_set(d->db, d->bridge, config, err) < 0) {
			json_decref(config);
			return -1;
		}
	} else if (db_network_get(d->db, d->bridge, &config, &lookup_err) < 0) {
		if (lookup_err->status != 404) {
			error_move(err, &lookup_err);
			return -1;
		}
		cleanup_free char *cidr = NULL;
		if (network_pick_subnet(&cidr, err) < 0)
			return error_wrap(err, "pick a subnet for bridge %s", d->bridge);
		config = json_pack("{s:s, s:s}", "ipv4.address", cidr, "ipv4.nat", "true");
		if (db_network_set(d->db, d->bridge, config, err) < 0) {
			json_decref(config);
			return -1;
		}
		log_info("bridge %s: picked subnet %s", d->bridge, cidr);
	}
	const char *cidr = json_string_value(json_object_get(config, "ipv4.address"));
	const char *nat = json_string_value(json_object_get(config, "ipv4.nat"));
	d->bridge_cidr = xstrdup(cidr ? cidr : "");
	d->nat = nat == NULL || strcmp(nat, "true") == 0;
	json_decref(config);
	if (network_bridge_ensure(d->bridge, d->bridge_cidr, d->nat, err) < 0)
		return error_wrap(err, "bridge %s", d->bridge);
	cleanup_error struct ferry_error *e = NULL;
	if (network_child_tcp_hash(&e) < 0)
		log_warn("containers share the host's TCP hash table: %s", e->msg);
	return 0;
}

/* Remove what a daemon with this root made on the host outside it, once its
 * containers are gone: the bridge with its NAT rule, the (empty) cgroup
 * directories of its instances in every hierarchy, and its staging
 * directory for live moves' pages. */
static int purge_host(const char *root, const char *bridge)
{
	cleanup_error struct ferry_error *err = NULL;
	if (network_bridge_delete(bridge, &err) < 0 && err->status != 404)
		return die(err, "purge network");
	char abs_root[PATH_MAX];
	if (realpath(root, abs_root) == NULL)
		return 0;
	cleanup_free char *parent = instance_cgroup_parent(abs_root);
	DIR *d = opendir("/sys/fs/cgroup");
	if (d == NULL)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *path = xasprintf("/sys/fs/cgroup/%s/%s", de->d_name, parent);
		/* Instances whose monitor was killed leave their (empty) cgroups
		 * (a Debian container's systemd makes a tree of them). */
		if (runtime_cgroup_remove_tree(path) < 0 && errno != ENOTDIR)
			fprintf(stderr, "ferryd: purge: rmdir %s: %s (a cgroup below it still in use?)\n", path,
				strerror(errno));
	}
	closedir(d);
	/* A ferryd that died left it (a clean exit removes it). */
	cleanup_free char *staging = staging_dir_path(abs_root);
	if (rm_rf(staging, &err) < 0)
		fprintf(stderr, "ferryd: purge: %s\n", err->msg);
	return 0;
}

/* "10.5.6.100-10.5.6.149" -> both ends in host byte order. */
static int address_range_parse(const char *text, uint32_t *first, uint32_t *last)
{
	const char *dash = strchr(text, '-');
	if (dash == NULL || dash - text >= INET_ADDRSTRLEN)
		return -1;
	char a[INET_ADDRSTRLEN] = "";
	memcpy(a, text, dash - text);
	struct in_addr fa, la;
	if (inet_pton(AF_INET, a, &fa) != 1 || inet_pton(AF_INET, dash + 1, &la) != 1)
		return -1;
	*first = ntohl(fa.s_addr);
	*last = ntohl(la.s_addr);
	return *first <= *last ? 0 : -1;
}

int main(int argc, char **argv)
{
	/* The runtime re-executes ferryd as each container's monitor. */
	if (argc == 3 && strcmp(argv[1], "__monitor") == 0)
		runtime_monitor_main(argv[2]);
	/* Inherited by the monitors, their spares and every CRIU. */
	checkpoint_process_init();

	/* Migration streams allocate a message buffer of 256 KiB or more per
	 * websocket message, several times over: glibc would map and unmap each
	 * (page faults on every message, a third of the throughput). Keep such
	 * blocks in the heap and the heap's top mapped. */
	mallopt(M_MMAP_THRESHOLD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	/* One heap for every thread: glibc gives threads arenas of their own
	 * (up to 8 a core), whose memory a thread met first, a page fault
	 * (~12 us here) a page. A live move's target unpacks CRIU's images in
	 * threads of their own: 245 KiB of an idle container's state took
	 * 12 ms through a fresh arena, 2.5 ms through the warm main one. */
	mallopt(M_ARENA_MAX, 1);

	static const struct option options[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "bridge", required_argument, NULL, 'b' },
		{ "bridge-cidr", required_argument, NULL, 'c' },
		{ "address-range", required_argument, NULL, 'a' },
		{ "debug", no_argument, NULL, 'd' },
		{ "purge", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *root = NULL, *bridge = "ferrybr0", *bridge_cidr = NULL, *address_range = NULL;
	bool debug = false, purge = false;
	int c;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'r':
			root = optarg;
			break;
		case 'b':
			bridge = optarg;
			break;
		case 'c':
			bridge_cidr = optarg;
			break;
		case 'a':
			address_range = optarg;
			break;
		case 'd':
			debug = true;
			break;
		case 'p':
			purge = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	cleanup_error struct ferry_error *err = NULL;
	if (debug)
		checkpoint_set_log_level(4);

	if (purge)
		return purge_host(root ? root : "/var/lib/ferry", bridge);
	if (bridge_cidr != NULL) {
		uint32_t gw;
		int prefix;
		if (network_cidr_parse(bridge_cidr, &gw, &prefix, &err) < 0)
			return die(err, "--bridge-cidr");
	}
	if (address_range != NULL) {
		uint32_t first, last;
		if (address_range_parse(address_range, &first, &last) < 0) {
			fprintf(stderr, "ferryd: --address-range: expected FIRST-LAST (two IPv4 addresses), got \"%s\"\n",
				address_range);
			return 2;
		}
		instance_address_range_set(first, last);
	}

	umask(022);
	struct daemon *d = xcalloc(1, sizeof(*d));
	daemon_ctx = d;
	char abs_root[PATH_MAX];
	d->root = xstrdup(root ? root : "/var/lib/ferry");
	if (mkdir_p(d->root, 0711, &err) < 0)
		return die(err, "state directory");
	if (realpath(d->root, abs_root) != NULL) {
		free(d->root);
		d->root = xstrdup(abs_root);
	}
	d->log_dir = root ? xasprintf("%s/logs", d->root) : xstrdup("/var/log/ferry");
	d->socket_path = xasprintf("%s/unix.socket", d->root);
	d->images_dir = xasprintf("%s/images", d->root);
	d->containers_dir = xasprintf("%s/containers", d->root);
	d->cache_dir = xasprintf("%s/cache", d->root);
	d->trash_dir = xasprintf("%s/trash", d->root);
	d->bridge = xstrdup(bridge);
	char exe[PATH_MAX];
	d->exe = xstrdup(realpath("/proc/self/exe", exe) ? exe : argv[0]);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	d->server_name = xstrdup(host);

	if (dirs_create(d, &err) < 0)
		return die(err, "state directories");
	cleanup_free char *log_path = xasprintf("%s/ferryd.log", d->log_dir);
	if (log_open(log_path) < 0)
		fprintf(stderr, "ferryd: cannot open log %s: %s (logging to stderr)\n", log_path, strerror(errno));
	if (debug)
		log_set_level(LOG_LEVEL_DEBUG);
	if (root_lock(d->root, &err) < 0)
		return die(err, "start");
	log_info("ferryd %s starting: root %s, bridge %s", FERRY_VERSION, d->root, d->bridge);
	d->staging_dir = staging_dir_make(d->root);

	/* Signals are taken by sigwait below; every thread inherits the mask. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	nofile_limit_raise();
	if (tls_identity_init(d->root, d->server_name, &err) < 0)
		return die(err, "TLS identity");

	cleanup_free char *db_path = xasprintf("%s/database/ferry.db", d->root);
	if (db_open(db_path, &d->db, &err) < 0)
		return die(err, "database");
	if (bridge_setup(d, bridge_cidr, &err) < 0)
		return die(err, "network");
	if (server_start(d->socket_path, d->cache_dir, &err) < 0)
		return die(err, "API");
	https_listener_restore(d);
	if (instances_startup(&err) < 0) {
		/* The API stays up: the instances that could be found are served. */
		log_error("instances at start-up: %s", err->msg);
		error_free(&err);
	}
	snapshots_prune_start();
	checkpoint_rundir_sweep();
	daemon_trash_empty();
	runtime_spares_start();
	log_info("ferryd ready");

	int sig = 0;
	while (sigwait(&stop_signals, &sig) != 0)
		;
	log_info("received %s: shutting down (containers keep running)", strsignal(sig));
	d->stopping = true;
	server_quiesce();
	if (!server_wait_idle(SHUTDOWN_GRACE_MS)) {
		log_warn("requests still running after %d ms: leaving them", SHUTDOWN_GRACE_MS);
	} else if (d->staging_dir != NULL) {
		cleanup_error struct ferry_error *e = NULL;
		if (rm_rf(d->staging_dir, &e) < 0)
			log_warn("%s", e->msg);
	}
	runtime_spares_stop();
	log_info("ferryd stopped");
	/* No teardown of threads or the database: the process ends here, and
	 * SQLite's WAL is safe at any point. */
	_exit(0);
}
