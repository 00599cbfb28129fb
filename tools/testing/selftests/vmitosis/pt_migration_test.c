// SPDX-License-Identifier: GPL-2.0
/*
 * Page-table migration of vMitosis (Documentation/vmitosis/pt-migration.rst):
 * with vm.pt_migration=1 a process's page tables, every level, follow its
 * memory to another node, moved by NUMA balancing or by migrate_pages(2);
 * its data stays intact, and no page-table page is leaked. With the sysctl
 * off they stay where they are. Needs root and at least two nodes.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "vmitosis_util.h"
#include "vmitosis_klog.h"

#define SZ_2M		(2UL << 20)
#define SZ_1G		(1024UL << 20)
#define REGION_MB	256UL
#define LEVELS		5

/* Bounds the tests state, under QEMU TCG, which is slow. */
#define BALANCING_TIMEOUT_S	120
#define MIGRATE_TIMEOUT_S	20
#define OFF_WAIT_S		5

/*
 * The memory of the children that are moved, in MiB: REGION_MB, or
 * VMITOSIS_REGION_MB from the environment (2 to 65536). The debug pass of
 * make test sets a smaller one: under KASAN and lockdep, in TCG, NUMA
 * balancing moved 3 of the 132 tables of 256 MiB in 145 s.
 */
static size_t region_size(void)
{
	const char *env = getenv("VMITOSIS_REGION_MB");
	char *end;
	unsigned long mb;

	if (!env || !*env)
		return (size_t)REGION_MB << 20;
	mb = strtoul(env, &end, 10);
	if (*end || mb < 2 || mb > 65536) {
		fprintf(stderr, "VMITOSIS_REGION_MB=%s: not 2 to 65536\n", env);
		exit(KSFT_FAIL);
	}
	return (size_t)mb << 20;
}

struct pt_nodes {
	long count[LEVELS + 1][MAX_NODES];	/* [level][node] */
	int nodes;
};

static int read_pt_nodes(pid_t pid, struct pt_nodes *t)
{
	char path[64], line[1024];
	FILE *f;
	int ret = -1;

	memset(t, 0, sizeof(*t));
	snprintf(path, sizeof(path), "/proc/%d/pt_nodes", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		int level, n, off;
		char *p;

		if (sscanf(line, "nodes %d", &t->nodes) == 1)
			continue;
		if (sscanf(line, "tables level %d:%n", &level, &off) != 1 ||
		    level < 1 || level > LEVELS)
			continue;
		p = line + off;
		for (n = 0; n < t->nodes && n < MAX_NODES; n++)
			t->count[level][n] = strtol(p, &p, 10);
		ret = 0;
	}
	fclose(f);
	return ret;
}

/* A table pt_dump has shown, and what it maps, in bytes per node. */
struct dumped_table {
	int nid;
	unsigned long long bytes[MAX_NODES];
};

/*
 * A table off @node is where it belongs when its own node holds at least
 * as much of what it maps as @node does: it follows its data, which is
 * elsewhere (a stack left behind, a page of a file read on another node).
 */
static int excused(const struct dumped_table *t, int node)
{
	return t->nid >= 0 && t->nid < MAX_NODES && t->nid != node &&
	       t->bytes[t->nid] && t->bytes[t->nid] >= t->bytes[node];
}

/*
 * Count per level, in @out, the tables of @pid off @node that sit with
 * their data, from its pt_dump: each table line comes before what the
 * table maps, so a table is complete once a line of its level or above
 * follows. The PGD, above every table, gets level 1 + the highest seen.
 * Returns the share of what @pid maps that is on @node, in %.
 */
