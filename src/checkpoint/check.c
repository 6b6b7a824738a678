/* What checkpoint/restore can do on this host (issue 3 point 5): CRIU's
 * version, its own check, and the optional kernel features ferry's later
 * modes need (dirty-memory tracking for pre-copy, userfaultfd for post-copy). */
#include <criu/criu.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/internal.h"
#include "common/util.h"

/* Bookworm's headers predate PAGEMAP_SCAN (Linux 6.7); CRIU 4.2.1 uses it
 * to find a process's pages faster. */
struct pagemap_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN_IOCTL _IOWR('f', 16, struct pagemap_scan_arg)
#define PAGE_IS_PRESENT (1 << 1)

static bool pagemap_scan_supported(void)
{
	cleanup_close int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	/* An empty range: the kernel validates the request and scans nothing. */
	struct pagemap_scan_arg arg = { .size = sizeof(arg), .category_anyof_mask = PAGE_IS_PRESENT,
					.return_mask = PAGE_IS_PRESENT };
	return ioctl(fd, PAGEMAP_SCAN_IOCTL, &arg) == 0;
}

static void criu_opts_freep(criu_opts **opts)
{
	if (*opts != NULL)
		criu_local_free_opts(*opts);
}

/* criu check, logging into a scratch directory: "ok", or CRIU's error lines. */
static json_t *run_criu_check(criu_opts *opts)
{
	char dir[] = "/tmp/ferry-criu-check.XXXXXX";
	if (mkdtemp(dir) == NULL)
		return json_sprintf("cannot create a scratch directory: %s", strerror(errno));
	cleanup_close int dir_fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	criu_local_set_images_dir_fd(opts, dir_fd);
	criu_local_set_work_dir_fd(opts, dir_fd);
	criu_local_set_log_file(opts, "check.log");
	criu_local_set_log_level(opts, 2);
	int r = criu_local_check(opts);
	cleanup_free char *log = xasprintf("%s/check.log", dir);
	json_t *result;
	if (r == 0) {
		result = json_string("ok");
	} else {
		cleanup_free char *errors = checkpoint_log_errors(log, 3);
		result = errors != NULL ? json_string(errors) : json_sprintf("criu check failed (%d)", r);
	}
	unlink(log);
	rmdir(dir);
	return result;
}

int checkpoint_check(json_t **out, struct ferry_error **err)
{
	__attribute__((cleanup(criu_opts_freep))) criu_opts *opts = NULL;
	checkpoint_prepare_rundir();
	if (criu_local_init_opts(&opts) < 0 || criu_local_set_service_binary(opts, CHECKPOINT_CRIU_BINARY) < 0)
		return error_set(err, 500, ENOMEM, "CRIU check: libcriu options");
	int version = criu_local_get_version(opts);
	if (version <= 0)
		return error_set(err, 500, ENOENT, "CRIU check: can't run %s (%d)", CHECKPOINT_CRIU_BINARY, version);

	json_t *features = json_object();
	struct criu_feature_check want = { .mem_track = true, .lazy_pages = true, .pidfd_store = true };
	if (criu_local_feature_check(opts, &want, sizeof(want)) == 0) {
		json_object_set_new(features, "mem_dirty_track", json_boolean(want.mem_track));
		json_object_set_new(features, "lazy_pages", json_boolean(want.lazy_pages));
		json_object_set_new(features, "pidfd_store", json_boolean(want.pidfd_store));
	}
	json_object_set_new(features, "pagemap_scan", json_boolean(pagemap_scan_supported()));

	json_t *result = json_object();
	json_object_set_new(result, "version",
			    json_sprintf("%d.%d.%d", version / 10000, version / 100 % 100, version % 100));
	json_object_set_new(result, "check", run_criu_check(opts));
	json_object_set_new(result, "features", features);
	*out = result;
	return 0;
}

/* ---- CPU compatibility (a live migration's pre-flight) -------------------- */

/* Run `criu cpuinfo ACTION -D dir -o LOG` with no stdio: 0 when it succeeds,
 * else the error with CRIU's own lines from its log. */
static int criu_cpuinfo(const char *action, const char *dir, struct ferry_error **err)
{
	cleanup_free char *log = xasprintf("%s/cpuinfo-%s.log", dir, action);
	char *argv[] = { CHECKPOINT_CRIU_BINARY, "cpuinfo", (char *)action, "-D", (char *)dir, "-o", log, NULL };
	pid_t pid;
	if (checkpoint_spawn_criu(argv, -1, -1, -1, &pid, err) < 0)
		return -1;
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	cleanup_free char *errors = checkpoint_log_errors(log, 3);
	return error_set(err, 500, EIO, "criu cpuinfo %s failed: %s", action,
			 errors ? errors : "no reason in its log");
}

int checkpoint_cpuinfo_dump(char **data, size_t *len, struct ferry_error **err)
{
	char dir[] = "/tmp/ferry-cpuinfo.XXXXXX";
	if (mkdtemp(dir) == NULL)
		return error_sys(err, errno, "CPU description: mkdtemp");
	cleanup_free char *img = xasprintf("%s/cpuinfo.img", dir);
	int r = criu_cpuinfo("dump", dir, err);
	if (r == 0)
		r = file_read(img, data, len, err);
	cleanup_error struct ferry_error *e = NULL;
	rm_rf(dir, &e);
	if (r < 0)
		return error_wrap(err, "describe this host's CPU");
	return 0;
}

int checkpoint_cpuinfo_check(const void *data, size_t len, struct ferry_error **err)
{
	char dir[] = "/tmp/ferry-cpuinfo.XXXXXX";
	if (mkdtemp(dir) == NULL)
		return error_sys(err, errno, "CPU check: mkdtemp");
	cleanup_free char *img = xasprintf("%s/cpuinfo.img", dir);
	int r = file_write_atomic(img, data, len, 0600, err);
	if (r == 0)
		r = criu_cpuinfo("check", dir, err);
	cleanup_error struct ferry_error *e = NULL;
	rm_rf(dir, &e);
	if (r < 0)
		return error_wrap(err, "this host's CPU can't run what the source's ran");
	return 0;
}
