/* runtime_checkpoint: a CRIU dump of a running container, as a stateful
 * snapshot (it continues) or a stateful stop (CRIU ends it, and its monitor
 * cleans up as after any stop, recording the exit as checkpointed).
 *
 * The container is frozen through its v1 freezer cgroup first, polled
 * finely: CRIU finds it frozen and skips its own freeze loop, which polls in
 * 100 ms steps (design.md: LXC lost 100 ms there). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netlink/netlink.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "runtime/internal.h"
#include "runtime/network.h"

int nics_lock(const struct runtime_spec *spec, bool lock)
{
	int r = 0;
	for (size_t i = 0; i < spec->n_nics; i++) {
		cleanup_error struct ferry_error *e = NULL;
		if (network_veth_attach(spec->nics[i].host_name, lock ? NULL : spec->nics[i].bridge, &e) < 0) {
			log_error("container %s: network %s: %s", spec->name, lock ? "lock" : "unlock", e->msg);
			r = -1;
			if (lock)
				break;
		}
	}
	return r;
}

/* A spare swrk for dumps that need no page socket (a stateful stop or
 * snapshot), kept while runtime_spares_start says so: CRIU's start-up
 * (~15 ms here) is then over before the freeze. A new one follows a
 * second after one is taken, as for the spare monitor (monitor.c). */
static pthread_mutex_t dump_spare_lock = PTHREAD_MUTEX_INITIALIZER;
static bool dump_spares_on;
static struct checkpoint_swrk dump_spare = { .pid = -1, .fd = -1 };

static void dump_spare_fill(void)
{
	pthread_mutex_lock(&dump_spare_lock);
	bool go = dump_spares_on && dump_spare.fd < 0;
	pthread_mutex_unlock(&dump_spare_lock);
	if (!go)
		return;
	struct checkpoint_swrk s = { .pid = -1, .fd = -1 };
	cleanup_error struct ferry_error *e = NULL;
	if (checkpoint_swrk_start(-1, &s, &e) < 0) {
		log_warn("spare criu swrk: %s", e->msg);
		return;
	}
	pthread_mutex_lock(&dump_spare_lock);
	if (dump_spares_on && dump_spare.fd < 0) {
		dump_spare = s;
		s = (struct checkpoint_swrk){ .pid = -1, .fd = -1 };
	}
	pthread_mutex_unlock(&dump_spare_lock);
	checkpoint_swrk_stop(&s); /* not wanted any more */
}

static bool dump_spare_take(struct checkpoint_swrk *out)
{
	pthread_mutex_lock(&dump_spare_lock);
	bool got = dump_spare.fd >= 0;
	if (got) {
		*out = dump_spare;
		dump_spare = (struct checkpoint_swrk){ .pid = -1, .fd = -1 };
	}
	bool refill = dump_spares_on;
	pthread_mutex_unlock(&dump_spare_lock);
	if (got && waitpid(out->pid, NULL, WNOHANG) != 0) {
		/* It died meanwhile (reaped now): one starts as without a spare. */
		close(steal_fd(&out->fd));
		out->pid = -1;
		got = false;
	}
	if (refill)
		spare_fill_later(dump_spare_fill);
	return got;
}

void dump_spares_start(void)
{
	pthread_mutex_lock(&dump_spare_lock);
	dump_spares_on = true;
	pthread_mutex_unlock(&dump_spare_lock);
	dump_spare_fill();
}

void dump_spares_stop(void)
{
	pthread_mutex_lock(&dump_spare_lock);
	dump_spares_on = false;
	struct checkpoint_swrk s = dump_spare;
	dump_spare = (struct checkpoint_swrk){ .pid = -1, .fd = -1 };
	pthread_mutex_unlock(&dump_spare_lock);
	checkpoint_swrk_stop(&s);
}

struct dump_lock {
	const struct runtime_spec *spec;
	struct runtime_frame_hold *hold;
};

/* checkpoint_dump_opts.network_lock. At an unlock the dump failed: the
 * veths go back on their bridges (a live move's hold keeps what came until
 * then: checkpoint_container gives it back once the tasks run). */
static int dump_network_lock(void *arg, bool lock)
{
	struct dump_lock *l = arg;
	return nics_lock(l->spec, lock);
}

/* A connection still in a listener's accept queue can't be saved (CRIU's
 * "In-flight connection": the dump fails, the container runs on). Before
 * the freeze its servers get up to ACCEPT_WAIT_MS to take theirs: with a
 * live move's frames held, none comes from outside meanwhile; a stateful
 * stop's may, and a server that never accepts still fails the dump, after
 * the wait. sk: network_accept_queues_open's (NULL: no wait). */
