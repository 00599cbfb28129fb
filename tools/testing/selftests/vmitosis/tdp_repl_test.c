// SPDX-License-Identifier: GPL-2.0
/*
 * ePT replication (Documentation/vmitosis/ept-replication.rst): a VM with
 * KVM_CAP_X86_TDP_REPLICATION keeps one copy of every TDP table on each node
 * of its mask, each on its node, every copy translating as the primary does;
 * each vCPU walks the copy of the node its thread runs on. The VM's tdp_repl
 * debugfs file checks every entry of every copy against the primary under
 * the locks that writers hold, and these tests assert on what it finds after
 * faults, host invalidations, dirty logging, aging and vCPU moves.
 */
#include <pthread.h>

#include "../kselftest_harness.h"
#include "vmitosis_util.h"

#define BIG_GPA		0x100000000ULL	/* 4 GiB */
#define BIG_SIZE	(128UL << 20)	/* 4 KiB leaves: 64 leaf tables */
#define BALANCING	"/proc/sys/kernel/numa_balancing"
#define MAX_VCPUS	8

struct repl {
	int enabled, home, nr_vcpus;
	unsigned long long nodes;
	long roots, tables, leaves, misplaced, fallback, mismatch, alloc_failed;
	long copies[MAX_NODES], copy_leaves[MAX_NODES];
	int vcpu_node[MAX_VCPUS], vcpu_walks[MAX_VCPUS];
};

static int parse_row(const char *line, const char *key, long *v)
{
	const char *p = line + strlen(key);
	int n = 0;
	char *end;

	if (strncmp(line, key, strlen(key)))
		return -1;
	for (;;) {
		long x = strtol(p, &end, 10);

		if (end == p || n == MAX_NODES)
			break;
		v[n++] = x;
		p = end;
	}
	return n;
}

/* Read and parse the VM's tdp_repl file; 0, or -1 on a line it does not know. */
static int read_repl(const char *dir, struct repl *r)
{
	char path[128], line[1024];
	int id, a, b, ret = 0;
	FILE *f;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/tdp_repl", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' ||
		    sscanf(line, "enabled %d", &r->enabled) == 1 ||
		    sscanf(line, "nodes %llx", &r->nodes) == 1 ||
		    sscanf(line, "home %d", &r->home) == 1 ||
		    sscanf(line, "roots %ld", &r->roots) == 1 ||
		    sscanf(line, "tables %ld", &r->tables) == 1 ||
		    sscanf(line, "leaves %ld", &r->leaves) == 1 ||
		    sscanf(line, "misplaced %ld", &r->misplaced) == 1 ||
		    sscanf(line, "fallback %ld", &r->fallback) == 1 ||
		    sscanf(line, "mismatch %ld", &r->mismatch) == 1 ||
		    sscanf(line, "alloc_failed %ld", &r->alloc_failed) == 1 ||
		    !strncmp(line, "fail_every ", 11))
			continue;
		if (sscanf(line, "vcpu %d node %d walks %d", &id, &a, &b) == 3) {
			if (id >= 0 && id < MAX_VCPUS) {
				r->vcpu_node[id] = a;
				r->vcpu_walks[id] = b;
				if (id >= r->nr_vcpus)
					r->nr_vcpus = id + 1;
			}
			continue;
		}
		if (parse_row(line, "copies", r->copies) >= 0)
			continue;
		if (parse_row(line, "copy_leaves", r->copy_leaves) >= 0)
			continue;
		ret = -1;
	}
	fclose(f);
	return ret;
}

/* The nodes with CPUs: those a VM may keep copies on. */
static int cpu_nodes(unsigned char *set)
{
	char buf[256];

	memset(set, 0, MAX_NODES);
	if (read_file("/sys/devices/system/node/has_cpu", buf, sizeof(buf)) <= 0)
		return -1;
	return parse_list(buf, set, MAX_NODES);
}

static int enable_repl(int vm, unsigned long long nodes, unsigned long long flags)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_X86_TDP_REPLICATION, .args = { nodes, flags },
	};

	return ioctl(vm, KVM_ENABLE_CAP, &cap) ? -errno : 0;
}

