// SPDX-License-Identifier: GPL-2.0
/*
 * The process page-table placement files of vMitosis
 * (Documentation/vmitosis/pt-info.rst): /proc/<pid>/pt_nodes and
 * /proc/<pid>/pt_dump report the node of every page-table page of a process
 * and of the page behind every leaf, never split a huge page to do so, are
 * safe to read while the process changes its mappings, and are root only.
 */
#include <pthread.h>
#include <time.h>
#include <sys/prctl.h>

#include "../kselftest_harness.h"
#include "vmitosis_util.h"

#define SZ_2M		(2UL << 20)
#define REGION		(16UL << 20)

struct leaf {
	unsigned long addr, pfn;
	int level, node;
};

struct table {
	unsigned long addr, pfn;
	int level, node;
};

struct pt_dump {
	int nr_leaves, nr_tables, has_pgd;
	struct leaf *leaves;
	struct table *tables;
};

/* Parse /proc/self/pt_dump, keeping what lies in [lo, hi); 0 if well formed. */
static int parse_dump(struct pt_dump *d, unsigned long lo, unsigned long hi)
{
	char line[256];
	FILE *f;
	int ret = 0;

	free(d->leaves);
	free(d->tables);
	memset(d, 0, sizeof(*d));
	d->leaves = calloc(REGION / 4096 + 16, sizeof(*d->leaves));
	d->tables = calloc(1024, sizeof(*d->tables));
	f = fopen("/proc/self/pt_dump", "r");
	if (!f || !d->leaves || !d->tables)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long addr, pfn;
		int level, node;

		if (line[0] == '#')
			continue;
		if (sscanf(line, "pgd %lx %d", &pfn, &node) == 2) {
			d->has_pgd++;
		} else if (sscanf(line, "table %d %lx %lx %d", &level, &addr, &pfn, &node) == 4) {
			if (!d->has_pgd || level < 1 || level > 5) {
				ret = -EINVAL;
				break;
			}
			if (addr + (4096UL << (9 * level)) > lo && addr < hi && d->nr_tables < 1024)
				d->tables[d->nr_tables++] =
					(struct table){ addr, pfn, level, node };
		} else if (sscanf(line, "leaf %lx %d %lx %d", &addr, &level, &pfn, &node) == 4) {
			if (!d->has_pgd || level < 1 || level > 3) {
				ret = -EINVAL;
				break;
			}
			if (addr >= lo && addr < hi && d->nr_leaves < (int)(REGION / 4096 + 16))
				d->leaves[d->nr_leaves++] = (struct leaf){ addr, pfn, level, node };
		} else {
			ret = -EINVAL;
			break;
		}
	}
	fclose(f);
	return d->has_pgd == 1 ? ret : -EINVAL;
}

static struct table *find_table(struct pt_dump *d, int level, unsigned long addr)
{
	int i;

	for (i = 0; i < d->nr_tables; i++)
		if (d->tables[i].level == level && d->tables[i].addr == addr)
			return &d->tables[i];
	return NULL;
}

static struct leaf *find_leaf(struct pt_dump *d, unsigned long addr)
{
	int i;

	for (i = 0; i < d->nr_leaves; i++)
		if (d->leaves[i].addr == addr)
			return &d->leaves[i];
	return NULL;
}

/*
 * An anonymous region aligned to 2M, populated with 4K pages or one THP per
 * 2M; the whole mapping, @size + 2M from *@rawp, is the caller's to unmap.
 */
