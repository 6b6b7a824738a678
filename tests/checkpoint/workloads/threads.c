/* A multi-threaded process: four threads, each counting in its own
 * thread-local variable and in a shared array under a mutex, handing a
 * token round through a condition variable. Each tick the main thread
 * checks that the process still has five threads, that the shared total
 * equals the sum of the parts (the mutex and memory came back whole), that
 * every thread's counter moved on, and that each thread saw its
 * thread-local copy agree with its shared one (TLS, i.e. each thread's own
 * fs base, restored). */
#include <dirent.h>
#include <pthread.h>

#include "wl.h"

#define N_THREADS 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cv = PTHREAD_COND_INITIALIZER;
static unsigned long counts[N_THREADS], total;
static int turn;
static volatile bool tls_mismatch;
static __thread unsigned long my_count;

static void *thread_main(void *arg)
{
	int id = (int)(long)arg;
	for (;;) {
		pthread_mutex_lock(&lock);
		while (turn != id)
			pthread_cond_wait(&turn_cv, &lock);
		my_count++;
		counts[id]++;
		total++;
		if (my_count != counts[id])
			tls_mismatch = true;
		turn = (turn + 1) % N_THREADS;
		pthread_cond_broadcast(&turn_cv);
		pthread_mutex_unlock(&lock);
		wl_sleep_ms(5);
	}
	return NULL;
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int main(void)
{
	wl_init("threads");
	pthread_t t[N_THREADS];
	for (long i = 0; i < N_THREADS; i++)
		if (pthread_create(&t[i], NULL, thread_main, (void *)i) != 0)
			return 1;
	unsigned long last[N_THREADS] = { 0 };
	int stuck = 0;
	for (;;) {
		wl_ticks++;
		int n = count_threads();
		if (n != N_THREADS + 1)
			wl_fail("%d threads, want %d", n, N_THREADS + 1);
		pthread_mutex_lock(&lock);
		unsigned long sum = 0, now[N_THREADS];
		for (int i = 0; i < N_THREADS; i++)
			sum += now[i] = counts[i];
		unsigned long tot = total;
		pthread_mutex_unlock(&lock);
		if (sum != tot)
			wl_fail("total %lu != sum of the threads' counts %lu", tot, sum);
		if (tls_mismatch)
			wl_fail("a thread's TLS counter disagrees with its shared one");
		bool moved = true;
		for (int i = 0; i < N_THREADS; i++) {
			if (now[i] < last[i])
				wl_fail("thread %d's count went back", i);
			if (now[i] == last[i])
				moved = false;
			last[i] = now[i];
		}
		/* A tick is 50 ms, a round 20 ms: a thread that doesn't move for
		 * 2 s is stuck (its futex wait lost across the restore). */
		stuck = moved ? 0 : stuck + 1;
		if (stuck > 40)
			wl_fail("the threads stopped handing the token round");
		wl_report(true, "total=%lu", tot);
		wl_sleep_ms(50);
	}
}