/* Every copy present, on its node, identical to the primary: the invariant. */
static void expect_coherent(struct __test_metadata *_metadata, struct repl *r,
			    const unsigned char *nodes, const char *when)
{
	int n;

	EXPECT_EQ(1, r->enabled);
	EXPECT_EQ(0, r->mismatch) TH_LOG("%s: entries of copies differ from the primary", when);
	EXPECT_EQ(0, r->misplaced) TH_LOG("%s: copies off their node", when);
	EXPECT_EQ(0, r->fallback) TH_LOG("%s: copies link to primary tables", when);
	for (n = 0; n < MAX_NODES; n++) {
		if (!nodes[n])
			continue;
		EXPECT_EQ(r->tables, r->copies[n]) TH_LOG("%s: tables on node %d", when, n);
		EXPECT_EQ(r->leaves, r->copy_leaves[n]) TH_LOG("%s: leaves of node %d", when, n);
	}
}

struct vcpu {
	int fd, node, ret, run_size;
	struct kvm_run *run;
	unsigned long long gpa, size;	/* to pre-fault first, if size */
};

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;

	c->ret = -1;
	if (pin_node(c->node))
		return NULL;
	while (c->size) {
		struct kvm_pre_fault_memory pre = { .gpa = c->gpa, .size = c->size };

		if (ioctl(c->fd, KVM_PRE_FAULT_MEMORY, &pre) && errno != EINTR && errno != EAGAIN)
			return NULL;
		c->gpa = pre.gpa;
		c->size = pre.size;
	}
	c->ret = rm_vcpu_run(c->fd, c->run);
	return NULL;
}

/* Run every vCPU in a thread on its node, one after the other. */
static void run_all(struct __test_metadata *_metadata, struct vcpu *c, int nr)
{
	pthread_t t;
	int i;

	for (i = 0; i < nr; i++) {
		ASSERT_EQ(0, pthread_create(&t, NULL, vcpu_thread, &c[i]));
		pthread_join(t, NULL);
		ASSERT_EQ(KVM_EXIT_HLT, c[i].ret) TH_LOG("vCPU %d on node %d", i, c[i].node);
	}
}

FIXTURE(repl) {
	struct rm_vm v;
	unsigned char nodes[MAX_NODES];
	unsigned long long mask;
	int nr_nodes;
	struct vcpu c[MAX_VCPUS];
	int nr_vcpus;
	unsigned char *big;
	char dir[96], saved_balancing[8];
	long sec0[MAX_NODES];
};

FIXTURE_SETUP(repl)
{
	int n, r;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "/dev/kvm: %s", strerror(errno));
	self->v.vcpu = -1;
	self->nr_nodes = cpu_nodes(self->nodes);
	if (self->nr_nodes < 2)
		SKIP(return, "needs two NUMA nodes with CPUs");
	fold_vmstat();
	for (n = 0; n < MAX_NODES; n++)
		if (self->nodes[n]) {
			self->mask |= 1ULL << n;
			self->sec0[n] = node_meminfo_kb(n, "SecPageTables");
		}
	ASSERT_EQ(0, syscall(SYS_set_mempolicy, MPOL_DEFAULT, NULL, 0));
	ASSERT_EQ(0, rm_vm_open(&self->v, -1));
	r = ioctl(self->v.kvm, KVM_CHECK_EXTENSION, KVM_CAP_X86_TDP_REPLICATION);
	if (r <= 0)
		SKIP(return, "no KVM_CAP_X86_TDP_REPLICATION (CONFIG_KVM_TDP_REPLICATION)");
	ASSERT_LE(last_node() + 1, r);
	ASSERT_EQ(0, enable_repl(self->v.vm, self->mask, 0));
	/* No NUMA-balancing invalidations behind the test's back. */
	if (read_file(BALANCING, self->saved_balancing, sizeof(self->saved_balancing)) > 0)
		ASSERT_EQ(0, write_str(BALANCING, "0"));
	rm_vm_debugfs(&self->v, self->dir, sizeof(self->dir));

	/* 128 MiB at 4 GiB, in 4 KiB pages, pre-faulted by the vCPUs in parts. */
	self->big = mmap(NULL, BIG_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->big);
	ASSERT_EQ(0, madvise(self->big, BIG_SIZE, MADV_NOHUGEPAGE));
	memset(self->big, 0x33, BIG_SIZE);
	{
		struct kvm_userspace_memory_region region = {
			.slot = 1, .guest_phys_addr = BIG_GPA, .memory_size = BIG_SIZE,
			.userspace_addr = (unsigned long)self->big,
		};

		ASSERT_EQ(0, ioctl(self->v.vm, KVM_SET_USER_MEMORY_REGION, &region));
	}
	/* One vCPU per node, vCPU 0 on the first: its root is the primary, on its node. */
	for (n = 0; n < MAX_NODES && self->nr_vcpus < MAX_VCPUS; n++) {
		struct vcpu *c = &self->c[self->nr_vcpus];

		if (!self->nodes[n])
			continue;
		c->node = n;
		c->fd = rm_vm_add_vcpu(&self->v, self->nr_vcpus, &c->run);
		ASSERT_LE(0, c->fd);
		c->run_size = ioctl(self->v.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
		self->nr_vcpus++;
	}
	for (n = 0; n < self->nr_vcpus; n++) {
		self->c[n].gpa = BIG_GPA + n * (BIG_SIZE / self->nr_vcpus);
		self->c[n].size = BIG_SIZE / self->nr_vcpus;
	}
}

