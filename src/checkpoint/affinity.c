/* The CPU affinity of a checkpointed tree's threads, which CRIU does not
 * save: a restored task gets the restore's. Ferry keeps, beside the images,
 * the threads whose affinity is narrower than ferry's own (taskset, a
 * service's CPUAffinity=), by their tid in the container's pid namespace,
 * which the restore gives back; and sets it again on the restored threads.
 *
 * The file: one line a thread, "TID CPU,CPU,..." (CPU numbers ascending). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/internal.h"
#include "common/log.h"
#include "common/util.h"

char *checkpoint_affinity_format(const struct checkpoint_affinity *a, size_t n)
{
	size_t cap = 64, len = 0;
	char *text = xcalloc(1, cap);
	for (size_t i = 0; i < n; i++) {
		for (;;) {
			/* The longest line: a tid, then each CPU with its comma. */
			size_t need = len + 16 + (size_t)CPU_COUNT(&a[i].cpus) * 6;
			if (need <= cap)
				break;
			cap = need * 2;
			text = realloc(text, cap);
			if (text == NULL)
				abort();
		}
		len += (size_t)sprintf(text + len, "%d", (int)a[i].vtid);
		char sep = ' ';
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &a[i].cpus)) {
				len += (size_t)sprintf(text + len, "%c%d", sep, c);
				sep = ',';
			}
		text[len++] = '\n';
		text[len] = '\0';
	}
	return text;
}

int checkpoint_affinity_parse(const char *text, struct checkpoint_affinity **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *eol = strchr(line, '\n');
		const char *next = eol != NULL ? eol + 1 : NULL;
		if (eol == NULL)
			eol = line + strlen(line);
		if (eol == line) { /* an empty line */
			line = next;
			continue;
		}
		struct checkpoint_affinity a = { 0 };
		CPU_ZERO(&a.cpus);
		char *end;
		errno = 0;
		long tid = strtol(line, &end, 10);
		if (end == line || *end != ' ' || tid <= 0 || tid > 4194304 || errno != 0)
			goto bad;
		for (const char *p = end + 1;;) {
			long c = strtol(p, &end, 10);
			if (end == p || c < 0 || c >= CPU_SETSIZE || end > eol)
				goto bad;
			CPU_SET((int)c, &a.cpus);
			if (end == eol)
				break;
			if (*end != ',')
				goto bad;
			p = end + 1;
		}
		a.vtid = (pid_t)tid;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = realloc(*out, cap * sizeof(**out));
			if (*out == NULL)
				abort();
		}
		(*out)[(*n)++] = a;
		line = next;
	}
	return 0;
bad:
	free(*out);
	*out = NULL;
	*n = 0;
	return -1;
}

pid_t checkpoint_inner_tid(pid_t pid, pid_t tid)
{
	cleanup_free char *path = xasprintf("/proc/%d/task/%d/status", (int)pid, (int)tid);
	cleanup_free char *status = NULL;
	if (file_read(path, &status, NULL, NULL) < 0)
		return 0;
	const char *line = strstr(status, "\nNSpid:");
	if (line == NULL)
		return 0;
	line += strlen("\nNSpid:");
	long last = 0;
	for (char *end; *line != '\n' && *line != '\0'; line = end) {
		long v = strtol(line, &end, 10);
		if (end == line)
			break;
		last = v;
	}
	return (pid_t)last;
}

/* Each thread of process pid (host tids), through fn; false if it is gone. */
static bool for_each_thread(pid_t pid, void (*fn)(pid_t pid, pid_t tid, void *arg), void *arg)
{
	cleanup_free char *path = xasprintf("/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return false;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long tid = strtol(e->d_name, &end, 10);
		if (end != e->d_name && *end == '\0')
			fn(pid, (pid_t)tid, arg);
	}
	closedir(d);
	return true;
}

struct affinity_saving {
	cpu_set_t own;
	struct checkpoint_affinity *a;
	size_t n, cap;
};

static void thread_save(pid_t pid, pid_t tid, void *arg)
{
	struct affinity_saving *s = arg;
	cpu_set_t cpus;
	if (sched_getaffinity(tid, sizeof(cpus), &cpus) < 0 || CPU_EQUAL(&cpus, &s->own))
		return;
	pid_t vtid = checkpoint_inner_tid(pid, tid);
	if (vtid <= 0)
		return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->a = realloc(s->a, s->cap * sizeof(*s->a));
		if (s->a == NULL)
			abort();
	}
	s->a[s->n++] = (struct checkpoint_affinity){ .vtid = vtid, .cpus = cpus };
}

/* Appends the processes of the cgroup at dir and of those below it. */
static void tree_pids(const char *dir, pid_t **pids, size_t *n, size_t *cap)
{
	cleanup_free char *procs_path = xasprintf("%s/cgroup.procs", dir);
	cleanup_free char *procs = NULL;
	if (file_read(procs_path, &procs, NULL, NULL) == 0) {
		size_t k = 0;
		cleanup_free pid_t *here = pids_parse(procs, &k);
		if (*n + k > *cap) {
			*cap = (*n + k) * 2;
			*pids = realloc(*pids, *cap * sizeof(**pids));
			if (*pids == NULL)
				abort();
		}
		for (size_t i = 0; i < k; i++)
			(*pids)[(*n)++] = here[i];
	}
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			cleanup_free char *sub = xasprintf("%s/%s", dir, e->d_name);
			tree_pids(sub, pids, n, cap);
		}
	closedir(d);
}

