// SPDX-License-Identifier: GPL-2.0
/*
 * What moving a process's page tables (vm.pt_migration,
 * Documentation/vmitosis/pt-migration.rst) costs in TLB flushes per moved
 * table, and what it costs other processes: the latency of mmap(2) and
 * munmap(2) of libc in a process that is not moved, while another one's
 * tables, upper levels included, move back and forth. Prints one JSON
 * object on stdout; figures, not a verdict: `make bench` runs it in the
 * emulated host, whose times are not NUMA-real.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmitosis_util.h"

#define SYSCTL		"/proc/sys/vm/pt_migration"
#define LATENCY_S	6
#define MAX_SAMPLES	1048576

#define NR_LEVELS	5

static const char * const levels[NR_LEVELS] = { "pte", "pmd", "pud", "p4d", "pgd" };

static long long moved_tables(void)
{
	char name[32];
	long long sum = 0;
	unsigned int i;

	for (i = 0; i < NR_LEVELS; i++) {
		snprintf(name, sizeof(name), "pt_migrate_%s", levels[i]);
		sum += vmstat_event(name);
	}
	return sum;
}

static long move_self(int from, int to)
{
	unsigned long f = 1UL << from, t = 1UL << to;

	return syscall(SYS_migrate_pages, 0, 8 * sizeof(f), &f, &t);
}

/* @mib MiB of anonymous memory on node 0, in 4K pages or THPs, touched. */
static char *populate(size_t mib, int thp)
{
	size_t size = mib << 20, i;
	char *m = mmap(NULL, size + (2UL << 20), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	m = (char *)(((unsigned long)m + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	madvise(m, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (i = 0; i < size; i += 4096)
		m[i] = 1;
	return m;
}

/*
 * Flushes per moved table, in a child: on node 0 with @mib MiB (@flags:
 * FIG_THP for THPs, FIG_FIRST for the first figure), it moves them to node
 * 1 with migrate_pages(2), which takes its tables along; the counters are
 * read around the move.
 */
#define FIG_THP		1
#define FIG_FIRST	2

static int flush_figure(int mib, int flags)
{
	long long t0, f0, tables, flushes;

	if (pin_node(0) || !populate(mib, flags & FIG_THP))
		return 1;
	t0 = moved_tables();
	f0 = vmstat_event("pt_migrate_flush");
	if (pin_node(1) || move_self(0, 1) < 0)
		return 1;
	tables = moved_tables() - t0;
	flushes = vmstat_event("pt_migrate_flush") - f0;
	printf("%s    {\"mib\": %d, \"thp\": %s, ", flags & FIG_FIRST ? "" : ",\n",
	       mib, flags & FIG_THP ? "true" : "false");
	printf("\"tables_moved\": %lld, \"tlb_flushes\": %lld}", tables, flushes);
	return 0;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * A process on node 2 maps and unmaps libc (its first page touched) for
 * LATENCY_S seconds while another one, which maps libc too, moves 64 MiB
 * between nodes 0 and 1, tables and all when the sysctl is on. The
 * latencies of the first go to the JSON: median, 99th percentile, worst.
 */
static int latency_figure(const char *libc, int on, int first)
{
	long long *ns = calloc(MAX_SAMPLES, sizeof(*ns)), start, t0, moved;
	int fd = open(libc, O_RDONLY), status;
	long n = 0, moves = 0, elf = 0;
	struct stat st;
	pid_t mover;

	if (!ns || fd < 0 || fstat(fd, &st) || write_str(SYSCTL, on ? "1" : "0"))
		return -1;
	moved = moved_tables();
	fflush(stdout);
	mover = fork();
	if (mover < 0)
		return -1;
	if (!mover) {
		if (pin_node(0) || !populate(64, 0))
			_exit(1);
		for (;;) {
			move_self(0, 1);
			move_self(1, 0);
		}
	}
	pin_node(2);
	sleep(1);	/* the mover has its memory */
	start = now_ns();
	while (n < MAX_SAMPLES && now_ns() - start < LATENCY_S * 1000000000LL) {
		char *m;

		t0 = now_ns();
		m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED)
			break;
		elf += __atomic_load_n(m, __ATOMIC_RELAXED) == 0x7f;
		munmap(m, st.st_size);
		ns[n++] = now_ns() - t0;
	}
	kill(mover, SIGKILL);
	waitpid(mover, &status, 0);
	moves = moved_tables() - moved;
	close(fd);
	if (!n || elf != n)
		return -1;
	qsort(ns, n, sizeof(*ns), cmp_ll);
	printf("%s    {\"pt_migration\": %d, \"calls\": %ld, ", first ? "" : ",\n", on, n);
	printf("\"median_us\": %.1f, \"p99_us\": %.1f, \"worst_us\": %.1f, ",
	       ns[n / 2] / 1e3, ns[n * 99 / 100] / 1e3, ns[n - 1] / 1e3);
	printf("\"tables_moved\": %ld}", moves);
	free(ns);
	return 0;
}

int main(int argc, char **argv)
{
	const char *libc = argc > 1 ? argv[1] : "/lib/x86_64-linux-gnu/libc.so.6";
	char saved[8] = "0";
	int ret = 0;

	if (read_file(SYSCTL, saved, sizeof(saved)) < 0) {
		fprintf(stderr, "no vm.pt_migration: CONFIG_VMITOSIS_PT_MIGRATION is off\n");
		return 4;	/* KSFT_SKIP */
	}
	saved[strcspn(saved, "\n")] = 0;
	write_str("/proc/sys/kernel/numa_balancing", "0");
	if (write_str(SYSCTL, "1"))
		return 1;
	printf("{\n  \"gpt_flushes\": [\n");
	fflush(stdout);
	ret |= in_child(flush_figure, 64, FIG_FIRST);
	ret |= in_child(flush_figure, 256, 0);
	ret |= in_child(flush_figure, 256, FIG_THP);
	printf("\n  ],\n  \"mmap_latency_other_process\": [\n");
	fflush(stdout);
	ret |= latency_figure(libc, 0, 1);
	fflush(stdout);
	ret |= latency_figure(libc, 1, 0);
	printf("\n  ]\n}\n");
	write_str(SYSCTL, saved);
	return ret ? 1 : 0;
}