/* Close the vCPUs: their fds and kvm_run mappings, which hold the VM. */
static void close_vcpus(struct vcpu *c, int *nr)
{
	int i;

	for (i = 0; i < *nr; i++) {
		munmap(c[i].run, c[i].run_size);
		close(c[i].fd);
	}
	*nr = 0;
}

FIXTURE_TEARDOWN(repl)
{
	close_vcpus(self->c, &self->nr_vcpus);
	if (self->v.vm > 0)
		rm_vm_destroy(&self->v);
	if (self->big && self->big != MAP_FAILED)
		munmap(self->big, BIG_SIZE);
	if (self->saved_balancing[0])
		write_str(BALANCING, self->saved_balancing);
}

/* After the VM is gone, every node's SecPageTables goes back to @sec0. */
static void expect_freed(struct __test_metadata *_metadata, const unsigned char *nodes,
			 const long *sec0)
{
	int n, tries;

	/* Tables and copies are freed after an RCU grace period. */
	for (n = 0; n < MAX_NODES; n++) {
		if (!nodes[n])
			continue;
		for (tries = 0; tries < 50; tries++) {
			fold_vmstat();
			if (node_meminfo_kb(n, "SecPageTables") <= sec0[n])
				break;
			usleep(100000);
		}
		EXPECT_GE(sec0[n], node_meminfo_kb(n, "SecPageTables")) {
			TH_LOG("node %d", n);
		}
	}
}

/*
 * Faults from every node: every table has a copy on every node of the mask,
 * on that node, holding the same leaves; each vCPU walks its node's copy;
 * the copies are SecPageTables of their nodes and go away with the VM.
 */
TEST_F(repl, copies_on_every_node)
{
	struct repl *r = malloc(sizeof(*r));
	int i, n;

	ASSERT_NE(NULL, r);
	run_all(_metadata, self->c, self->nr_vcpus);
	ASSERT_EQ(0, read_repl(self->dir, r));
	EXPECT_EQ(self->mask, r->nodes);
	EXPECT_EQ(self->c[0].node, r->home);
	EXPECT_EQ(1, r->roots);
	/* 64 leaf tables for the big slot, more above them and for the low MiB */
	EXPECT_LT(BIG_SIZE >> 21, r->tables);
	EXPECT_LE((long)(BIG_SIZE >> 12) + NR_PAGES, r->leaves);
	expect_coherent(_metadata, r, self->nodes, "after faults");
	for (i = 0; i < self->nr_vcpus; i++) {
		EXPECT_EQ(self->c[i].node, r->vcpu_node[i]) TH_LOG("vCPU %d", i);
		EXPECT_EQ(self->c[i].node, r->vcpu_walks[i]) TH_LOG("vCPU %d", i);
	}
	/*
	 * Each node holds a page of every table: its copy, or the primary on
	 * home; roots are not SecPageTables (nor are the primary's, upstream).
	 */
	fold_vmstat();
	for (n = 0; n < MAX_NODES; n++) {
		if (!self->nodes[n])
			continue;
		long want = self->sec0[n] + (r->tables - r->roots) * 4;

		EXPECT_LE(want, node_meminfo_kb(n, "SecPageTables")) {
			TH_LOG("node %d", n);
		}
	}
	for (i = 0; i < NR_PAGES; i++)
		ASSERT_EQ(0x5a, self->v.mem[FIRST_PAGE + i * 4096]) TH_LOG("page %d", i);
	TH_LOG("%ld tables, %ld leaves, a copy of each on %d nodes", r->tables, r->leaves,
	       self->nr_nodes);

	/* The VM goes, its copies with it. */
	close_vcpus(self->c, &self->nr_vcpus);
	rm_vm_destroy(&self->v);
	self->v.vm = 0;
	expect_freed(_metadata, self->nodes, self->sec0);
	free(r);
}

