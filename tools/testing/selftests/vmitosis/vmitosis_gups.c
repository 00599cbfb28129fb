// SPDX-License-Identifier: GPL-2.0
/*
 * vmitosis_gups: a GUPS-like random-update benchmark. Worker threads apply
 * random XOR updates to 64-bit words of one large anonymous array, so that
 * nearly every update misses the TLB and walks the page tables: the workload
 * whose walks vMitosis keeps local.
 *
 *   vmitosis_gups [--size SIZE] [--thp|--no-thp] [--threads N] [--pin]
 *                 [--updates N] [--wait-move] [--hold]
 *
 * --threads N  workers (default 1); worker i first touches the i-th slice of
 *              the array, so that its memory and page tables are placed the
 *              way first touch places them, then all workers update the
 *              whole array.
 * --pin        worker i runs on the i-th CPU the process may use: with one
 *              CPU per node, one worker per node (the "wide" scenario).
 * --updates N  updates per phase, all workers together (default: a quarter
 *              of the words of the array).
 * --wait-move  after the set-up phase print "setup", wait for SIGUSR1 (sent
 *              once whoever moves the process has moved it), check the data,
 *              then run the measured phase: the thin-migrated scenario.
 * --hold       print "ready" and wait for SIGTERM or SIGINT before the final
 *              check, so that page-table placement can be read meanwhile.
 *
 * The updates are atomic, so their result does not depend on how threads
 * interleave, and XOR undoes itself: replaying the measured phase gives back
 * the array as it was after set-up, whose checksum is kept. Rates are printed
 * in million updates per second (MUPS); under an emulator they say nothing
 * about NUMA. Exit status 0 when the data is intact.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "vmitosis_util.h"

struct worker {
	pthread_t thread;
	int id;
	int cpu;			/* -1: not pinned */
	uint64_t updates;
	uint64_t seed;
};

static uint64_t *words;
static size_t nr_words;
static int nr_threads = 1;
static pthread_barrier_t start_line;
static int phase;			/* 0: first touch, then the seed of the update phase */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t s, i;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			perror("sched_setaffinity");
	}
	pthread_barrier_wait(&start_line);
	if (!phase) {
		size_t per = (nr_words + nr_threads - 1) / nr_threads;
		size_t j, end = (w->id + 1) * per;

		for (j = w->id * per; j < end && j < nr_words; j++)
			words[j] = j;
		return NULL;
	}
	s = w->seed ^ ((uint64_t)phase << 32) ^ w->id;
	for (i = 0; i < w->updates; i++) {
		uint64_t r = splitmix(&s);

		__atomic_fetch_xor(&words[r % nr_words], r, __ATOMIC_RELAXED);
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run one phase on every worker; returns its duration in seconds. */
static double run_phase(struct worker *w, int which, uint64_t updates)
{
	double t0;
	int i;

	phase = which;
	pthread_barrier_init(&start_line, NULL, nr_threads + 1);
	for (i = 0; i < nr_threads; i++) {
		w[i].updates = updates / nr_threads + (i < (int)(updates % nr_threads));
		if (pthread_create(&w[i].thread, NULL, work, &w[i])) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&start_line);
	t0 = now();
	for (i = 0; i < nr_threads; i++)
		pthread_join(w[i].thread, NULL);
	pthread_barrier_destroy(&start_line);
	return now() - t0;
}

static uint64_t checksum(void)
{
	uint64_t sum = 0;
	size_t j;

	for (j = 0; j < nr_words; j++)
		sum = (sum ^ words[j]) * 0x100000001b3ULL;
	return sum;
}

static void bad_args(const char *prog)
{
	fprintf(stderr, "usage: %s [--size SIZE] [--thp|--no-thp] [--threads N] [--pin]\n"
		"       [--updates N] [--wait-move] [--hold]\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "thp", no_argument, NULL, 't' },
		{ "no-thp", no_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 'T' },
		{ "pin", no_argument, NULL, 'p' },
		{ "updates", required_argument, NULL, 'u' },
		{ "wait-move", no_argument, NULL, 'w' },
		{ "hold", no_argument, NULL, 'h' },
		{ }
	};
	size_t size = 256 << 20;
	uint64_t updates = 0, sum;
	int thp = -1, pin = 0, wait_move = 0, hold = 0, c, i, cpu, sig;
	struct worker *w;
	cpu_set_t allowed;
	sigset_t sigs;
	double t;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			size = parse_size(optarg);
			break;
		case 't':
			thp = 1;
			break;
		case 'n':
			thp = 0;
			break;
		case 'T':
			nr_threads = parse_size(optarg);
			if (nr_threads > CPU_SETSIZE)
				bad_args(argv[0]);
			break;
		case 'p':
			pin = 1;
			break;
		case 'u':
			updates = parse_size(optarg);
			break;
		case 'w':
			wait_move = 1;
			break;
		case 'h':
			hold = 1;
			break;
		default:
			bad_args(argv[0]);
		}
	}
	if (optind != argc || size < sizeof(*words))
		bad_args(argv[0]);
	nr_words = size / sizeof(*words);
	if (!updates)
		updates = nr_words / 4;

	/* The signals that drive the phases stay blocked, so none is lost. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	w = calloc(nr_threads, sizeof(*w));
	if (!w || sched_getaffinity(0, sizeof(allowed), &allowed)) {
		perror("set-up");
		return 1;
	}
	if (pin && CPU_COUNT(&allowed) < nr_threads) {
		fprintf(stderr, "--pin: %d threads but %d CPUs\n", nr_threads, CPU_COUNT(&allowed));
		return 2;
	}
	for (i = 0, cpu = 0; i < nr_threads; i++) {
		while (pin && !CPU_ISSET(cpu, &allowed))
			cpu++;
		w[i].id = i;
		w[i].cpu = pin ? cpu++ : -1;
		w[i].seed = 0x766d69746f736973ULL * (i + 1);
	}

	words = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (words == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (thp >= 0 && madvise(words, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) {
		perror("madvise");
		return 1;
	}

	t = run_phase(w, 0, 0);
	printf("touched %zu MiB with %d threads in %.1f s\n", size >> 20, nr_threads, t);
	t = run_phase(w, 1, updates);
	printf("setup: %llu updates in %.1f s, %.3f MUPS\n",
	       (unsigned long long)updates, t, updates / t / 1e6);
	sum = checksum();
	fflush(stdout);

	if (wait_move) {
		printf("setup done, waiting for SIGUSR1\n");
		fflush(stdout);
		if (sigwait(&sigs, &sig) || sig != SIGUSR1)
			return 1;
		if (checksum() != sum) {
			printf("corrupt after the move\n");
			return 1;
		}
	}
	t = run_phase(w, 2, updates);
	printf("measured: %llu updates in %.1f s, %.3f MUPS\n",
	       (unsigned long long)updates, t, updates / t / 1e6);

	if (hold) {
		printf("ready\n");
		fflush(stdout);
		if (sigwait(&sigs, &sig))
			return 1;
	}
	/* Undo the measured phase: the array must be as it was after set-up. */
	run_phase(w, 2, updates);
	if (checksum() != sum) {
		printf("corrupt\n");
		return 1;
	}
	printf("intact\n");
	return 0;
}