static char *populate(size_t size, int thp, char **rawp)
{
	char *raw = mmap(NULL, size + SZ_2M, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;
	size_t off;

	if (raw == MAP_FAILED)
		return NULL;
	*rawp = raw;
	p = (char *)(((unsigned long)raw + SZ_2M - 1) & ~(SZ_2M - 1));
	if (madvise(p, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		return NULL;
	for (off = 0; off < size; off += 4096)
		p[off] = (char)off | 1;
	return p;
}

/*
 * Memory faulted in by a thread bound to one node gets its PTE tables there:
 * the dump names, for every page, a 4K leaf on the node of that page and a
 * PTE table on the bound node; pt_nodes counts those tables there.
 */
TEST(process_tables_and_leaves_on_their_nodes)
{
	struct pt_dump d = { 0 };
	int node = last_node(), i;
	char buf[1024], *p, *q, *raw;
	unsigned long off;
	long count;

	ASSERT_EQ(0, bind_node(node));
	p = populate(REGION, 0, &raw);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, parse_dump(&d, (unsigned long)p, (unsigned long)p + REGION));
	for (off = 0; off < REGION; off += 4096) {
		struct leaf *l = find_leaf(&d, (unsigned long)p + off);
		struct table *t = find_table(&d, 1, ((unsigned long)p + off) & ~(SZ_2M - 1));

		ASSERT_NE(NULL, l) TH_LOG("no leaf for %p", p + off);
		EXPECT_EQ(1, l->level);
		EXPECT_EQ(page_node(p + off), l->node);
		ASSERT_NE(NULL, t) TH_LOG("no PTE table for %p", p + off);
		EXPECT_EQ(node, t->node);
	}

	ASSERT_GT(read_file("/proc/self/pt_nodes", buf, sizeof(buf)), 0);
	q = strstr(buf, "tables level 1:");
	ASSERT_NE(NULL, q) TH_LOG("%s", buf);
	q += strlen("tables level 1:");
	for (i = 0; i <= node; i++)
		count = strtol(q, &q, 10);
	EXPECT_GE(count, (long)(REGION / SZ_2M)) TH_LOG("%s", buf);
	free(d.leaves);
	free(d.tables);
}

/* A THP is reported as a 2M leaf, and reading the dump does not split it. */
TEST(huge_page_reported_not_split)
{
	struct pt_dump d = { 0 };
	struct leaf *l;
	char *p, *raw;
	int i;

	if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK))
		SKIP(return, "no transparent huge pages");
	p = populate(SZ_2M, 1, &raw);
	ASSERT_NE(NULL, p);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, parse_dump(&d, (unsigned long)p, (unsigned long)p + SZ_2M));
		l = find_leaf(&d, (unsigned long)p);
		ASSERT_NE(NULL, l);
		if (l->level != 2)
			SKIP(return, "no THP was allocated (level %d)", l->level);
		EXPECT_EQ(1, d.nr_leaves) TH_LOG("read %d: the THP was split", i);
		EXPECT_NE(NULL, find_table(&d, 2, (unsigned long)p & ~((1UL << 30) - 1)));
	}
	free(d.leaves);
	free(d.tables);
}

/* Physical placement is for CAP_SYS_ADMIN only. */
TEST(unprivileged_open_is_refused)
{
	int status;
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (!pid) {
		/* Dumpable again, so /proc/self is ours and the mode bits let us in. */
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534) ||
		    prctl(PR_SET_DUMPABLE, 1))
			_exit(2);
		_exit(open("/proc/self/pt_dump", O_RDONLY) < 0 && errno == EPERM &&
		      open("/proc/self/pt_nodes", O_RDONLY) < 0 && errno == EPERM ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

struct churn {
	int stop;		/* __atomic */
	long ops;
};

static void *churn(void *arg)
{
	struct churn *c = arg;

	/* Faults, mprotect, munmap and THP collapse candidates, in a loop. */
	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		char *raw, *p = populate(4 * SZ_2M, c->ops & 1, &raw);

		if (!p)
			break;
		mprotect(p, SZ_2M, PROT_READ);
		munmap(p + SZ_2M, SZ_2M);
		munmap(raw, 5 * SZ_2M);
		c->ops++;
	}
	return NULL;
}

/* Reading the dump while other threads fault, mprotect and munmap is safe. */
TEST(dump_is_safe_during_mapping_changes)
{
	struct churn c = { 0 };
	struct timespec t0, t;
	struct pt_dump d = { 0 };
	pthread_t a, b;
	int reads = 0;

	ASSERT_EQ(0, pthread_create(&a, NULL, churn, &c));
	ASSERT_EQ(0, pthread_create(&b, NULL, churn, &c));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		EXPECT_EQ(0, parse_dump(&d, 0, ~0UL));
		reads++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 5);
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELAXED);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	TH_LOG("%d reads during %ld mapping changes", reads, c.ops);
	EXPECT_GT(c.ops, 0);
	free(d.leaves);
	free(d.tables);
}

TEST_HARNESS_MAIN