/*
 * The host unmaps the big slot (MMU-notifier invalidation): once madvise()
 * returns, no copy maps any of it; the guest runs on, and faults in again.
 */
TEST_F(repl, invalidation_reaches_every_copy)
{
	struct repl *r = malloc(sizeof(*r));
	long before;
	int i;

	ASSERT_NE(NULL, r);
	run_all(_metadata, self->c, self->nr_vcpus);
	ASSERT_EQ(0, read_repl(self->dir, r));
	expect_coherent(_metadata, r, self->nodes, "after faults");
	before = r->leaves;

	ASSERT_EQ(0, madvise(self->big, BIG_SIZE, MADV_DONTNEED));
	ASSERT_EQ(0, read_repl(self->dir, r));
	EXPECT_GE(before - (long)(BIG_SIZE >> 12), r->leaves);
	expect_coherent(_metadata, r, self->nodes, "after MADV_DONTNEED");

	/* Fault it all in again, from other nodes this time. */
	for (i = 0; i < self->nr_vcpus; i++) {
		self->c[i].gpa = BIG_GPA + ((i + 1) % self->nr_vcpus) * (BIG_SIZE / self->nr_vcpus);
		self->c[i].size = BIG_SIZE / self->nr_vcpus;
	}
	run_all(_metadata, self->c, self->nr_vcpus);
	ASSERT_EQ(0, read_repl(self->dir, r));
	EXPECT_EQ(before, r->leaves);
	expect_coherent(_metadata, r, self->nodes, "after faulting in again");
	for (i = 0; i < NR_PAGES; i++)
		ASSERT_EQ(0x5a, self->v.mem[FIRST_PAGE + i * 4096]) TH_LOG("page %d", i);
	free(r);
}

/*
 * Dirty logging write-protects every copy: a guest write through any node's
 * copy after KVM_GET_DIRTY_LOG faults and is logged. A copy left writable
 * would let the write through unlogged, and live migration lose the page.
 */
TEST_F(repl, dirty_log_sees_writes_through_every_copy)
{
	unsigned long bitmap[GUEST_MEM / 4096 / 64];
	struct kvm_userspace_memory_region region = {
		.slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
		.memory_size = GUEST_MEM, .userspace_addr = 0,
	};
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = bitmap };
	struct repl *r = malloc(sizeof(*r));
	int i, p;

	ASSERT_NE(NULL, r);
	run_all(_metadata, self->c, self->nr_vcpus);
	region.userspace_addr = (unsigned long)self->v.mem;
	ASSERT_EQ(0, ioctl(self->v.vm, KVM_SET_USER_MEMORY_REGION, &region));

	for (i = 0; i < self->nr_vcpus; i++)
		self->c[i].size = 0;
	for (i = 0; i < self->nr_vcpus; i++) {
		/* Every vCPU first maps the pages writable in its copy... */
		ASSERT_EQ(0, ioctl(self->v.vm, KVM_GET_DIRTY_LOG, &log));
		run_all(_metadata, &self->c[i], 1);
		/* ...then the log is harvested, and the pages write-protected. */
		ASSERT_EQ(0, ioctl(self->v.vm, KVM_GET_DIRTY_LOG, &log));
		ASSERT_EQ(0, read_repl(self->dir, r));
		expect_coherent(_metadata, r, self->nodes, "after KVM_GET_DIRTY_LOG");
		/* Another node's vCPU writes: each page it writes is in the log. */
		run_all(_metadata, &self->c[(i + 1) % self->nr_vcpus], 1);
		ASSERT_EQ(0, ioctl(self->v.vm, KVM_GET_DIRTY_LOG, &log));
		for (p = 0; p < NR_PAGES; p++) {
			unsigned long gfn = FIRST_PAGE / 4096 + p;

			ASSERT_TRUE(bitmap[gfn / 64] & (1UL << (gfn % 64)))
				TH_LOG("round %d: write to gfn %#lx not logged", i, gfn);
		}
	}
	free(r);
}