pid_t *checkpoint_cgroup_tree_pids(const char *dir, size_t *n)
{
	pid_t *pids = NULL;
	size_t cap = 0;
	*n = 0;
	tree_pids(dir, &pids, n, &cap);
	return pids;
}

int checkpoint_affinity_save(const char *cgroup_dir, const char *path, struct ferry_error **err)
{
	struct affinity_saving s = { 0 };
	if (sched_getaffinity(0, sizeof(s.own), &s.own) < 0)
		return error_sys(err, errno, "sched_getaffinity");
	size_t n = 0;
	cleanup_free pid_t *pids = checkpoint_cgroup_tree_pids(cgroup_dir, &n);
	for (size_t i = 0; i < n; i++)
		for_each_thread(pids[i], thread_save, &s);
	unlink(path);
	int r = 0;
	if (s.n > 0) {
		cleanup_free char *text = checkpoint_affinity_format(s.a, s.n);
		r = file_write_volatile(path, text, strlen(text), 0600, err);
	}
	free(s.a);
	return r;
}

int checkpoint_affinity_load(const char *path, struct checkpoint_affinity **out, size_t *n, struct ferry_error **err)
{
	*out = NULL;
	*n = 0;
	cleanup_free char *text = NULL;
	if (file_read(path, &text, NULL, NULL) < 0)
		return 0; /* none: no thread had an affinity of its own */
	if (checkpoint_affinity_parse(text, out, n) < 0)
		return error_set(err, 500, EBADMSG, "%s: not a list of threads' CPUs", path);
	return 0;
}

struct affinity_setting {
	cpu_set_t own;
	const struct checkpoint_affinity *a;
	size_t n;
};

static void thread_set(pid_t pid, pid_t tid, void *arg)
{
	const struct affinity_setting *s = arg;
	cpu_set_t cpus = s->own;
	pid_t vtid = s->n > 0 ? checkpoint_inner_tid(pid, tid) : 0;
	for (size_t i = 0; i < s->n && vtid > 0; i++) {
		if (s->a[i].vtid != vtid)
			continue;
		CPU_AND(&cpus, &s->own, &s->a[i].cpus);
		if (CPU_COUNT(&cpus) == 0) {
			log_warn("restored thread %d (%d in its namespace): none of its CPUs is here: it may run on any",
				 (int)tid, (int)vtid);
			cpus = s->own;
		}
		break;
	}
	if (sched_setaffinity(tid, sizeof(cpus), &cpus) < 0 && errno != ESRCH)
		log_warn("restored thread %d: set its CPUs: %s", (int)tid, strerror(errno));
}

void checkpoint_affinity_apply(const pid_t *pids, size_t n_pids, const struct checkpoint_affinity *a, size_t n)
{
	struct affinity_setting s = { .a = a, .n = n };
	if (sched_getaffinity(0, sizeof(s.own), &s.own) < 0)
		return;
	for (size_t i = 0; i < n_pids; i++)
		for_each_thread(pids[i], thread_set, &s);
}

struct checkpoint_pinned {
	pid_t tid;
	cpu_set_t cpus;
};

struct pinning {
	const cpu_set_t *one;
	struct checkpoint_pin *pin;
};

static void thread_pin(pid_t pid, pid_t tid, void *arg)
{
	(void)pid;
	struct pinning *p = arg;
	cpu_set_t cpus;
	if (sched_getaffinity(tid, sizeof(cpus), &cpus) < 0 || CPU_EQUAL(&cpus, p->one))
		return;
	if (sched_setaffinity(tid, sizeof(*p->one), p->one) < 0)
		return;
	struct checkpoint_pin *pin = p->pin;
	if (pin->n == pin->cap) {
		pin->cap = pin->cap ? pin->cap * 2 : 32;
		pin->threads = realloc(pin->threads, pin->cap * sizeof(*pin->threads));
		if (pin->threads == NULL)
			abort();
	}
	pin->threads[pin->n++] = (struct checkpoint_pinned){ .tid = tid, .cpus = cpus };
}

void checkpoint_pin_tree(const char *dir, const cpu_set_t *one, struct checkpoint_pin *pin)
{
	struct pinning p = { .one = one, .pin = pin };
	size_t n = 0;
	cleanup_free pid_t *pids = checkpoint_cgroup_tree_pids(dir, &n);
	for (size_t i = 0; i < n; i++)
		for_each_thread(pids[i], thread_pin, &p);
}

void checkpoint_unpin(struct checkpoint_pin *pin)
{
	for (size_t i = 0; i < pin->n; i++)
		if (sched_setaffinity(pin->threads[i].tid, sizeof(pin->threads[i].cpus), &pin->threads[i].cpus) < 0 &&
		    errno != ESRCH)
			log_warn("thread %d: its CPUs after the dump: %s", (int)pin->threads[i].tid, strerror(errno));
	free(pin->threads);
	*pin = (struct checkpoint_pin){ 0 };
}
