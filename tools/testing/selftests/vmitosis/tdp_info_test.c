// SPDX-License-Identifier: GPL-2.0
/*
 * The TDP placement files of vMitosis (Documentation/vmitosis/pt-info.rst):
 * tdp_pt_nodes and tdp_pt_dump in a VM's debugfs directory report the node of
 * every TDP table page and of the memory behind every leaf, and stay safe to
 * read while the VM faults and the host zaps its mappings.
 */
#include <pthread.h>
#include <time.h>

#include "../kselftest_harness.h"
#include "vmitosis_util.h"

#define MAX_LEVEL	5
#define TABLES		"root 0 tables level "

struct tdp_dump {
	int root_level, root_node, nr_roots, nr_tables, nr_leaves;
	/* table[level][i]: first GFN and node of the level-@level tables */
	unsigned long long table_gfn[MAX_LEVEL + 1][256];
	int table_node[MAX_LEVEL + 1][256], nr_table[MAX_LEVEL + 1];
	unsigned long long leaf_gfn[1024];
	int leaf_level[1024], leaf_node[1024];
};

/* Parse tdp_pt_dump; 0 when every line is a known record and the first root comes first. */
static int parse_dump(const char *dir, struct tdp_dump *d)
{
	char path[128], line[256];
	FILE *f;
	int ret = 0;

	memset(d, 0, sizeof(*d));
	d->root_level = -1;
	snprintf(path, sizeof(path), "%s/tdp_pt_dump", dir);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long gfn;
		int a, b, c, e;

		if (line[0] == '#')
			continue;
		if (sscanf(line, "root %d %d %d %d", &a, &b, &c, &e) == 4) {
			if (!d->nr_roots++) {
				d->root_level = b;
				d->root_node = c;
			}
		} else if (sscanf(line, "table %d %llx %d", &a, &gfn, &b) == 3) {
			if (!d->nr_roots || a < 1 || a > MAX_LEVEL) {
				ret = -EINVAL;
				break;
			}
			d->nr_tables++;
			if (d->nr_roots == 1 && d->nr_table[a] < 256) {
				d->table_gfn[a][d->nr_table[a]] = gfn;
				d->table_node[a][d->nr_table[a]++] = b;
			}
		} else if (sscanf(line, "leaf %llx %d %d", &gfn, &a, &b) == 3) {
			if (!d->nr_roots) {
				ret = -EINVAL;
				break;
			}
			if (d->nr_roots == 1 && d->nr_leaves < 1024) {
				d->leaf_gfn[d->nr_leaves] = gfn;
				d->leaf_level[d->nr_leaves] = a;
				d->leaf_node[d->nr_leaves] = b;
			}
			d->nr_leaves++;
		} else {
			ret = -EINVAL;
			break;
		}
	}
	fclose(f);
	return ret;
}

static int find_leaf(struct tdp_dump *d, unsigned long long gfn)
{
	int i;

	for (i = 0; i < d->nr_leaves && i < 1024; i++)
		if (d->leaf_gfn[i] == gfn)
			return i;
	return -1;
}

static int find_table(struct tdp_dump *d, int level, unsigned long long gfn)
{
	int i;

	for (i = 0; i < d->nr_table[level]; i++)
		if (d->table_gfn[level][i] == gfn)
			return i;
	return -1;
}

/*
 * A vCPU thread bound to one node faults the guest in: every table page, the
 * root included, comes from that node, and the dump names, for every page the
 * guest touched, a leaf on the node of the page that backs it and a table at
 * every level on the way.
 */