/*
 * A vCPU whose thread moves to another node walks that node's copy from its
 * next entry on, with no new root: the copies translate alike.
 */
TEST_F(repl, vcpu_walks_the_copy_of_its_node)
{
	struct repl *r = malloc(sizeof(*r));
	long tables;
	int i;

	ASSERT_NE(NULL, r);
	run_all(_metadata, self->c, 1);
	ASSERT_EQ(0, read_repl(self->dir, r));
	EXPECT_EQ(self->c[0].node, r->vcpu_walks[0]);
	tables = r->tables;
	for (i = 1; i < self->nr_vcpus; i++) {
		struct vcpu c = self->c[0];

		c.node = self->c[i].node;
		run_all(_metadata, &c, 1);
		ASSERT_EQ(0, read_repl(self->dir, r));
		EXPECT_EQ(c.node, r->vcpu_node[0]);
		EXPECT_EQ(c.node, r->vcpu_walks[0]);
		EXPECT_EQ(1, r->roots) TH_LOG("a new root for a move to node %d", c.node);
		EXPECT_EQ(tables, r->tables);
		expect_coherent(_metadata, r, self->nodes, "after a move");
	}
	free(r);
}

/*
 * Memslot changes: the big slot moved to another GPA (KVM deletes and
 * recreates it, dropping the roots that mapped it) and then deleted. After
 * each, the copies agree with the primary and none maps the old range; the
 * moved slot faults in again from other nodes, a copy of every new table on
 * every node.
 */
TEST_F(repl, memslot_move_and_delete_reach_every_copy)
{
	struct kvm_userspace_memory_region region = {
		.slot = 1, .guest_phys_addr = 2 * BIG_GPA, .memory_size = BIG_SIZE,
		.userspace_addr = (unsigned long)self->big,
	};
	struct repl *r = malloc(sizeof(*r));
	long others;
	int i;

	ASSERT_NE(NULL, r);
	run_all(_metadata, self->c, self->nr_vcpus);
	ASSERT_EQ(0, read_repl(self->dir, r));
	expect_coherent(_metadata, r, self->nodes, "after faults");
	others = r->leaves - (long)(BIG_SIZE >> 12);

	/* Move: 4 GiB -> 8 GiB. */
	ASSERT_EQ(0, ioctl(self->v.vm, KVM_SET_USER_MEMORY_REGION, &region));
	for (i = 0; i < self->nr_vcpus; i++) {
		self->c[i].gpa = 2 * BIG_GPA + ((i + 1) % self->nr_vcpus) *
				 (BIG_SIZE / self->nr_vcpus);
		self->c[i].size = BIG_SIZE / self->nr_vcpus;
	}
	run_all(_metadata, self->c, self->nr_vcpus);
	ASSERT_EQ(0, read_repl(self->dir, r));
	expect_coherent(_metadata, r, self->nodes, "after the move");
	EXPECT_GE(others + (long)(BIG_SIZE >> 12), r->leaves) TH_LOG("the old range still mapped");
	EXPECT_LE((long)(BIG_SIZE >> 12), r->leaves);

	/* Delete. */
	region.memory_size = 0;
	ASSERT_EQ(0, ioctl(self->v.vm, KVM_SET_USER_MEMORY_REGION, &region));
	run_all(_metadata, self->c, 1);
	ASSERT_EQ(0, read_repl(self->dir, r));
	expect_coherent(_metadata, r, self->nodes, "after the delete");
	EXPECT_GE(others, r->leaves);
	for (i = 0; i < NR_PAGES; i++)
		ASSERT_EQ(0x5a, self->v.mem[FIRST_PAGE + i * 4096]) TH_LOG("page %d", i);
	free(r);
}

