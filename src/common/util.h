/* Small helpers used everywhere: cleanup attributes, strings, files. */
#pragma once

#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/error.h"

void cleanup_freep(void *p);
void cleanup_closep(int *fd);
void cleanup_fclosep(FILE **f);
void cleanup_strvp(char ***v);
#define cleanup_free __attribute__((cleanup(cleanup_freep)))
#define cleanup_close __attribute__((cleanup(cleanup_closep)))
#define cleanup_fclose __attribute__((cleanup(cleanup_fclosep)))
#define cleanup_strv __attribute__((cleanup(cleanup_strvp)))

/* Hand ownership out of a cleanup variable. */
#define steal_pointer(pp) ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(fdp) ({ int _fd = *(fdp); *(fdp) = -1; _fd; })

/* asprintf that aborts on out-of-memory. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xstrdup(const char *s);
void *xcalloc(size_t n, size_t size);

size_t strv_len(char *const *v);
/* The numbers of text (whitespace between them: a cgroup.procs file), up
 * to the first that is none, as pids in a new array of *n. */
pid_t *pids_parse(const char *text, size_t *n);
void strv_free(char **v);
/* For a child's exec: this process's environment without the variables
 * whose names begin with drop, then extra (NULL-terminated, or NULL). Free
 * the array, not the strings. */
char **environ_without(const char *drop, char *const *extra);

/* Read a whole file (NUL-terminated; *len without the NUL, if len is not NULL). */
int file_read(const char *path, char **out, size_t *len, struct ferry_error **err);
/* All of data to fd (a short write goes on; EINTR retried): 0, or -1 with errno. */
int fd_write_all(int fd, const void *data, size_t len);
/* Write a file atomically (temp file + rename), with mode. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct ferry_error **err);
/* As file_write_atomic, without the fsync (~1 ms each here): for runtime
 * state (pid files, the spec of a running container, its exit status)
 * that means nothing after a reboot. */
int file_write_volatile(const char *path, const void *data, size_t len, mode_t mode, struct ferry_error **err);
/* Write a short string to an existing file (sysfs, cgroupfs, /proc). */
int file_write_string(const char *path, const char *value, struct ferry_error **err);
/* mkdir -p with mode for the directories it creates. */
int mkdir_p(const char *path, mode_t mode, struct ferry_error **err);
/* rm -rf that does not cross mount points. */
int rm_rf(const char *path, struct ferry_error **err);
/* name in dirfd, and below it (never across a mount). */
int rm_rf_at(int dirfd, const char *name, struct ferry_error **err);
/* rename a regular file, or copy it (mode 0600) and remove it when the two
 * are on different filesystems. */
int file_move(const char *from, const char *to, struct ferry_error **err);

/* Monotonic clock in milliseconds. */
long long now_ms(void);

/* posix_spawn attributes for a helper: every signal unblocked in the
 * child (whatever the calling thread blocks), and a new session if asked.
 * The caller destroys them (posix_spawnattr_destroy). */
void spawnattr_init_unblocked(posix_spawnattr_t *attr, bool new_session);

/* RFC 3339 UTC time with nanoseconds as LXD prints it ("2026-11-22T10:15:00.123456789Z"). */
char *time_rfc3339(const struct timespec *ts);
