/* A process tree: the parent, two children and a grandchild that count in
 * shared anonymous memory, and a zombie child that exited with 42 and is
 * never reaped. Each tick the parent checks that every counter moved on
 * by at most a few steps (a restore that lost or reset the shared memory
 * shows as a jump back), that the family relations (getppid) still hold,
 * and that the zombie is still a zombie with its exit status (peeked at
 * with WNOWAIT, so it stays unreaped). */
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "wl.h"

#define N_WORKERS 3

struct shared {
	volatile unsigned long count[N_WORKERS];
	volatile pid_t pid[N_WORKERS];
	volatile pid_t ppid_seen[N_WORKERS];
};

static void worker(struct shared *sh, int i)
{
	sh->ppid_seen[i] = getppid();
	sh->pid[i] = getpid();
	for (;;) {
		sh->ppid_seen[i] = getppid();
		sh->count[i]++;
		wl_sleep_ms(20);
	}
}

static char proc_state(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *paren = strrchr(buf, ')');
	return paren != NULL && paren[1] == ' ' ? paren[2] : '?';
}

int main(void)
{
	wl_init("tree");
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	memset((void *)sh, 0, sizeof(*sh));
	pid_t self = getpid();

	pid_t zombie = fork();
	if (zombie == 0)
		_exit(42);
	/* child 0, and child 1 with its own child (worker 2, the grandchild) */
	pid_t child0 = fork();
	if (child0 == 0)
		worker(sh, 0);
	pid_t child1 = fork();
	if (child1 == 0) {
		if (fork() == 0)
			worker(sh, 2);
		worker(sh, 1);
	}
	for (int i = 0; i < 100 && (sh->pid[0] == 0 || sh->pid[1] == 0 || sh->pid[2] == 0); i++)
		wl_sleep_ms(10);
	/* The zombie must have exited before the first check (a loaded host
	 * may not have run it yet: state R, a CI run once); WNOWAIT leaves it
	 * a zombie. */
	siginfo_t exited = { 0 };
	while (waitid(P_PID, zombie, &exited, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;

	unsigned long last[N_WORKERS] = { 0 };
	for (;;) {
		wl_ticks++;
		for (int i = 0; i < N_WORKERS; i++) {
			unsigned long c = sh->count[i];
			if (c < last[i])
				wl_fail("worker %d's counter went back: %lu -> %lu", i, last[i], c);
			last[i] = c;
		}
		if (sh->ppid_seen[0] != self || sh->ppid_seen[1] != self)
			wl_fail("a child's parent changed: %d %d, want %d", (int)sh->ppid_seen[0], (int)sh->ppid_seen[1],
				(int)self);
		if (sh->ppid_seen[2] != sh->pid[1])
			wl_fail("the grandchild's parent is %d, want %d", (int)sh->ppid_seen[2], (int)sh->pid[1]);
		if (sh->pid[0] != child0 || sh->pid[1] != child1)
			wl_fail("children's pids changed");
		for (int i = 0; i < N_WORKERS; i++)
			if (kill(sh->pid[i], 0) < 0)
				wl_fail("worker %d (pid %d) is gone", i, (int)sh->pid[i]);
		char st = proc_state(zombie);
		if (st != 'Z')
			wl_fail("the zombie %d is in state %c", (int)zombie, st);
		siginfo_t si = { 0 };
		if (waitid(P_PID, zombie, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
			wl_fail("waitid on the zombie: %s", strerror(errno));
		else if (si.si_pid != zombie || si.si_code != CLD_EXITED || si.si_status != 42)
			wl_fail("the zombie's exit: pid %d code %d status %d", (int)si.si_pid, si.si_code, si.si_status);
		wl_report(true, "counts=%lu,%lu,%lu zombie=%d", last[0], last[1], last[2], (int)zombie);
		wl_sleep_ms(50);
	}
}