static int stress_stop;	/* __atomic: read by the vCPU threads */

/* Fault the vCPU's part of the big slot in, over and over, until told to stop. */
static void *fault_loop(void *arg)
{
	struct vcpu *c = arg;
	long passes = 0;

	c->ret = -1;
	if (pin_node(c->node))
		return NULL;
	while (!__atomic_load_n(&stress_stop, __ATOMIC_RELAXED)) {
		struct kvm_pre_fault_memory pre = { .gpa = c->gpa, .size = c->size };

		while (pre.size && !__atomic_load_n(&stress_stop, __ATOMIC_RELAXED))
			if (ioctl(c->fd, KVM_PRE_FAULT_MEMORY, &pre) && errno != EINTR &&
			    errno != EAGAIN)
				return NULL;
		passes++;
	}
	c->ret = passes;
	return NULL;
}

/*
 * vCPUs on every node fault in the big slot at once (shared writers of the
 * same tables, serialized per table by the fan-out lock) while the host
 * unmaps 2 MiB ranges of it (exclusive zaps) and the VM's tdp_repl check
 * runs: for 5 s. Then no copy differs from the primary, and once the host
 * has unmapped all of it, no copy maps any of it.
 */
TEST_F(repl, concurrent_faults_and_invalidations_stay_coherent)
{
	struct repl *r = malloc(sizeof(*r));
	pthread_t t[MAX_VCPUS];
	unsigned int seed = 1;
	long before, zaps = 0;
	time_t end;
	int i;

	ASSERT_NE(NULL, r);
	run_all(_metadata, self->c, self->nr_vcpus);
	ASSERT_EQ(0, read_repl(self->dir, r));
	before = r->leaves - (long)(BIG_SIZE >> 12);
	/* Every vCPU over the whole slot: the same tables from every node. */
	for (i = 0; i < self->nr_vcpus; i++) {
		self->c[i].gpa = BIG_GPA;
		self->c[i].size = BIG_SIZE;
	}
	__atomic_store_n(&stress_stop, 0, __ATOMIC_RELAXED);
	for (i = 0; i < self->nr_vcpus; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, fault_loop, &self->c[i]));
	for (end = time(NULL) + 5; time(NULL) < end; zaps++) {
		size_t off = (rand_r(&seed) % (BIG_SIZE >> 21)) << 21;

		EXPECT_EQ(0, madvise(self->big + off, 2UL << 20, MADV_DONTNEED));
		if (!(zaps % 16)) {
			ASSERT_EQ(0, read_repl(self->dir, r));
			EXPECT_EQ(0, r->mismatch) TH_LOG("during the stress, %ld zaps", zaps);
		}
	}
	__atomic_store_n(&stress_stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < self->nr_vcpus; i++) {
		pthread_join(t[i], NULL);
		EXPECT_LT(0, self->c[i].ret) TH_LOG("vCPU %d on node %d", i, self->c[i].node);
	}
	ASSERT_EQ(0, read_repl(self->dir, r));
	expect_coherent(_metadata, r, self->nodes, "after the stress");

	ASSERT_EQ(0, madvise(self->big, BIG_SIZE, MADV_DONTNEED));
	ASSERT_EQ(0, read_repl(self->dir, r));
	EXPECT_GE(before, r->leaves);
	expect_coherent(_metadata, r, self->nodes, "after unmapping it all");
	for (i = 0; i < NR_PAGES; i++)
		ASSERT_EQ(0x5a, self->v.mem[FIRST_PAGE + i * 4096]) TH_LOG("page %d", i);
	TH_LOG("%ld zaps of 2 MiB; fault passes per vCPU: %d %d %d %d", zaps, self->c[0].ret,
	       self->c[1].ret, self->nr_vcpus > 2 ? self->c[2].ret : 0,
	       self->nr_vcpus > 3 ? self->c[3].ret : 0);
	free(r);
}