static double with_data_elsewhere(pid_t pid, int node, long out[LEVELS + 1])
{
	unsigned long long all = 0;
	struct dumped_table open[LEVELS + 1] = { 0 }, pgd = { .nid = -1 };
	int top = 0, l;
	char path[64], line[256];
	FILE *f;

	memset(out, 0, (LEVELS + 1) * sizeof(*out));
	for (l = 0; l <= LEVELS; l++)
		open[l].nid = -1;
	snprintf(path, sizeof(path), "/proc/%d/pt_dump", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	for (;;) {
		char *got = fgets(line, sizeof(line), f);
		unsigned long addr, pfn;
		int level = 0, nid;

		if (got && sscanf(line, "leaf %lx %d %lx %d", &addr, &level, &pfn, &nid) == 4) {
			unsigned long long size = 4096ULL << (9 * (level - 1));

			if (level < 1 || level >= LEVELS || nid < 0 || nid >= MAX_NODES)
				continue;
			for (l = level; l < LEVELS; l++)
				if (open[l].nid >= 0)
					open[l].bytes[nid] += size;
			pgd.bytes[nid] += size;
			continue;
		}
		if (got && sscanf(line, "pgd %lx %d", &pfn, &nid) == 2) {
			pgd.nid = nid;
			continue;
		}
		if (got && (sscanf(line, "table %d %lx %lx %d", &level, &addr, &pfn, &nid) != 4 ||
			    level < 1 || level >= LEVELS))
			continue;
		/* Close the tables this line is not inside of. */
		for (l = 1; l <= (got ? level : LEVELS - 1); l++) {
			if (open[l].nid >= 0 && excused(&open[l], node))
				out[l]++;
			open[l].nid = -1;
		}
		if (!got)
			break;
		if (level > top)
			top = level;
		memset(&open[level], 0, sizeof(open[level]));
		open[level].nid = nid;
	}
	fclose(f);
	if (top + 1 <= LEVELS && excused(&pgd, node))
		out[top + 1]++;
	for (l = 0; l < MAX_NODES; l++)
		all += pgd.bytes[l];
	return all ? 100.0 * pgd.bytes[node] / all : 0;
}

/*
 * Share of @pid's tables on @node at the level where it is lowest, in %;
 * if @excuse, tables that sit with their data on another node do not count
 * (the two reads race with the moves: no more of them than are off @node).
 * @data, if set, gets the share of the memory @pid maps that is on @node.
 */
static double min_share(pid_t pid, int node, int excuse, char *why, size_t len,
			double *data)
{
	long elsewhere[LEVELS + 1];
	struct pt_nodes t;
	double min = 100.0, on_node;
	int level, n;

	on_node = with_data_elsewhere(pid, node, elsewhere);
	if (data)
		*data = on_node;
	if (!excuse)
		memset(elsewhere, 0, sizeof(elsewhere));
	if (read_pt_nodes(pid, &t))
		return -1;
	why[0] = 0;
	for (level = 1; level <= LEVELS; level++) {
		long total = 0;
		double share;

		for (n = 0; n < MAX_NODES; n++)
			total += t.count[level][n];
		if (elsewhere[level] > total - t.count[level][node])
			elsewhere[level] = total - t.count[level][node];
		total -= elsewhere[level];
		if (total <= 0)
			continue;
		share = 100.0 * t.count[level][node] / total;
		snprintf(why + strlen(why), len - strlen(why), " L%d %ld/%ld", level,
			 t.count[level][node], total);
		if (elsewhere[level])
			snprintf(why + strlen(why), len - strlen(why),
				 " (+%ld with their data elsewhere)", elsewhere[level]);
		if (share < min)
			min = share;
	}
	return min;
}

/*
 * Log the first tables of @pid that are not on @node, from its pt_dump, with
 * the nodes of the 4K pages a stray table of PTEs maps.
 */
static void log_strays(struct __test_metadata *_metadata, pid_t pid, int node)
{
	char path[64], line[256], stray[256] = "";
	long leaves[MAX_NODES] = { 0 };
	int shown = 0, n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/pt_dump", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (shown < 12) {
		char *got = fgets(line, sizeof(line), f);
		unsigned long addr, pfn;
		int level, nid;

		if (got && sscanf(line, "leaf %lx %d %lx %d", &addr, &level, &pfn, &nid) == 4) {
			if (level == 1 && nid >= 0 && nid < MAX_NODES)
				leaves[nid]++;
			continue;
		}
		if (stray[0]) {
			char counts[128] = "";

			for (n = 0; n < 4 && n < MAX_NODES; n++)
				snprintf(counts + strlen(counts), sizeof(counts) - strlen(counts),
					 " %ld", leaves[n]);
			TH_LOG("not on node %d: %s, 4K pages on nodes 0-3:%s",
			       node, stray, counts);
			stray[0] = 0;
			shown++;
		}
		if (!got)
			break;
		memset(leaves, 0, sizeof(leaves));
		if ((sscanf(line, "table %d %lx %lx %d", &level, &addr, &pfn, &nid) == 4 ||
		     sscanf(line, "pgd %lx %d", &pfn, &nid) == 2) && nid != node)
			snprintf(stray, sizeof(stray), "%s", strtok(line, "\n"));
	}
	fclose(f);
}

/* PageTables of every node, in kB, with the per-CPU counts folded in. */
static long node_pagetables_kb(void)
{
	unsigned char nodes[MAX_NODES];
	long sum = 0, kb;
	int n;

	fold_vmstat();
	if (online_nodes(nodes) <= 0)
		return -1;
	for (n = 0; n < MAX_NODES; n++) {
		if (!nodes[n])
			continue;
		kb = node_meminfo_kb(n, "PageTables");
		if (kb < 0)
			return -1;
		sum += kb;
	}
	return sum;
}

/* VmPTE of every process, in kB: the tables its mm owns. */
static long owned_pagetables_kb(void)
{
	char path[300], line[128];
	struct dirent *d;
	long sum = 0, kb;
	DIR *dir;
	FILE *f;

	dir = opendir("/proc");
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;	/* it has exited meanwhile */
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmPTE: %ld kB", &kb) == 1)
				sum += kb;
		fclose(f);
	}
	closedir(dir);
	return sum;
}

