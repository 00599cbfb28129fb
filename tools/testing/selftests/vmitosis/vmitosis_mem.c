// SPDX-License-Identifier: GPL-2.0
/*
 * vmitosis_mem: map anonymous memory, touch every page with a pattern that
 * depends on its address, and verify it; optionally hold it until a signal so
 * that page-table placement can be inspected while the mapping is populated.
 *
 *   vmitosis_mem [--size SIZE] [--thp|--no-thp] [--node N [--move-to M]] [--hold]
 *
 * --node N runs the process on the CPUs of node N and binds its memory there,
 * page tables included: it re-executes itself bound, so that even its PGD is
 * allocated there. --move-to M then moves the process to node M once its
 * memory is populated, the way a task is moved between sockets: its CPUs and
 * memory policy to M, its pages with migrate_pages(2); its page tables stay
 * where they are, which is what vMitosis is about.
 *
 * With --hold, "ready" is printed once the memory is populated; on SIGTERM or
 * SIGINT the contents are verified again. Exit status 0 when the data is intact.
 */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>

#include "vmitosis_util.h"

static void on_signal(int sig)
{
	(void)sig;
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*end && strchr("KkMmGg", *end)) {
		int shift = strchr("Kk", *end) ? 10 : strchr("Mm", *end) ? 20 : 30;

		v <<= shift;
		end++;
	}
	if (*end || !v) {
		fprintf(stderr, "bad size '%s'\n", s);
		exit(2);
	}
	return v;
}

static uint64_t pattern(size_t off)
{
	return (off * 0x9e3779b97f4a7c15ULL) ^ 0x766d69746f736973ULL;
}

static size_t verify(const unsigned char *mem, size_t size, size_t page)
{
	size_t off, bad = 0;

	for (off = 0; off < size; off += page)
		if (*(const uint64_t *)(mem + off) != pattern(off))
			bad++;
	return bad;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "thp", no_argument, NULL, 't' },
		{ "no-thp", no_argument, NULL, 'n' },
		{ "hold", no_argument, NULL, 'h' },
		{ "node", required_argument, NULL, 'N' },
		{ "move-to", required_argument, NULL, 'M' },
		{ }
	};
	size_t size = 64 << 20, page = sysconf(_SC_PAGESIZE), off, bad;
	int thp = -1, hold = 0, node = -1, move_to = -1, c;
	sigset_t stop, old;
	unsigned char *mem;

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
		case 'h':
			hold = 1;
			break;
		case 'N':
			node = atoi(optarg);
			break;
		case 'M':
			move_to = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [--size SIZE] [--thp|--no-thp] %s\n",
				argv[0], "[--node N [--move-to M]] [--hold]");
			return 2;
		}
	}

	if (node >= 0 && !getenv("VMITOSIS_MEM_BOUND")) {
		if (bind_node(node)) {
			fprintf(stderr, "cannot bind to node %d: %s\n", node, strerror(errno));
			return 1;
		}
		/*
		 * Start again bound: exec builds a new mm, so every page table of
		 * the process, the PGD included, is allocated on @node.
		 */
		setenv("VMITOSIS_MEM_BOUND", "1", 1);
		execv("/proc/self/exe", argv);
		perror("exec");
		return 1;
	}
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (thp >= 0 && madvise(mem, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) {
		perror("madvise");
		return 1;
	}
	for (off = 0; off < size; off += page)
		*(uint64_t *)(mem + off) = pattern(off);

	if (move_to >= 0) {
		unsigned long from = 1UL << node, to = 1UL << move_to;
		long left;

		if (node < 0 || move_to >= 64 || bind_node(move_to)) {
			fprintf(stderr, "cannot move to node %d\n", move_to);
			return 1;
		}
		left = syscall(SYS_migrate_pages, 0, 64, &from, &to);
		if (left < 0) {
			perror("migrate_pages");
			return 1;
		}
		printf("moved to node %d, %ld pages left behind\n", move_to, left);
	}

	bad = verify(mem, size, page);
	if (bad) {
		printf("corrupt: %zu pages\n", bad);
		return 1;
	}
	if (!hold)
		return 0;

	/* Blocked until sigsuspend(): a signal sent right after "ready" is not lost. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, &old);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("ready %zu\n", size / page);
	fflush(stdout);
	sigsuspend(&old);
	bad = verify(mem, size, page);
	printf("%s %zu\n", bad ? "corrupt" : "intact", bad);
	return bad ? 1 : 0;
}