#define PAGE_IDLE	"/sys/kernel/mm/page_idle/bitmap"

/* The host PFNs of the guest pages that guest_code writes, from pagemap; 0 or -1. */
static int guest_pfns(unsigned char *mem, unsigned long long *pfn)
{
	int fd = open("/proc/self/pagemap", O_RDONLY), i, r = 0;

	if (fd < 0)
		return -1;
	for (i = 0; i < NR_PAGES && !r; i++) {
		unsigned long long e;
		off_t off = ((unsigned long)(mem + FIRST_PAGE) / 4096 + i) * 8;

		if (pread(fd, &e, 8, off) != 8 || !(e & (1ULL << 63)) || !(e & ((1ULL << 55) - 1)))
			r = -1;
		pfn[i] = e & ((1ULL << 55) - 1);
	}
	close(fd);
	return r;
}

/*
 * Mark the pages idle through page_idle (which clears the young bit of
 * every mapping, KVM's through the MMU notifier's clear_young), or count
 * those of them still idle (reading tests young the same way). -1 on error.
 */
static int page_idle(const unsigned long long *pfn, int set)
{
	int fd = open(PAGE_IDLE, O_RDWR), i, idle = 0;

	if (fd < 0)
		return -1;
	for (i = 0; i < NR_PAGES; i++) {
		unsigned long long word = 1ULL << (pfn[i] % 64);
		off_t off = pfn[i] / 64 * 8;

		if (set) {
			if (pwrite(fd, &word, 8, off) != 8)
				idle = -1;
		} else {
			unsigned long long got;

			if (pread(fd, &got, 8, off) != 8)
				idle = -1;
			else if (idle >= 0 && (got & word))
				idle++;
		}
	}
	close(fd);
	return idle;
}

/*
 * Aging: the guest's accesses through any node's copy make its pages young
 * (KVM ORs the Accessed bits of the copies), and making them old clears
 * every copy: once page_idle has marked the pages idle, none reads young
 * until a vCPU, on whatever node, touches them again.
 */
TEST_F(repl, aging_sees_accesses_through_every_copy)
{
	unsigned long long *pfn = calloc(NR_PAGES, sizeof(*pfn));
	int i;

	ASSERT_NE(NULL, pfn);
	if (access(PAGE_IDLE, R_OK | W_OK))
		SKIP(return, "no %s (CONFIG_IDLE_PAGE_TRACKING)", PAGE_IDLE);
	run_all(_metadata, self->c, 1);
	ASSERT_EQ(0, guest_pfns(self->v.mem, pfn));
	for (i = 0; i < self->nr_vcpus; i++) {
		ASSERT_EQ(0, page_idle(pfn, 1));
		/* Old in every copy: a young bit left in any copy would read here. */
		EXPECT_EQ(NR_PAGES, page_idle(pfn, 0)) {
			TH_LOG("before the vCPU on node %d ran", self->c[i].node);
		}
		run_all(_metadata, &self->c[i], 1);
		EXPECT_EQ(0, page_idle(pfn, 0)) {
			TH_LOG("after the vCPU on node %d wrote every page", self->c[i].node);
		}
	}
	free(pfn);
}

/*
 * Copies that cannot be allocated (every second one fails, injected through
 * tdp_repl) are left out and counted: their parents' copies link to the
 * primary table, which translates the same. No fault fails, no copy
 * differs from the primary, invalidation still reaches every copy, the
 * guest's data is intact and nothing leaks.
 */