/*
 * Page-table pages that no process owns: PageTables of every node less the
 * VmPTE of every process (both count the tables of PTEs, PMDs and PUDs in
 * 6.12). The test bed's other processes start, exit and grow their tables
 * while a test runs, and a system-wide PageTables reading moves with them;
 * this one does not. What it still holds (the kernel's own PMD and PUD
 * tables, tables on their way to being freed) stays put once RCU has freed
 * the old copies, so growth across a test is a table that migration leaked.
 * A reading counts only when PageTables did not move while the processes
 * were read.
 */
static long pagetables_kb(void)
{
	long total, owned, again;
	int i;

	for (i = 0; i < 50; i++) {
		total = node_pagetables_kb();
		owned = owned_pagetables_kb();
		again = node_pagetables_kb();
		if (total < 0 || owned < 0)
			return -1;
		if (total == again)
			return total - owned;
		usleep(20 * 1000);
	}
	return -1;
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ret;

	if (fd < 0)
		return -1;
	ret = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -1;
	close(fd);
	return ret;
}

static long long vmstat_event(const char *name)
{
	char buf[16384], *p;
	size_t len = strlen(name);

	if (read_file("/proc/vmstat", buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, len) && p[len] == ' ')
			return atoll(p + len + 1);
	return -1;
}

static unsigned long checksum(const unsigned long *p, size_t size)
{
	unsigned long sum = 0;
	size_t i;

	for (i = 0; i < size / sizeof(*p); i += 512)
		sum = sum * 31 + p[i];
	return sum;
}

/* What a child maps besides its region (start_child()'s @flags). */
#define CHILD_THP		1	/* the region in THPs */
#define CHILD_MANY_LOCKS	2	/* and SPREAD_SLOTS anon_vmas more */

#define SPREAD_SLOTS	64

/*
 * Fault in SPREAD_SLOTS pages of their own, each at the start of a 1 GiB
 * slot and between PROT_NONE gaps, so that no two merge or share an
 * anon_vma: each has an rmap lock of its own, more of them under the tables
 * above the PMD tables than a move could hold at once (40), but only one
 * under each PMD table. Returns the first slot, or NULL.
 */