#define ACCEPT_WAIT_MS 250

static void accept_queues_wait(const char *name, struct nl_sock *sk)
{
	if (sk == NULL)
		return;
	long long start = now_ms();
	unsigned long queued = 0, first = 0;
	for (int polls = 0;; polls++) {
		cleanup_error struct ferry_error *e = NULL;
		if (network_accept_queued(sk, &queued, &e) < 0) {
			log_warn("container %s: its servers' accept queues are unknown: %s", name, e->msg);
			return;
		}
		if (polls == 0)
			first = queued;
		if (queued == 0 || now_ms() - start >= ACCEPT_WAIT_MS)
			break;
		usleep(1000);
	}
	if (first > 0)
		log_info("container %s: %lu connection(s) waited in its servers' accept queues; %lu after %lld ms", name,
			 first, queued, now_ms() - start);
}

static int checkpoint_container(const struct runtime_spec *spec, const struct runtime_checkpoint_opts *o,
				struct ferry_error **err)
{
	pid_t monitor = monitor_find(spec->dir);
	pid_t init = init_find(spec->dir);
	if (monitor <= 0 || init <= 0)
		return error_conflict(err, "container %s is not running", spec->name);
	unsigned long long monitor_start = proc_start_time(monitor);

	/* CRIU starts before the freeze (if the caller has not started it
	 * already), and waits for the request (ended on return unless the dump
	 * took it over). */
	cleanup_swrk struct checkpoint_swrk own = { .pid = -1, .fd = -1 };
	struct checkpoint_swrk *swrk = o->swrk;
	if (swrk == NULL || swrk->fd < 0) {
		bool page_socket = o->lazy || o->page_server;
		if ((page_socket || !dump_spare_take(&own)) &&
		    checkpoint_swrk_start(page_socket ? o->page_socket : -1, &own, err) < 0)
			return -1;
		swrk = &own;
	}
	/* Opened before the hold: only the asking counts in it. A container
	 * frozen already (paused) accepts nothing: no wait. */
	bool was_frozen = cgroup_is_frozen(spec->cgroup);
	struct nl_sock *accept_sk = NULL;
	cleanup_error struct ferry_error *accept_err = NULL;
	if (!was_frozen && network_accept_queues_open(init, &accept_sk, &accept_err) < 0)
		log_warn("container %s: %s", spec->name, accept_err->msg);
	/* A live move's frames are held from before the freeze: a datagram
	 * that reached a frozen task's socket would be lost with the dump (CRIU
	 * keeps no UDP queue), ~5 ms of them before CRIU's network lock. */
	if (o->hold != NULL) {
		cleanup_error struct ferry_error *e = NULL;
		if (runtime_frame_hold_take(o->hold, &e) < 0)
			log_warn("container %s: frames are not held while it moves: %s", spec->name, e->msg);
	}
	accept_queues_wait(spec->name, accept_sk);
	if (accept_sk != NULL)
		nl_socket_free(accept_sk);
	cleanup_free char *freezer = cgroup_freezer_dir(spec->cgroup);
	if (!o->ptrace_seize && !was_frozen && cgroup_freeze(spec->cgroup, true, err) < 0)
		return -1;
	cleanup_free char *cgroups = xasprintf("%s/" RUNTIME_CGROUPS_IMAGE, o->images_dir);
	if (cgroup_save_tree(spec->cgroup, cgroups, err) < 0) {
		if (!was_frozen && !o->ptrace_seize)
			cgroup_freeze(spec->cgroup, false, NULL);
		return -1;
	}
	/* CRIU saves no CPU affinity: the threads with their own go beside. */
	cleanup_free char *affinity = xasprintf("%s/" RUNTIME_AFFINITY_IMAGE, o->images_dir);
	cleanup_error struct ferry_error *affinity_err = NULL;
	if (checkpoint_affinity_save(freezer, affinity, &affinity_err) < 0)
		log_warn("container %s: its threads' CPUs are not saved (they will run on any): %s", spec->name,
			 affinity_err->msg);
	cleanup_free char *mark = state_path(spec->dir, RUNTIME_CHECKPOINT_STOP);
	if (!o->leave_running && file_write_volatile(mark, "", 0, 0644, err) < 0) {
		if (!was_frozen)
			cgroup_freeze(spec->cgroup, false, NULL);
		return -1;
	}

