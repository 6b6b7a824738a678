/* Shared memory and file locks.
 * - A SysV shared memory segment and a POSIX one (shm_open, /dev/shm),
 *   both attached by this process and a child: the child counts in both,
 *   the parent checks that the counts agree and move on, and that the
 *   pattern written at start is intact.
 * - flock(LOCK_EX) on /tmp/wl/flock and an fcntl write lock on bytes
 *   100-199 of /tmp/wl/fcntl, held by the parent: each tick a fresh child
 *   checks that it can't take either, and that F_GETLK names the parent. */
#include <signal.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "wl.h"

#define SHM_SIZE (1 << 20)
#define POSIX_SHM_NAME "/ferry-wl"

struct region {
	volatile unsigned long count;
	unsigned char pattern[SHM_SIZE - 64];
};

static void fill(struct region *r, unsigned char seed)
{
	for (size_t i = 0; i < sizeof(r->pattern); i++)
		r->pattern[i] = (unsigned char)(i * 31 + seed);
}

static bool intact(const struct region *r, unsigned char seed)
{
	for (size_t i = 0; i < sizeof(r->pattern); i++)
		if (r->pattern[i] != (unsigned char)(i * 31 + seed))
			return false;
	return true;
}

/* 0: both locks are held by someone else (the parent); else a code. */
static int probe_locks(pid_t holder)
{
	int fd = open(WL_DIR "/flock", O_RDWR);
	if (fd < 0)
		return 10;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 11;
	if (errno != EWOULDBLOCK)
		return 12;
	close(fd);
	fd = open(WL_DIR "/fcntl", O_RDWR);
	if (fd < 0)
		return 20;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 150, .l_len = 1 };
	if (fcntl(fd, F_GETLK, &fl) < 0)
		return 21;
	if (fl.l_type != F_WRLCK || fl.l_pid != holder || fl.l_start != 100 || fl.l_len != 100)
		return 22;
	struct flock free_range = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 300, .l_len = 10 };
	if (fcntl(fd, F_SETLK, &free_range) < 0)
		return 23;
	return 0;
}

int main(void)
{
	wl_init("shm_locks");
	int shmid = shmget(IPC_PRIVATE, SHM_SIZE, IPC_CREAT | 0600);
	struct region *sysv = shmid >= 0 ? shmat(shmid, NULL, 0) : (void *)-1;
	shm_unlink(POSIX_SHM_NAME);
	int pfd = shm_open(POSIX_SHM_NAME, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (sysv == (void *)-1 || pfd < 0 || ftruncate(pfd, SHM_SIZE) < 0)
		return 1;
	struct region *posix = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
	if (posix == MAP_FAILED)
		return 1;
	close(pfd);
	sysv->count = posix->count = 0;
	fill(sysv, 1);
	fill(posix, 2);

	pid_t counter = fork();
	if (counter == 0) {
		for (;;) {
			sysv->count++;
			posix->count++;
			wl_sleep_ms(10);
		}
	}

	int lf = open(WL_DIR "/flock", O_RDWR | O_CREAT, 0600);
	int cf = open(WL_DIR "/fcntl", O_RDWR | O_CREAT, 0600);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 100 };
	if (lf < 0 || cf < 0 || flock(lf, LOCK_EX) < 0 || fcntl(cf, F_SETLK, &fl) < 0)
		return 1;
	pid_t self = getpid();

	unsigned long last = 0;
	for (;;) {
		wl_ticks++;
		unsigned long a = sysv->count, b = posix->count;
		/* The child bumps both in a row: they differ by at most one. */
		if (a + 1 < b || b + 1 < a)
			wl_fail("SysV count %lu and POSIX count %lu drifted apart", a, b);
		if (a < last)
			wl_fail("the shared count went back: %lu -> %lu", last, a);
		last = a;
		if (wl_ticks % 10 == 1 && (!intact(sysv, 1) || !intact(posix, 2)))
			wl_fail("the shared memory's pattern changed");
		struct shmid_ds ds;
		if (shmctl(shmid, IPC_STAT, &ds) < 0 || ds.shm_nattch != 2)
			wl_fail("the SysV segment has %lu attachments, want 2", (unsigned long)ds.shm_nattch);
		pid_t probe = fork();
		if (probe == 0)
			_exit(probe_locks(self));
		int status = 0;
		while (waitpid(probe, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			wl_fail("the locks: probe says %d (10s flock, 20s fcntl)", WEXITSTATUS(status));
		if (waitpid(counter, &status, WNOHANG) == counter)
			wl_fail("the counting child exited");
		wl_report(true, "count=%lu", a);
		wl_sleep_ms(50);
	}
}