static char *spread_anon_vmas(void)
{
	char *base;
	int i;

	base = mmap(NULL, (SPREAD_SLOTS + 1) * SZ_1G, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	base = (char *)(((unsigned long)base + SZ_1G - 1) & ~(SZ_1G - 1));
	for (i = 0; i < SPREAD_SLOTS; i++) {
		if (mprotect(base + i * SZ_1G, 4096, PROT_READ | PROT_WRITE))
			return NULL;
		base[i * SZ_1G] = (char)(i + 1);
	}
	return base;
}

static int spread_intact(const char *base)
{
	int i;

	for (i = 0; base && i < SPREAD_SLOTS; i++)
		if (base[i * SZ_1G] != (char)(i + 1))
			return 0;
	return 1;
}

static int stop;

static void on_term(int sig)
{
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

/*
 * The child: fault @size of memory in from node 0 (and what @flags add),
 * report ready on @out, wait for a byte on @in, move to node 1's CPUs and
 * keep reading the memory (NUMA balancing needs the accesses) until
 * SIGTERM. Exits 0 if the data is intact, 2 if not, 1 on a setup failure.
 */
static int child(int in, int out, int flags)
{
	size_t i, region = region_size();
	unsigned long *p, sum, sink = 0;
	char c, *spread = NULL;

	signal(SIGTERM, on_term);
	if (pin_node(0))
		return 1;
	if (flags & CHILD_MANY_LOCKS) {
		spread = spread_anon_vmas();
		if (!spread)
			return 1;
	}
	p = mmap(NULL, region + SZ_2M, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	p = (unsigned long *)(((unsigned long)p + SZ_2M - 1) & ~(SZ_2M - 1));
	if (madvise(p, region, flags & CHILD_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		return 1;
	for (i = 0; i < region / sizeof(*p); i += 512)
		p[i] = i * 2654435761UL;
	sum = checksum(p, region);
	if (write(out, "r", 1) != 1 || read(in, &c, 1) != 1)
		return 1;
	if (pin_node(1))
		return 1;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
		for (i = 0; i < region / sizeof(*p); i += 512)
			sink += p[i];
	return checksum(p, region) == sum && spread_intact(spread) && sink != 1 ? 0 : 2;
}

enum how { BY_BALANCING, BY_MIGRATE_PAGES };

struct run {
	pid_t pid;
	int to_child, from_child;
};

static int start_child(struct run *r, int flags)
{
	int down[2], up[2];
	cpu_set_t all;
	char c;

	/* fork() copies the page tables on the CPU of the caller: node 0 too. */
	if (pipe(down) || pipe(up) || sched_getaffinity(0, sizeof(all), &all) ||
	    pin_node(0))
		return -1;
	r->pid = fork();
	if (r->pid < 0)
		return -1;
	if (!r->pid)
		_exit(child(down[0], up[1], flags));
	sched_setaffinity(0, sizeof(all), &all);
	close(down[0]);
	close(up[1]);
	r->to_child = down[1];
	r->from_child = up[0];
	return read(r->from_child, &c, 1) == 1 ? 0 : -1;
}

static int stop_child(struct run *r)
{
	int status;

	kill(r->pid, SIGTERM);
	if (waitpid(r->pid, &status, 0) != r->pid || !WIFEXITED(status))
		return -1;
	close(r->to_child);
	close(r->from_child);
	return WEXITSTATUS(status);
}

static int move_child(struct run *r, enum how how)
{
	unsigned long from = 1UL << 0, to = 1UL << 1;

	if (write(r->to_child, "g", 1) != 1)
		return -1;
	if (how == BY_MIGRATE_PAGES) {
		usleep(200 * 1000);	/* the child is on node 1's CPUs by now */
		if (syscall(SYS_migrate_pages, r->pid, 8 * sizeof(from), &from, &to) < 0)
			return -1;
	}
	return 0;
}

FIXTURE(pt_migration) {
	char saved_sysctl[16], saved_balancing[16];
	long pagetables_before;
};

FIXTURE_SETUP(pt_migration)
{
	unsigned char nodes[MAX_NODES];

	if (geteuid())
		SKIP(return, "needs root");
	if (online_nodes(nodes) < 2 || !nodes[1])
		SKIP(return, "needs nodes 0 and 1");
	if (read_file("/proc/sys/vm/pt_migration", self->saved_sysctl,
		      sizeof(self->saved_sysctl)) < 0)
		SKIP(return, "no vm.pt_migration: CONFIG_VMITOSIS_PT_MIGRATION is off");
	if (read_file("/proc/sys/kernel/numa_balancing", self->saved_balancing,
		      sizeof(self->saved_balancing)) < 0)
		snprintf(self->saved_balancing, sizeof(self->saved_balancing), "0");
	TH_LOG("children move %zu MiB", region_size() >> 20);
	self->pagetables_before = pagetables_kb();
	ASSERT_GE(self->pagetables_before, 0);
}

FIXTURE_TEARDOWN(pt_migration)
{
	write_str("/proc/sys/vm/pt_migration", self->saved_sysctl);
	write_str("/proc/sys/kernel/numa_balancing", self->saved_balancing);
}

/* Tables moved so far, every level (P4D tables only with 5-level paging). */
static long long tables_moved(void)
{
	return vmstat_event("pt_migrate_pte") + vmstat_event("pt_migrate_pmd") +
	       vmstat_event("pt_migrate_pud") + vmstat_event("pt_migrate_p4d") +
	       vmstat_event("pt_migrate_pgd");
}

/*
 * Move a child from node 0 to node 1 and wait until at least 95% of what it
 * maps (its 256 MiB and a few MiB of program, libraries and stack) and at
 * least 99% of its page-table pages, at every level, are on node 1, but for
 * tables that sit with the data they map elsewhere (its libraries' page
 * cache, a stack page the child no longer touches); then check its data and
 * that, once it has exited, no more page-table pages are left that no
 * process owns than before (pagetables_kb()).
 */
static void moves_with(struct __test_metadata *_metadata, long pagetables_before,
		       enum how how, int flags)
{
	int timeout = how == BY_BALANCING ? BALANCING_TIMEOUT_S : MIGRATE_TIMEOUT_S;
	long long moved = tables_moved();
	struct timespec t0, t1;
	double share = 0, data = 0;
	char why[256] = "";
	struct run r;
	long after;
	int i;

	ASSERT_EQ(0, write_str("/proc/sys/vm/pt_migration", "1"));
	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing",
			       how == BY_BALANCING ? "1" : "0"));
	ASSERT_EQ(0, start_child(&r, flags));
	share = min_share(r.pid, 0, 0, why, sizeof(why), NULL);
	TH_LOG("before: tables on node 0 per level:%s", why);
	ASSERT_GE(share, 99.0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, move_child(&r, how));
	/* Until the deadline: reading a dump takes seconds under emulation. */
	for (;;) {
		share = min_share(r.pid, 1, 1, why, sizeof(why), &data);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((share >= 99.0 && data >= 95.0) || t1.tv_sec - t0.tv_sec >= timeout)
			break;
		usleep(250 * 1000);
	}
	TH_LOG("after %.1f s: %.1f%% of the memory and tables per level on node 1:%s",
	       t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9, data, why);
	TH_LOG("tables moved (vmstat): %lld", tables_moved() - moved);
	if (share < 99.0)
		log_strays(_metadata, r.pid, 1);
	EXPECT_GE(data, 95.0);
	EXPECT_GE(share, 99.0);
	EXPECT_EQ(0, stop_child(&r));

	/* Old copies are freed after an RCU grace period: give it time. */
	for (i = 0; i < 40; i++) {
		after = pagetables_kb();
		if (after <= pagetables_before)
			break;
		usleep(250 * 1000);
	}
	TH_LOG("PageTables no process owns: %ld kB before, %ld kB after exit (%ld kB in all)",
	       pagetables_before, after, node_pagetables_kb());
	EXPECT_GE(after, 0);
	EXPECT_LE(after, pagetables_before);
}

TEST_F_TIMEOUT(pt_migration, follow_numa_balancing_4k, 300)
{
	moves_with(_metadata, self->pagetables_before, BY_BALANCING, 0);
}

TEST_F_TIMEOUT(pt_migration, follow_numa_balancing_thp, 300)
{
	moves_with(_metadata, self->pagetables_before, BY_BALANCING, CHILD_THP);
}

TEST_F_TIMEOUT(pt_migration, follow_migrate_pages_4k, 120)
{
	moves_with(_metadata, self->pagetables_before, BY_MIGRATE_PAGES, 0);
}

TEST_F_TIMEOUT(pt_migration, follow_migrate_pages_thp, 120)
{
	moves_with(_metadata, self->pagetables_before, BY_MIGRATE_PAGES, CHILD_THP);
}

/*
 * More distinct rmap locks under the PUD table, the P4D table and the PGD
 * than a move could hold at once: those tables move all the same.
 */
TEST_F_TIMEOUT(pt_migration, follow_migrate_pages_many_rmap_locks, 120)
{
	moves_with(_metadata, self->pagetables_before, BY_MIGRATE_PAGES, CHILD_MANY_LOCKS);
}

/* With vm.pt_migration=0 the data moves and the page tables stay. */
TEST_F_TIMEOUT(pt_migration, stay_when_off, 120)
{
	long elsewhere[LEVELS + 1];
	char why[256];
	struct run r;
	double share, data;

	ASSERT_EQ(0, write_str("/proc/sys/vm/pt_migration", "0"));
	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing", "0"));
	ASSERT_EQ(0, start_child(&r, 0));
	ASSERT_EQ(0, move_child(&r, BY_MIGRATE_PAGES));
	sleep(OFF_WAIT_S);
	share = min_share(r.pid, 0, 0, why, sizeof(why), NULL);
	data = with_data_elsewhere(r.pid, 1, elsewhere);
	TH_LOG("%d s after migrate_pages: memory on node 1: %.1f%%", OFF_WAIT_S, data);
	TH_LOG("tables on node 0 per level:%s", why);
	EXPECT_GE(data, 95.0);
	EXPECT_GE(share, 99.0);
	EXPECT_EQ(0, stop_child(&r));
}

/* The node of @pid's table of PTEs that maps @addr, or -1. */
static int pte_table_node(pid_t pid, unsigned long addr)
{
	char path[64], line[256];
	unsigned long start, pfn;
	int level, nid, found = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/pt_dump", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "table %d %lx %lx %d", &level, &start, &pfn, &nid) == 4 &&
		    level == 1 && start == (addr & ~(SZ_2M - 1)))
			found = nid;
	fclose(f);
	return found;
}

/*
 * A task that moves to another node while its data stays must leave its
 * tables with the data. One table of PTEs maps 511 pages on node 0 and one
 * on node 1; the task moves to node 1 and reads only its local page, so
 * NUMA balancing makes the 511 others PROT_NONE, and they stay on node 0
 * (nothing faults on them). The table must stay on node 0 after tables
 * were examined since that marking. The task stays single-threaded: the
 * scan leaves local pages accessible only then. No /proc reads of this mm
 * (they take a reference to it) until the end.
 */
TEST_F_TIMEOUT(pt_migration, stay_with_data_when_task_moves, 180)
{
	long long marked, scans = -1;
	int i, node, status, target = 1;
	struct timespec t0, t1;
	unsigned long *p, sink = 0;
	void *page;

	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing", "0"));
	ASSERT_EQ(0, write_str("/proc/sys/vm/pt_migration", "1"));
	ASSERT_EQ(0, pin_node(0));
	p = mmap(NULL, 2 * SZ_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	p = (unsigned long *)(((unsigned long)p + SZ_2M - 1) & ~(SZ_2M - 1));
	ASSERT_EQ(0, madvise(p, SZ_2M, MADV_NOHUGEPAGE));
	for (i = 0; i < 512; i++)
		p[i * 512] = i + 1;
	page = p;
	ASSERT_EQ(0, syscall(SYS_move_pages, 0, 1, &page, &target, &status, MPOL_MF_MOVE));
	ASSERT_EQ(1, status);
	ASSERT_EQ(0, pte_table_node(getpid(), (unsigned long)p));

	marked = vmstat_event("numa_pte_updates");
	ASSERT_GE(marked, 0);
	ASSERT_EQ(0, pin_node(1));
	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing", "1"));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (i = 0; i < 1000000; i++)
			sink += __atomic_load_n(&p[i & 511], __ATOMIC_RELAXED);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (scans < 0 && vmstat_event("numa_pte_updates") - marked >= 511)
			scans = vmstat_event("pt_migrate_scan_pte");
		else if (scans >= 0 && vmstat_event("pt_migrate_scan_pte") > scans)
			break;
	} while (t1.tv_sec - t0.tv_sec < 120);
	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing", "0"));
	TH_LOG("NUMA balancing marked %lld PTEs; tables examined after: %s",
	       vmstat_event("numa_pte_updates") - marked, scans >= 0 ? "yes" : "no");
	ASSERT_LE(0, scans);
	ASSERT_LT(scans, vmstat_event("pt_migrate_scan_pte"));
	for (i = 1; i < 512; i++)
		if (page_node(p + i * 512) != 0)
			break;
	EXPECT_EQ(512, i) TH_LOG("page %d of the data moved to node %d", i,
				 page_node(p + i * 512));
	EXPECT_EQ(1, page_node(p));
	node = pte_table_node(getpid(), (unsigned long)p);
	EXPECT_EQ(0, node) TH_LOG("the table followed the task to node %d", node);
	for (i = 0; i < 512; i++)
		EXPECT_EQ((unsigned long)i + 1, p[i * 512]);
	EXPECT_NE(1, sink);
}

/*
 * A table that maps only pages whose placement says nothing about this
 * process (shared memory here) has no node to follow while the process runs
 * on two nodes at once: it must not follow whichever thread scanned last,
 * from one scan period to the next. Two threads, on nodes 0 and 1, read a
 * shared memfd mapping (written on node 0) with NUMA balancing on; its
 * table of PTEs stays on node 0 while tables are examined many times.
 * Before the fix it followed the thread that scanned (1 move in 20 s).
 */
static int spanning_stop;

static void *spanning_reader(void *arg)
{
	unsigned long *q = arg;
	unsigned long sink = 0, i;

	while (!__atomic_load_n(&spanning_stop, __ATOMIC_RELAXED))
		for (i = 0; i < SZ_2M / sizeof(*q); i += 512)
			sink += __atomic_load_n(&q[i], __ATOMIC_RELAXED);
	return (void *)sink;
}

TEST_F_TIMEOUT(pt_migration, shared_tables_stay_when_spanning, 120)
{
	int fd, i, node, last, changes = 0, samples = 0;
	long long scans = vmstat_event("pt_migrate_scan_pte");
	pthread_t threads[2];
	char *area, *m;

	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing", "0"));
	ASSERT_EQ(0, write_str("/proc/sys/vm/pt_migration", "1"));
	ASSERT_EQ(0, pin_node(0));
	fd = memfd_create("vmitosis-spanning", 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, SZ_2M));
	area = mmap(NULL, 2 * SZ_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	m = (char *)(((unsigned long)area + SZ_2M - 1) & ~(SZ_2M - 1));
	ASSERT_EQ(m, mmap(m, SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0));
	for (i = 0; i < 512; i++)
		m[i * 4096] = 1;
	last = pte_table_node(getpid(), (unsigned long)m);
	ASSERT_EQ(0, last);

	/* Threads take the CPUs of the thread that creates them. */
	ASSERT_EQ(0, pthread_create(&threads[0], NULL, spanning_reader, m));
	ASSERT_EQ(0, pin_node(1));
	ASSERT_EQ(0, pthread_create(&threads[1], NULL, spanning_reader, m));
	ASSERT_EQ(0, pin_node(0));
	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing", "1"));
	for (samples = 0; samples < 100; samples++) {
		usleep(200 * 1000);
		node = pte_table_node(getpid(), (unsigned long)m);
		if (node >= 0 && node != last) {
			changes++;
			last = node;
		}
	}
	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing", "0"));
	__atomic_store_n(&spanning_stop, 1, __ATOMIC_RELAXED);
	pthread_join(threads[0], NULL);
	pthread_join(threads[1], NULL);
	scans = vmstat_event("pt_migrate_scan_pte") - scans;
	TH_LOG("the shared table changed node %d times in 20 s; tables examined %lld times",
	       changes, scans);
	EXPECT_LE(10, scans);
	EXPECT_EQ(0, changes);
	munmap(m, SZ_2M);
	close(fd);
}

/*
 * move_pages(2) of one page examines the table of PTEs that maps it (and
 * the upper tables above it), not every table of the process: the work
 * grows with what moved, not with the process.
 */
TEST_F_TIMEOUT(pt_migration, move_pages_examines_what_moved, 60)
{
	size_t size = 64UL << 20, i;
	long long pte, pmd;
	int status, target = 1;
	char *m;
	void *page;

	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing", "0"));
	ASSERT_EQ(0, write_str("/proc/sys/vm/pt_migration", "1"));
	ASSERT_EQ(0, pin_node(0));
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, madvise(m, size, MADV_NOHUGEPAGE));
	for (i = 0; i < size; i += 4096)
		m[i] = 1;
	pte = vmstat_event("pt_migrate_scan_pte");
	pmd = vmstat_event("pt_migrate_scan_pmd");
	page = m + size / 2;
	ASSERT_EQ(0, syscall(SYS_move_pages, 0, 1, &page, &target, &status, MPOL_MF_MOVE));
	ASSERT_EQ(1, status);
	pte = vmstat_event("pt_migrate_scan_pte") - pte;
	pmd = vmstat_event("pt_migrate_scan_pmd") - pmd;
	TH_LOG("one page of %zu MiB moved: %lld tables of PTEs and %lld PMD tables examined",
	       size >> 20, pte, pmd);
	EXPECT_EQ(1, pte);
	EXPECT_LE(pmd, 2);	/* the look, and the move if one were due */
	EXPECT_EQ(0, pte_table_node(getpid(), (unsigned long)page));
	munmap(m, size);
}

/*
 * Stress: while this process moves its memory, and with it its page tables,
 * between nodes 0 and 1 as fast as it can, its threads fault memory in,
 * mprotect, munmap, mremap, split huge pages and fork. Every thread checks
 * its data; the kernel log must gain no warning.
 */
#define STRESS_SECONDS	8
#define STRESS_REGION	(8UL << 20)
#define STRESS_DATA	(16UL << 20)	/* checked by the main thread */

static int stress_stop;

static int fill_check(unsigned long *p, size_t size, unsigned long seed, int fill)
{
	size_t i;

	for (i = 0; i < size / sizeof(*p); i += 512) {
		if (fill)
			p[i] = seed + i;
		else if (p[i] != seed + i)
			return -1;
	}
	return 0;
}

static void *faulter(void *arg)
{
	long errors = 0;

	while (!__atomic_load_n(&stress_stop, __ATOMIC_RELAXED)) {
		unsigned long *p = mmap(NULL, STRESS_REGION, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return (void *)1L;
		fill_check(p, STRESS_REGION, 11, 1);
		errors += !!fill_check(p, STRESS_REGION, 11, 0);
		/* munmap half, then the rest: tables are freed under the mover */
		munmap(p, STRESS_REGION / 2);
		errors += !!fill_check(p + STRESS_REGION / 16, STRESS_REGION / 2,
				       11 + STRESS_REGION / 16, 0);
		munmap(p + STRESS_REGION / 16, STRESS_REGION / 2);
	}
	return (void *)errors;
}

static void *protector(void *arg)
{
	unsigned long *p = mmap(NULL, STRESS_REGION, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long seed = 0;
	long errors = 0;

	if (p == MAP_FAILED)
		return (void *)1L;
	while (!__atomic_load_n(&stress_stop, __ATOMIC_RELAXED)) {
		fill_check(p, STRESS_REGION, ++seed, 1);
		mprotect(p, STRESS_REGION, PROT_READ);
		errors += !!fill_check(p, STRESS_REGION, seed, 0);
		mprotect(p, STRESS_REGION, PROT_READ | PROT_WRITE);
	}
	munmap(p, STRESS_REGION);
	return (void *)errors;
}

static void *remapper(void *arg)
{
	unsigned long *p = mmap(NULL, STRESS_REGION, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long errors = 0;

	if (p == MAP_FAILED)
		return (void *)1L;
	fill_check(p, STRESS_REGION, 7, 1);
	while (!__atomic_load_n(&stress_stop, __ATOMIC_RELAXED)) {
		/* reserve a new place, then move the pages and their tables there */
		void *to = mmap(NULL, STRESS_REGION, PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *q;

		if (to == MAP_FAILED)
			return (void *)1L;
		q = mremap(p, STRESS_REGION, STRESS_REGION, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (q == MAP_FAILED)
			return (void *)1L;
		p = q;
		errors += !!fill_check(p, STRESS_REGION, 7, 0);
	}
	munmap(p, STRESS_REGION);
	return (void *)errors;
}

static void *splitter(void *arg)
{
	char *raw = mmap(NULL, STRESS_REGION + SZ_2M, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long *p;
	long errors = 0;
	size_t off;

	if (raw == MAP_FAILED)
		return (void *)1L;
	p = (unsigned long *)(((unsigned long)raw + SZ_2M - 1) & ~(SZ_2M - 1));
	while (!__atomic_load_n(&stress_stop, __ATOMIC_RELAXED)) {
		madvise(p, STRESS_REGION, MADV_HUGEPAGE);
		fill_check(p, STRESS_REGION, 3, 1);
		/* drop one 4K page per huge page: each is split */
		for (off = 0; off < STRESS_REGION; off += SZ_2M)
			madvise((char *)p + off + 4096, 4096, MADV_DONTNEED);
		for (off = 0; off < STRESS_REGION; off += SZ_2M)
			errors += p[(off + 8192) / sizeof(*p)] != 3 + (off + 8192) / sizeof(*p);
		madvise(p, STRESS_REGION, MADV_DONTNEED);
	}
	munmap(raw, STRESS_REGION + SZ_2M);
	return (void *)errors;
}

static void *forker(void *arg)
{
	unsigned long *p = mmap(NULL, STRESS_REGION, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long errors = 0;

	if (p == MAP_FAILED)
		return (void *)1L;
	fill_check(p, STRESS_REGION, 5, 1);
	while (!__atomic_load_n(&stress_stop, __ATOMIC_RELAXED)) {
		int status;
		pid_t pid = fork();

		if (!pid) {
			/* the child writes its copy: COW under a moving parent */
			int bad = fill_check(p, STRESS_REGION, 5, 0);

			fill_check(p, STRESS_REGION, 9, 1);
			_exit(bad || fill_check(p, STRESS_REGION, 9, 0) ? 2 : 0);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status))
			errors++;
		errors += !!fill_check(p, STRESS_REGION, 5, 0);
	}
	munmap(p, STRESS_REGION);
	return (void *)errors;
}

TEST_F_TIMEOUT(pt_migration, stress_with_mm_changes, 180)
{
	void *(*fn[])(void *) = { faulter, protector, remapper, splitter, forker };
	unsigned long n0 = 1UL << 0, n1 = 1UL << 1;
	pthread_t threads[ARRAY_SIZE(fn)];
	long long moved = vmstat_event("pt_migrate_pte");
	int warnings = kernel_log_warnings();
	long taint = kernel_taint();
	unsigned long *data;
	struct timespec t0, t;
	long moves = 0;
	unsigned int i;

	ASSERT_LE(0, warnings) TH_LOG("the kernel log cannot be read");
	ASSERT_LE(0, taint) TH_LOG("/proc/sys/kernel/tainted cannot be read");
	ASSERT_EQ(0, write_str("/proc/sys/vm/pt_migration", "1"));
	ASSERT_EQ(0, write_str("/proc/sys/kernel/numa_balancing", "0"));
	data = mmap(NULL, STRESS_DATA, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, data);
	fill_check(data, STRESS_DATA, 1, 1);
	__atomic_store_n(&stress_stop, 0, __ATOMIC_RELAXED);
	for (i = 0; i < ARRAY_SIZE(fn); i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, fn[i], NULL));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (syscall(SYS_migrate_pages, 0, 64, &n0, &n1) >= 0 &&
		    syscall(SYS_migrate_pages, 0, 64, &n1, &n0) >= 0)
			moves += 2;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < STRESS_SECONDS);
	__atomic_store_n(&stress_stop, 1, __ATOMIC_RELAXED);

	for (i = 0; i < ARRAY_SIZE(fn); i++) {
		void *errors;

		ASSERT_EQ(0, pthread_join(threads[i], &errors));
		EXPECT_EQ(0, (long)errors) TH_LOG("thread %u: %ld errors", i, (long)errors);
	}
	EXPECT_EQ(0, fill_check(data, STRESS_DATA, 1, 0));
	TH_LOG("%ld migrate_pages calls, %lld tables of PTEs moved", moves,
	       vmstat_event("pt_migrate_pte") - moved);
	EXPECT_GT(vmstat_event("pt_migrate_pte") - moved, 0);
	EXPECT_EQ(warnings, kernel_log_warnings());
	EXPECT_EQ(taint, kernel_taint());
	munmap(data, STRESS_DATA);
}

/* Bad sysctl values are refused and change nothing. */
TEST_F(pt_migration, sysctl_rejects_bad_values)
{
	char buf[16];

	ASSERT_EQ(0, write_str("/proc/sys/vm/pt_migration", "0"));
	EXPECT_NE(0, write_str("/proc/sys/vm/pt_migration", "2"));
	EXPECT_NE(0, write_str("/proc/sys/vm/pt_migration", "-1"));
	EXPECT_NE(0, write_str("/proc/sys/vm/pt_migration_batch", "0"));
	ASSERT_LT(0, read_file("/proc/sys/vm/pt_migration", buf, sizeof(buf)));
	EXPECT_EQ('0', buf[0]);
}

TEST_HARNESS_MAIN