TEST(dump_shows_tables_and_leaves_on_their_nodes)
{
	int node = last_node(), i, level, r;
	char dir[96], path[128], buf[8192], *p;
	struct tdp_dump *d;
	struct rm_vm v;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "/dev/kvm: %s", strerror(errno));
	ASSERT_EQ(0, bind_node(node));
	ASSERT_EQ(0, rm_vm_create(&v));
	r = rm_vm_run(&v);
	ASSERT_EQ(KVM_EXIT_HLT, r);
	rm_vm_debugfs(&v, dir, sizeof(dir));

	d = malloc(sizeof(*d));
	ASSERT_NE(NULL, d);
	ASSERT_EQ(0, parse_dump(dir, d));
	ASSERT_EQ(1, d->nr_roots);
	ASSERT_GE(d->root_level, 4);
	EXPECT_EQ(node, d->root_node);

	for (i = -1; i < NR_PAGES; i++) {
		unsigned long long gfn = i < 0 ? 0 : FIRST_PAGE / 4096 + i;
		int l = find_leaf(d, gfn);

		ASSERT_GE(l, 0) TH_LOG("no leaf for gfn %#llx", gfn);
		EXPECT_EQ(1, d->leaf_level[l]);
		EXPECT_EQ(page_node(v.mem + gfn * 4096), d->leaf_node[l]) TH_LOG("gfn %#llx", gfn);
		for (level = 1; level < d->root_level; level++) {
			unsigned long long first = gfn & ~((1ULL << (9 * level)) - 1);
			int t = find_table(d, level, first);

			ASSERT_GE(t, 0) TH_LOG("no level-%d table for gfn %#llx", level, gfn);
			EXPECT_EQ(node, d->table_node[level][t]);
		}
	}

	/* tdp_pt_nodes agrees: one root, all its tables on @node, used by vCPU 0. */
	snprintf(path, sizeof(path), "%s/tdp_pt_nodes", dir);
	ASSERT_GT(read_file(path, buf, sizeof(buf)), 0);
	snprintf(path, sizeof(path), "root 0 level %d node %d ", d->root_level, node);
	EXPECT_NE(NULL, strstr(buf, path)) TH_LOG("%s", buf);
	EXPECT_EQ(NULL, strstr(buf, "root 1 ")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "vcpu 0 root 0\n")) TH_LOG("%s", buf);
	for (p = strstr(buf, TABLES); p; p = strstr(p + 1, TABLES)) {
		char *q = strchr(p, ':') + 1, *end;
		long count;
		int n;

		for (n = 0; ; n++) {
			count = strtol(q, &end, 10);
			if (end == q)
				break;
			/* tables on @node only, and some there */
			EXPECT_EQ(n == node, count > 0) TH_LOG("%.40s", p);
			q = end;
		}
	}
	free(d);
	rm_vm_destroy(&v);
}

struct stress {
	struct rm_vm *v;
	int stop;		/* __atomic */
	int runs, zaps, bad;
};

static void *run_vcpu(void *arg)
{
	struct stress *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		if (rm_vm_run(s->v) != KVM_EXIT_HLT)
			s->bad++;
		s->runs++;
	}
	return NULL;
}

static void *zap(void *arg)
{
	struct stress *s = arg;

	/* MMU-notifier invalidations: KVM zaps the leaves and may free tables. */
	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		if (madvise(s->v->mem + FIRST_PAGE, NR_PAGES * 4096, MADV_DONTNEED))
			s->bad++;
		s->zaps++;
		usleep(1000);
	}
	return NULL;
}

/*
 * Reading both files while a vCPU faults pages in and the host zaps them is
 * safe (no crash, no kernel warning: checked by the runner) and every read is
 * a well-formed dump; the guest's data is intact afterwards.
 */
TEST(dump_is_safe_during_faults_and_zaps)
{
	struct stress s = { 0 };
	struct timespec t0, t;
	char dir[96], path[128], buf[8192];
	struct tdp_dump *d;
	pthread_t a, b;
	struct rm_vm v;
	int reads = 0, i;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "/dev/kvm: %s", strerror(errno));
	ASSERT_EQ(0, rm_vm_create(&v));
	ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&v));
	rm_vm_debugfs(&v, dir, sizeof(dir));
	d = malloc(sizeof(*d));
	ASSERT_NE(NULL, d);

	s.v = &v;
	ASSERT_EQ(0, pthread_create(&a, NULL, run_vcpu, &s));
	ASSERT_EQ(0, pthread_create(&b, NULL, zap, &s));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		EXPECT_EQ(0, parse_dump(dir, d));
		snprintf(path, sizeof(path), "%s/tdp_pt_nodes", dir);
		EXPECT_GT(read_file(path, buf, sizeof(buf)), 0);
		reads++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 5);
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	TH_LOG("%d reads, %d guest runs, %d zaps", reads, s.runs, s.zaps);
	EXPECT_EQ(0, s.bad);
	EXPECT_GT(s.runs, 0);
	EXPECT_GT(s.zaps, 0);

	ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&v));
	for (i = 0; i < NR_PAGES; i++)
		ASSERT_EQ(0x5a, v.mem[FIRST_PAGE + i * 4096]) TH_LOG("page %d", i);
	free(d);
	rm_vm_destroy(&v);
}

TEST_HARNESS_MAIN