TEST_F(repl, allocation_failure_leaves_fewer_copies)
{
	struct repl *r = malloc(sizeof(*r));
	char path[128];
	int i, n, fewer = 0;

	ASSERT_NE(NULL, r);
	snprintf(path, sizeof(path), "%s/tdp_repl", self->dir);
	EXPECT_EQ(-EINVAL, write_str(path, "fail"));
	EXPECT_EQ(-EINVAL, write_str(path, "fail -3"));
	EXPECT_EQ(-EINVAL, write_str(path, "fail 3x"));
	ASSERT_EQ(0, write_str(path, "fail 2\n"));
	run_all(_metadata, self->c, self->nr_vcpus);
	ASSERT_EQ(0, read_repl(self->dir, r));
	EXPECT_LT(0, r->alloc_failed);
	EXPECT_LT(0, r->fallback);
	EXPECT_EQ(0, r->mismatch);
	EXPECT_EQ(0, r->misplaced);
	for (n = 0; n < MAX_NODES; n++) {
		if (!self->nodes[n])
			continue;
		EXPECT_GE(r->tables, r->copies[n]);
		fewer += r->copies[n] < r->tables;
	}
	EXPECT_LE(1, fewer);
	TH_LOG("%ld tables, %ld copies not allocated, %ld fallback links", r->tables,
	       r->alloc_failed, r->fallback);

	ASSERT_EQ(0, madvise(self->big, BIG_SIZE, MADV_DONTNEED));
	ASSERT_EQ(0, read_repl(self->dir, r));
	EXPECT_EQ(0, r->mismatch);
	EXPECT_GE(GUEST_MEM / 4096, r->leaves);
	ASSERT_EQ(0, write_str(path, "fail 0"));
	for (i = 0; i < self->nr_vcpus; i++)
		self->c[i].size = 0;
	run_all(_metadata, self->c, self->nr_vcpus);
	for (i = 0; i < NR_PAGES; i++)
		ASSERT_EQ(0x5a, self->v.mem[FIRST_PAGE + i * 4096]) TH_LOG("page %d", i);
	/* The VM goes, its copies with it. */
	close_vcpus(self->c, &self->nr_vcpus);
	rm_vm_destroy(&self->v);
	self->v.vm = 0;
	expect_freed(_metadata, self->nodes, self->sec0);
	free(r);
}

/*
 * Bad input to KVM_CAP_X86_TDP_REPLICATION: -EINVAL for unknown flags and
 * for nodes without CPUs, -EBUSY once a vCPU exists; the VM stays usable.
 */
TEST(cap_rejects_bad_input)
{
	unsigned char nodes[MAX_NODES];
	unsigned long long mask = 0;
	struct rm_vm v;
	int n, r;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "/dev/kvm: %s", strerror(errno));
	ASSERT_EQ(0, rm_vm_open(&v, -1));
	r = ioctl(v.kvm, KVM_CHECK_EXTENSION, KVM_CAP_X86_TDP_REPLICATION);
	if (r <= 0)
		SKIP(return, "no KVM_CAP_X86_TDP_REPLICATION (CONFIG_KVM_TDP_REPLICATION)");
	ASSERT_LT(0, cpu_nodes(nodes));
	for (n = 0; n < MAX_NODES; n++)
		if (nodes[n])
			mask |= 1ULL << n;
	EXPECT_EQ(-EINVAL, enable_repl(v.vm, mask, 1));
	EXPECT_EQ(-EINVAL, enable_repl(v.vm, mask, 1ULL << 63));
	EXPECT_EQ(-EINVAL, enable_repl(v.vm, 1ULL << 63, 0));
	if (r < MAX_NODES)
		EXPECT_EQ(-EINVAL, enable_repl(v.vm, 1ULL << r, 0));
	EXPECT_EQ(0, enable_repl(v.vm, mask, 0));
	EXPECT_EQ(0, enable_repl(v.vm, 0, 0));
	EXPECT_EQ(0, enable_repl(v.vm, mask, 0));
	v.vcpu = rm_vm_add_vcpu(&v, 0, &v.run);
	ASSERT_LE(0, v.vcpu);
	EXPECT_EQ(-EBUSY, enable_repl(v.vm, mask, 0));
	EXPECT_EQ(-EBUSY, enable_repl(v.vm, 0, 0));
	ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&v));
	for (n = 0; n < NR_PAGES; n++)
		ASSERT_EQ(0x5a, v.mem[FIRST_PAGE + n * 4096]) TH_LOG("page %d", n);
	rm_vm_destroy(&v);
}

TEST_HARNESS_MAIN