	if (o->frozen != NULL && !o->ptrace_seize)
		o->frozen(o->post_dump_arg);
	struct dump_lock lock = { .spec = spec, .hold = o->hold };
	struct checkpoint_dump_opts d = {
		.pid = init,
		.images_dir = o->images_dir,
		.log_path = o->log_path,
		.leave_running = o->leave_running,
		.freeze_cgroup = o->ptrace_seize ? NULL : freezer,
		.ext_mounts = &(struct checkpoint_ext_mount){ .key = RUNTIME_DEV_MOUNT_KEY, .where = "/dev" },
		.n_ext_mounts = 1,
		.lazy = o->lazy,
		.page_server = o->page_server,
		.page_socket = o->page_socket,
		.post_dump = o->post_dump,
		.post_dump_arg = o->post_dump_arg,
		.network_lock = dump_network_lock,
		.network_lock_arg = &lock,
		.swrk = swrk,
	};
	if (checkpoint_dump(&d, err) < 0) {
		unlink(mark);
		if ((*err)->errnum == ECONNABORTED) {
			if (o->lazy_failed != NULL && o->lazy_failed(o->post_dump_arg)) {
				/* Taken over elsewhere, then the pages failed: the tree
				 * must not run again. Killed before it thaws. */
				kill(init, SIGKILL);
				cgroup_freeze(spec->cgroup, false, NULL);
				monitor_wait_gone(monitor, monitor_start, 30000);
				return -1;
			}
			(*err)->errnum = ECONNRESET;
		}
		/* CRIU unlocks, but not always through a notification that
		 * reaches us (a lazy dump's pages failing after its reply). */
		nics_lock(spec, false);
		/* CRIU puts the freezer back as it found it: frozen, by us. */
		if (!was_frozen && !o->ptrace_seize)
			cgroup_freeze(spec->cgroup, false, NULL);
		/* Running again: what the LAN sent meanwhile, paced to its reads. */
		runtime_frame_hold_give_back(o->hold, spec->name);
		return -1;
	}
	if (o->leave_running) {
		nics_lock(spec, false);
		if (!was_frozen && !o->ptrace_seize && cgroup_freeze(spec->cgroup, false, err) < 0)
			return error_wrap(err, "resume after the dump");
		return 0;
	}
	/* CRIU has killed the tree; the monitor notices and cleans up. */
	if (!monitor_wait_gone(monitor, monitor_start, 30000))
		return error_set(err, 500, ETIMEDOUT, "the monitor (pid %d) did not exit after the dump", (int)monitor);
	return 0;
}

int runtime_checkpoint(const char *name, const char *dir, const struct runtime_checkpoint_opts *o,
		       struct ferry_error **err)
{
	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return error_wrap(err, "checkpoint %s", name);
	int r = checkpoint_container(spec, o, err);
	runtime_spec_free(spec);
	if (r < 0)
		return error_wrap(err, "checkpoint %s", name);
	return 0;
}

int runtime_network_unlock(const char *name, const char *dir, struct ferry_error **err)
{
	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return error_wrap(err, "network of %s", name);
	int r = nics_lock(spec, false);
	runtime_spec_free(spec);
	if (r < 0)
		return error_set(err, 500, EIO, "%s: its host veths are not all on their bridges (ferryd.log says why)",
				 name);
	return 0;
}

int runtime_resume(const char *name, const char *dir, struct ferry_error **err)
{
	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return error_wrap(err, "resume %s", name);
	cleanup_free char *procs = xasprintf("/sys/fs/cgroup/freezer/%s/cgroup.procs", spec->cgroup);
	runtime_spec_free(spec);
	/* Those stopped when dumped stay so (note_stopped wrote them down). */
	cleanup_free char *stopped_path = state_path(dir, RUNTIME_RESTORED_STOPPED);
	cleanup_free char *stopped = NULL;
	size_t n = 0;
	file_read(stopped_path, &stopped, NULL, NULL); /* none: every process runs */
	cleanup_free pid_t *keep = pids_parse(stopped, &n);
	/* And the threads with CPUs of their own get them back. */
	cleanup_free char *affinity_path = state_path(dir, RUNTIME_RESTORED_AFFINITY);
	cleanup_free struct checkpoint_affinity *affinity = NULL;
	size_t n_affinity = 0;
	cleanup_error struct ferry_error *affinity_err = NULL;
	if (checkpoint_affinity_load(affinity_path, &affinity, &n_affinity, &affinity_err) < 0)
		log_warn("container %s: %s: its threads may run on any CPU", name, affinity_err->msg);
	int r = checkpoint_resume(procs, keep, n, affinity, n_affinity, err);
	unlink(stopped_path);
	unlink(affinity_path);
	if (r < 0)
		return error_wrap(err, "resume %s", name);
	return 0;
}
