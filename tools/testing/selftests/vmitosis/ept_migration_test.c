// SPDX-License-Identifier: GPL-2.0
/*
 * kvm.tdp_migration (Documentation/vmitosis/ept-migration.rst): the TDP page
 * tables of a VM follow its memory to another node, every level and the root
 * included, by copying and without dropping a mapping; they stay when the
 * parameter is off; and moving them while the guest writes, dirty logging is
 * on and the host unmaps guest memory loses neither data nor dirty pages.
 *
 * The VM (vmitosis_util.h) runs in this thread, first bound to node 0, so its
 * memory and its TDP tables are allocated there; "moving" it means running on
 * node 1 and migrate_pages(2) of the guest memory, as for a VM moved between
 * sockets.
 */
#include <pthread.h>
#include <time.h>

#include "../kselftest_harness.h"
#include "vmitosis_util.h"
#include "vmitosis_klog.h"

#define PARAM		"/sys/module/kvm/parameters/tdp_migration"
#define PERIOD		"/sys/module/kvm/parameters/tdp_migration_period_ms"
/* How long tables may take to follow their memory, with the default period of 200 ms. */
#define FOLLOW_SECONDS	20

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		ret = -errno;
	close(fd);
	return ret;
}

/* TDP table pages of every valid root, root included: in all and on @node. */
static int tables_on(struct rm_vm *v, int node, int *total)
{
	char dir[96], path[128], line[512];
	int on = 0;
	FILE *f;

	rm_vm_debugfs(v, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tdp_pt_nodes", dir);
	*total = 0;
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');
		int id, level, n = 0;

		if (sscanf(line, "root %d tables level %d:", &id, &level) != 2 || !p)
			continue;
		for (p++; *p && *p != '\n'; n++) {
			char *end;
			long c = strtol(p, &end, 10);

			if (end == p)
				break;
			*total += c;
			if (n == node)
				on += c;
			p = end;
		}
	}
	fclose(f);
	return on;
}

/*
 * TDP table pages below the roots on @node: what KVM counts in the node's
 * SecPageTables (a root is not counted). Each root is the one table of its
 * top level.
 */
static int tables_below_roots_on(struct rm_vm *v, int node)
{
	char dir[96], path[128], line[512];
	int ids[64], levels[64], counts[64], top[64] = { 0 };
	int nr = 0, below = 0, i;
	FILE *f;

	rm_vm_debugfs(v, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tdp_pt_nodes", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (nr < 64 && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');
		int id, level, n;

		if (sscanf(line, "root %d tables level %d:", &id, &level) != 2 || !p)
			continue;
		ids[nr] = id;
		levels[nr] = level;
		counts[nr] = 0;
		for (p++, n = 0; n <= node; n++) {
			char *end;
			long c = strtol(p, &end, 10);

			if (end == p)
				break;
			if (n == node)
				counts[nr] = c;
			p = end;
		}
		if (id >= 0 && id < 64 && level > top[id])
			top[id] = level;
		nr++;
	}
	fclose(f);
	for (i = 0; i < nr; i++)
		if (ids[i] < 0 || ids[i] >= 64 || levels[i] < top[ids[i]])
			below += counts[i];
	return below;
}

static int migrate_tables_now(struct rm_vm *v)
{
	char dir[96], path[128];

	rm_vm_debugfs(v, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tdp_migrate", dir);
	return write_str(path, "1");
}

/* Move this thread to @to and the guest memory from @from to @to. */
static int move_vm(struct rm_vm *v, int from, int to)
{
	unsigned long old = 1UL << from, new = 1UL << to;

	(void)v;
	if (bind_node(to))
		return -1;
	return syscall(SYS_migrate_pages, 0, 64, &old, &new) < 0 ? -1 : 0;
}

static void fill(struct rm_vm *v)
{
	int i;

	for (i = 0; i < NR_PAGES; i++)
		memset(v->mem + FIRST_PAGE + i * 4096 + 1, i + 1, 4095);
}

/* Every page holds the guest's mark and the host's pattern; returns the bad pages. */
static int check(struct rm_vm *v)
{
	int i, j, bad = 0;

	for (i = 0; i < NR_PAGES; i++) {
		unsigned char *p = v->mem + FIRST_PAGE + i * 4096;

		if (p[0] != 0x5a) {
			bad++;
			continue;
		}
		for (j = 1; j < 4096; j++)
			if (p[j] != (unsigned char)(i + 1)) {
				bad++;
				break;
			}
	}
	return bad;
}

FIXTURE(vm) {
	struct rm_vm v;
	char saved[8], saved_period[16], saved_balancing[8];
};

#define BALANCING	"/proc/sys/kernel/numa_balancing"

FIXTURE_SETUP(vm)
{
	if (access(PARAM, W_OK))
		SKIP(return, "no " PARAM " (CONFIG_KVM_TDP_MIGRATION)");
	if (last_node() < 1)
		SKIP(return, "needs two NUMA nodes");
	ASSERT_LT(0, read_file(PARAM, self->saved, sizeof(self->saved)));
	ASSERT_LT(0, read_file(PERIOD, self->saved_period, sizeof(self->saved_period)));
	/*
	 * Memory moves when a test moves it: NUMA balancing (on in the debug
	 * pass of the test bed) would also unmap it behind the test's back,
	 * and KVM's mappings with it.
	 */
	if (read_file(BALANCING, self->saved_balancing, sizeof(self->saved_balancing)) > 0)
		ASSERT_EQ(0, write_str(BALANCING, "0"));
	ASSERT_EQ(0, write_str(PARAM, "0"));
	ASSERT_EQ(0, bind_node(0));
	ASSERT_EQ(0, rm_vm_create(&self->v));
	fill(&self->v);
	ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&self->v));
	ASSERT_EQ(0, check(&self->v));
}

FIXTURE_TEARDOWN(vm)
{
	if (self->saved[0]) {
		write_str(PARAM, self->saved);
		write_str(PERIOD, self->saved_period);
	}
	if (self->saved_balancing[0])
		write_str(BALANCING, self->saved_balancing);
	if (self->v.run)
		rm_vm_destroy(&self->v);
}

/* Wait until all tables are on @node; returns the seconds taken, or -1. */
static int wait_tables_on(struct rm_vm *v, int node, int seconds)
{
	int t, total;

	for (t = 0; t <= seconds * 10; t++) {
		if (tables_on(v, node, &total) == total && total > 0)
			return t / 10;
		usleep(100000);
	}
	return -1;
}

TEST_F(vm, tables_follow_memory)
{
	long long pages, faults;
	long sec0, sec1;
	int total, on, secs, below;

	on = tables_on(&self->v, 0, &total);
	ASSERT_LE(4, total);		/* the root, 2 upper tables, 1 leaf table */
	ASSERT_EQ(total, on);
	below = tables_below_roots_on(&self->v, 0);
	ASSERT_LE(3, below);
	fold_vmstat();
	sec0 = node_meminfo_kb(0, "SecPageTables");
	sec1 = node_meminfo_kb(1, "SecPageTables");
	ASSERT_LE(below * 4L, sec0);

	ASSERT_EQ(0, write_str(PARAM, "1"));
	ASSERT_EQ(0, move_vm(&self->v, 0, 1));
	/* The guest touches its pages again: they are mapped from node 1 now. */
	ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&self->v));

	secs = wait_tables_on(&self->v, 1, FOLLOW_SECONDS);
	on = tables_on(&self->v, 1, &total);
	TH_LOG("%d of %d tables on node 1 after %d s", on, total, secs);
	ASSERT_LE(0, secs);

	/*
	 * The moved tables are counted on their new node, and no longer on
	 * the old one: this VM is the only user of secondary page tables.
	 */
	EXPECT_EQ(below, tables_below_roots_on(&self->v, 1));
	fold_vmstat();
	EXPECT_EQ(sec0 - below * 4L, node_meminfo_kb(0, "SecPageTables"));
	EXPECT_EQ(sec1 + below * 4L, node_meminfo_kb(1, "SecPageTables"));

	/* Copied, not zapped: every mapping survived, and the guest refaults nothing. */
	pages = vm_stat(self->v.vm, "pages_4k");
	faults = vm_stat(self->v.vcpu, "pf_fixed");
	ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&self->v));
	EXPECT_EQ(pages, vm_stat(self->v.vm, "pages_4k"));
	EXPECT_EQ(faults, vm_stat(self->v.vcpu, "pf_fixed"));
	EXPECT_EQ(0, check(&self->v));
}

TEST_F(vm, tables_stay_when_off)
{
	int total, on;

	ASSERT_EQ(0, move_vm(&self->v, 0, 1));
	ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&self->v));
	sleep(2);
	on = tables_on(&self->v, 0, &total);
	TH_LOG("%d of %d tables still on node 0", on, total);
	EXPECT_EQ(total, on);
	EXPECT_EQ(0, check(&self->v));
}

TEST_F(vm, on_demand)
{
	int total, on;

	ASSERT_EQ(0, move_vm(&self->v, 0, 1));
	ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&self->v));
	ASSERT_EQ(0, migrate_tables_now(&self->v));
	on = tables_on(&self->v, 1, &total);
	TH_LOG("%d of %d tables on node 1 after one request", on, total);
	EXPECT_EQ(total, on);
	EXPECT_EQ(KVM_EXIT_HLT, rm_vm_run(&self->v));
	EXPECT_EQ(0, check(&self->v));
}

struct stress {
	struct rm_vm *v;
	int stop;		/* __atomic */
	int moves, unmaps;
};

/* Moves the guest memory back and forth and the tables after it. */
static void *mover(void *arg)
{
	struct stress *s = arg;
	int from = 0;

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		unsigned long old = 1UL << from, new = 1UL << !from;

		syscall(SYS_migrate_pages, 0, 64, &old, &new);
		migrate_tables_now(s->v);
		from = !from;
		s->moves++;
	}
	return NULL;
}

/* Unmaps guest pages from the host side: MMU-notifier invalidations. */
static void *unmapper(void *arg)
{
	struct stress *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		/* Shared memory: the data stays, only the mappings go. */
		madvise(s->v->mem + FIRST_PAGE, NR_PAGES * 4096 / 2, MADV_DONTNEED);
		s->unmaps++;
		usleep(1000);
	}
	return NULL;
}

TEST_F(vm, concurrent_writes_dirty_log_and_unmaps)
{
	struct kvm_userspace_memory_region region = {
		.slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
		.memory_size = GUEST_MEM, .userspace_addr = (unsigned long)self->v.mem,
	};
	unsigned long bitmap[GUEST_MEM / 4096 / 64];
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = bitmap };
	struct stress s = { .v = &self->v };
	int i, runs = 0, lost = 0;
	pthread_t a, b;
	time_t end, cap;

	ASSERT_EQ(0, write_str(PERIOD, "10"));
	ASSERT_EQ(0, write_str(PARAM, "1"));
	ASSERT_EQ(0, ioctl(self->v.vm, KVM_SET_USER_MEMORY_REGION, &region));
	ASSERT_EQ(0, ioctl(self->v.vm, KVM_GET_DIRTY_LOG, &log));
	ASSERT_EQ(0, pthread_create(&a, NULL, mover, &s));
	ASSERT_EQ(0, pthread_create(&b, NULL, unmapper, &s));

	/*
	 * 5 s, and at least 11 guest runs and a move: a debug kernel under
	 * emulation may need much longer for them (120 s at most).
	 */
	for (end = time(NULL) + 5, cap = end + 115;
	     time(NULL) < cap && (time(NULL) < end || runs <= 10 ||
				  !__atomic_load_n(&s.moves, __ATOMIC_RELAXED));
	     runs++) {
		if (rm_vm_run(&self->v) != KVM_EXIT_HLT)
			break;
		/* The guest wrote every page: every one of them must be logged dirty. */
		memset(bitmap, 0, sizeof(bitmap));
		if (ioctl(self->v.vm, KVM_GET_DIRTY_LOG, &log))
			break;
		for (i = 0; i < NR_PAGES; i++) {
			unsigned long gfn = FIRST_PAGE / 4096 + i;

			if (!(bitmap[gfn / 64] & (1UL << (gfn % 64))))
				lost++;
		}
	}
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	TH_LOG("%d guest runs, %d moves, %d unmaps, %d dirty pages lost",
	       runs, s.moves, s.unmaps, lost);
	EXPECT_LT(10, runs);
	EXPECT_LT(0, s.moves);
	EXPECT_EQ(0, lost);
	EXPECT_EQ(0, check(&self->v));
}

/* Leaf SPTEs of every root that map GFNs in [@first, @first + @count). */
static long leaves_in(struct rm_vm *v, unsigned long first, unsigned long count)
{
	char dir[96], path[128], line[256];
	unsigned long gfn;
	long leaves = 0;
	int level, nid;
	FILE *f;

	rm_vm_debugfs(v, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tdp_pt_dump", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "leaf %lx %d %d", &gfn, &level, &nid) == 3 &&
		    gfn >= first && gfn < first + count)
			leaves++;
	fclose(f);
	return leaves;
}

/* One counter of the VM's tdp_migrate file, or -1. */
static long long migrate_stat(struct rm_vm *v, const char *name)
{
	char dir[96], path[128], line[128];
	long long val = -1, n;
	char key[64];
	FILE *f;

	rm_vm_debugfs(v, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/tdp_migrate", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lld", key, &n) == 2 && !strcmp(key, name))
			val = n;
	fclose(f);
	return val;
}

#define BIG_GPA		0x40000000UL	/* 1 GiB, above the first slot */
#define BIG_SIZE	(256UL << 20)
#define ZAP_ROUNDS	8

struct zapper {
	void *mem;
	int started;	/* __atomic */
};

static void *zap_all(void *arg)
{
	struct zapper *z = arg;

	__atomic_store_n(&z->started, 1, __ATOMIC_RELEASE);
	/* Shared memory: the data stays, the mappings go, KVM's included. */
	madvise(z->mem, BIG_SIZE, MADV_DONTNEED);
	return NULL;
}

/*
 * The host unmaps all of a big slot (an MMU-notifier invalidation, whose
 * zap yields mmu_lock) while the tables, root included, are moved to where
 * the memory went: once the unmap has returned, no SPTE may map any of the
 * slot, or the guest could reach memory the host frees. No vCPU runs and
 * nothing faults the slot in again meanwhile. Both threads share one CPU,
 * so that the zap yields (to the mover, woken in the middle of it).
 */
TEST_F_TIMEOUT(vm, unmap_while_roots_move, 300)
{
	struct kvm_userspace_memory_region region = {
		.slot = 1, .guest_phys_addr = BIG_GPA, .memory_size = BIG_SIZE,
	};
	long long roots = 0, deferred = 0, r0, d0;
	int round, stale_rounds = 0;
	struct zapper z = { 0 };
	cpu_set_t one;
	pthread_t t;
	long left;

	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(one), &one));
	/* The memory on node 0 from here, then wherever migrate_pages(2) puts it. */
	ASSERT_EQ(0, syscall(SYS_set_mempolicy, MPOL_DEFAULT, NULL, 0));
	z.mem = mmap(NULL, BIG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, z.mem);
	memset(z.mem, 0x33, BIG_SIZE);
	region.userspace_addr = (unsigned long)z.mem;
	ASSERT_EQ(0, ioctl(self->v.vm, KVM_SET_USER_MEMORY_REGION, &region));
	/*
	 * Tables move when this test asks (migrate_tables_now()), not when
	 * kicked, but for a pass a minute after a kick.
	 */
	ASSERT_EQ(0, write_str(PERIOD, "60000"));
	ASSERT_EQ(0, write_str(PARAM, "1"));

	for (round = 0; round < ZAP_ROUNDS; round++) {
		struct kvm_pre_fault_memory pre = { .gpa = BIG_GPA, .size = BIG_SIZE };
		unsigned long old = 1UL << (round & 1), new = 1UL << !(round & 1);

		/* The memory moves; faulting it in again puts tables where it is. */
		ASSERT_LE(0, syscall(SYS_migrate_pages, 0, 64, &old, &new));
		while (pre.size)
			ASSERT_TRUE(!ioctl(self->v.vcpu, KVM_PRE_FAULT_MEMORY, &pre) ||
				    errno == EINTR || errno == EAGAIN) TH_LOG("pre-fault: %m");
		ASSERT_LT(0, leaves_in(&self->v, BIG_GPA >> 12, BIG_SIZE >> 12));

		r0 = migrate_stat(&self->v, "roots_migrated");
		d0 = migrate_stat(&self->v, "roots_deferred");
		__atomic_store_n(&z.started, 0, __ATOMIC_RELAXED);
		ASSERT_EQ(0, pthread_create(&t, NULL, zap_all, &z));
		while (!__atomic_load_n(&z.started, __ATOMIC_ACQUIRE))
			sched_yield();
		/* Wake up 0 to 7 ms into the unmap, then move the tables. */
		usleep(round * 1000);
		ASSERT_EQ(0, migrate_tables_now(&self->v));
		pthread_join(t, NULL);

		left = leaves_in(&self->v, BIG_GPA >> 12, BIG_SIZE >> 12);
		/* Now that no zap is on, a root that had to wait moves. */
		ASSERT_EQ(0, migrate_tables_now(&self->v));
		roots += migrate_stat(&self->v, "roots_migrated") - r0;
		deferred += migrate_stat(&self->v, "roots_deferred") - d0;
		if (left) {
			TH_LOG("round %d: %ld SPTEs still map the unmapped slot", round, left);
			stale_rounds++;
		}
	}
	TH_LOG("%d rounds: %lld roots moved, %lld moves deferred while a zap was on",
	       ZAP_ROUNDS, roots, deferred);
	EXPECT_EQ(0, stale_rounds);
	/* The root step met a zap (deferred) or moved a root: the race was run. */
	EXPECT_LT(0, roots + deferred);
	munmap(z.mem, BIG_SIZE);
}

/*
 * Most SPTEs one hold of mmu_lock may read (tdp_migrate.c): a batch of 64
 * leaf tables' worth of iterator steps, plus the weighing of the table met
 * at its end (512 entries and 32 of each of its 512 children).
 */
#define HOLD_READS_MAX	(64 * 512 + 512 + 512 * 32)

/*
 * The tables of a 256 MiB slot, mapped by 4K pages (shared memory) or by
 * 2M pages (THP), follow the memory to node 1 in passes whose every hold
 * of mmu_lock reads a bounded number of SPTEs: a hold ends after so many
 * iterator steps, over empty entries and huge-page leaves too, and not
 * after so many tables, or a THP-backed VM would pass its whole address
 * space in one hold. Logs the longest hold, in SPTEs and in time.
 */
static void hold_bounded(struct __test_metadata *_metadata, struct rm_vm *v, int thp)
{
	struct kvm_userspace_memory_region region = {
		.slot = 1, .guest_phys_addr = BIG_GPA, .memory_size = BIG_SIZE,
	};
	struct kvm_pre_fault_memory pre = { .gpa = BIG_GPA, .size = BIG_SIZE };
	long long reads, ns, huge;
	int i, total = 0, on = 0;
	char *mem, *aligned;

	mem = mmap(NULL, BIG_SIZE + (2UL << 20), PROT_READ | PROT_WRITE,
		   (thp ? MAP_PRIVATE : MAP_SHARED) | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	aligned = (char *)(((unsigned long)mem + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	if (thp)
		ASSERT_EQ(0, madvise(aligned, BIG_SIZE, MADV_HUGEPAGE));
	memset(aligned, 0x33, BIG_SIZE);
	region.userspace_addr = (unsigned long)aligned;
	ASSERT_EQ(0, ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region));
	/* Tables move when this test asks, not when kicked. */
	ASSERT_EQ(0, write_str(PERIOD, "60000"));
	ASSERT_EQ(0, write_str(PARAM, "1"));
	while (pre.size)
		ASSERT_TRUE(!ioctl(v->vcpu, KVM_PRE_FAULT_MEMORY, &pre) ||
			    errno == EINTR || errno == EAGAIN) TH_LOG("pre-fault: %m");
	huge = vm_stat(v->vm, "pages_2m");
	TH_LOG("%s: %lld 4K and %lld 2M mappings", thp ? "THP" : "4K",
	       vm_stat(v->vm, "pages_4k"), huge);
	if (thp)
		ASSERT_LE(BIG_SIZE >> 22, huge);	/* half of the slot at least */

	/* The memory moves; faulting it in again maps it from node 1. */
	ASSERT_EQ(0, move_vm(v, 0, 1));
	pre.gpa = BIG_GPA;
	pre.size = BIG_SIZE;
	while (pre.size)
		ASSERT_TRUE(!ioctl(v->vcpu, KVM_PRE_FAULT_MEMORY, &pre) ||
			    errno == EINTR || errno == EAGAIN) TH_LOG("pre-fault: %m");
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, migrate_tables_now(v));
		on = tables_on(v, 1, &total);
		if (on == total)
			break;
	}
	reads = migrate_stat(v, "max_lock_hold_reads");
	ns = migrate_stat(v, "max_lock_hold_ns");
	TH_LOG("%d of %d tables on node 1 after %d passes", on, total, i + 1);
	TH_LOG("longest hold of mmu_lock: %lld SPTEs read, %lld us", reads, ns / 1000);
	EXPECT_EQ(total, on);
	EXPECT_LT(0, reads);
	EXPECT_GE(HOLD_READS_MAX, reads);
	/* Copied, not zapped: the guest still runs on its memory. */
	EXPECT_EQ(KVM_EXIT_HLT, rm_vm_run(v));
	EXPECT_EQ(0, check(v));
	munmap(mem, BIG_SIZE + (2UL << 20));
}

TEST_F_TIMEOUT(vm, hold_bounded_4k, 240)
{
	hold_bounded(_metadata, &self->v, 0);
}

TEST_F_TIMEOUT(vm, hold_bounded_thp, 240)
{
	hold_bounded(_metadata, &self->v, 1);
}

/*
 * A pass costs what changed, not the size of the VM: with 8 slots of 32 MiB,
 * one per GiB of guest memory (invalidations are noted per GiB), mapped by
 * 4K pages, the pass that follows the unmap of 2 MiB of one slot reads a
 * fraction of the SPTEs that a pass over all of guest memory (a request
 * through debugfs) reads. Before invalidated ranges were noted, every pass
 * rescanned the whole VM.
 */
#define COST_SLOTS	8
#define COST_SLOT_SIZE	(32UL << 20)

TEST_F_TIMEOUT(vm, pass_cost_follows_what_changed, 240)
{
	long long full, small, passes;
	char *mem;
	int i;

	mem = mmap(NULL, COST_SLOTS * COST_SLOT_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	memset(mem, 0x33, COST_SLOTS * COST_SLOT_SIZE);
	ASSERT_EQ(0, write_str(PERIOD, "50"));
	ASSERT_EQ(0, write_str(PARAM, "1"));
	for (i = 0; i < COST_SLOTS; i++) {
		struct kvm_userspace_memory_region region = {
			.slot = 1 + i, .guest_phys_addr = (1UL + i) << 30,
			.memory_size = COST_SLOT_SIZE,
			.userspace_addr = (unsigned long)mem + i * COST_SLOT_SIZE,
		};
		struct kvm_pre_fault_memory pre = {
			.gpa = region.guest_phys_addr, .size = COST_SLOT_SIZE,
		};

		ASSERT_EQ(0, ioctl(self->v.vm, KVM_SET_USER_MEMORY_REGION, &region));
		while (pre.size)
			ASSERT_TRUE(!ioctl(self->v.vcpu, KVM_PRE_FAULT_MEMORY, &pre) ||
				    errno == EINTR || errno == EAGAIN) TH_LOG("pre-fault: %m");
	}

	ASSERT_EQ(0, migrate_tables_now(&self->v));
	full = migrate_stat(&self->v, "last_pass_reads");
	/* Let the passes of the set-up's invalidations end. */
	for (i = 0; i < 200 && migrate_stat(&self->v, "ranges_to_scan"); i++)
		usleep(100 * 1000);

	passes = migrate_stat(&self->v, "passes");
	ASSERT_EQ(0, madvise(mem + 3 * COST_SLOT_SIZE, 2UL << 20, MADV_DONTNEED));
	for (i = 0; i < 100 && migrate_stat(&self->v, "passes") == passes; i++)
		usleep(20 * 1000);
	ASSERT_LT(passes, migrate_stat(&self->v, "passes"));
	small = migrate_stat(&self->v, "last_pass_reads");
	TH_LOG("SPTEs read: %lld by a pass over all, %lld by the pass after a 2 MiB unmap",
	       full, small);
	EXPECT_LT(COST_SLOTS * COST_SLOT_SIZE / 4096, full);
	EXPECT_LT(0, small);
	EXPECT_GT(full / 3, small);
	munmap(mem, COST_SLOTS * COST_SLOT_SIZE);
}

/*
 * VMs closed while their tables move: each closes right after its memory
 * moved, when the worker is moving tables and flushing the vCPUs' TLBs.
 * The worker must stop before the vCPUs are freed (the debug pass's KASAN
 * sees a use-after-free otherwise), and every VM must leave its memory
 * intact up to its close; no report in the kernel log, no taint.
 */
#define CLOSE_ROUNDS	12

TEST_F_TIMEOUT(vm, close_while_tables_move, 240)
{
	int warnings = kernel_log_warnings(), round, delay_us;
	long taint = kernel_taint();

	ASSERT_LE(0, warnings) TH_LOG("the kernel log cannot be read");
	ASSERT_LE(0, taint) TH_LOG("/proc/sys/kernel/tainted cannot be read");
	ASSERT_EQ(0, write_str(PERIOD, "1"));
	ASSERT_EQ(0, write_str(PARAM, "1"));
	for (round = 0; round < CLOSE_ROUNDS; round++) {
		/* Close at different points of the worker's passes: 0 to 11 ms after the move. */
		delay_us = round * 1000;
		ASSERT_EQ(0, move_vm(&self->v, 0, 1));
		if (delay_us)
			usleep(delay_us);
		ASSERT_EQ(0, check(&self->v)) TH_LOG("round %d", round);
		rm_vm_destroy(&self->v);
		self->v.run = NULL;
		ASSERT_EQ(0, bind_node(0));
		ASSERT_EQ(0, rm_vm_create(&self->v));
		fill(&self->v);
		ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&self->v));
	}
	/* A worker that outlived its VM would run within a period or two. */
	usleep(200 * 1000);
	TH_LOG("%d VMs closed while their tables moved", CLOSE_ROUNDS);
	EXPECT_EQ(warnings, kernel_log_warnings());
	EXPECT_EQ(taint, kernel_taint());
}

/*
 * A VM whose vCPU thread runs on node 0 and whose memory is on node 1: with
 * tdp_migration on, the tables its faults allocate go to node 1, all but the
 * root, which comes from the vCPU's node; with it off, all go to node 0.
 */
static void new_tables(struct __test_metadata *_metadata, const char *param, int node)
{
	char saved[8];
	struct rm_vm v;
	int total, on;

	if (access(PARAM, W_OK))
		SKIP(return, "no " PARAM " (CONFIG_KVM_TDP_MIGRATION)");
	if (last_node() < 1)
		SKIP(return, "needs two NUMA nodes");
	ASSERT_LT(0, read_file(PARAM, saved, sizeof(saved)));
	ASSERT_EQ(0, write_str(PARAM, param));
	ASSERT_EQ(0, bind_node(0));
	ASSERT_EQ(0, rm_vm_create_on(&v, 1));
	ASSERT_EQ(KVM_EXIT_HLT, rm_vm_run(&v));
	on = tables_on(&v, node, &total);
	TH_LOG("%d of %d tables on node %d", on, total, node);
	EXPECT_EQ(1, v.mem[FIRST_PAGE] == 0x5a && page_node(v.mem + FIRST_PAGE) == 1);
	if (node == 1) {
		EXPECT_EQ(total - 1, on);
		EXPECT_EQ(1, tables_on(&v, 0, &total));
	} else {
		EXPECT_EQ(total, on);
	}
	write_str(PARAM, saved);
	rm_vm_destroy(&v);
}

TEST(new_tables_on_the_node_of_their_memory)
{
	new_tables(_metadata, "1", 1);
}

TEST(new_tables_on_the_vcpu_node_when_off)
{
	new_tables(_metadata, "0", 0);
}

/*
 * A period of 0 ms would requeue every VM's worker with no delay, for ever:
 * it and periods over a minute fail with EINVAL and change nothing.
 */
TEST(period_rejects_bad_values)
{
	static const char * const bad[] = { "0", "60001", "-1", "x" };
	char saved[16], now[16];
	unsigned int i;

	if (access(PERIOD, W_OK))
		SKIP(return, "no " PERIOD " (CONFIG_KVM_TDP_MIGRATION)");
	ASSERT_LT(0, read_file(PERIOD, saved, sizeof(saved)));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, write_str(PERIOD, bad[i])) TH_LOG("wrote %s", bad[i]);
		ASSERT_LT(0, read_file(PERIOD, now, sizeof(now)));
		EXPECT_STREQ(saved, now);
	}
	EXPECT_EQ(0, write_str(PERIOD, "1"));
	EXPECT_EQ(0, write_str(PERIOD, "60000"));
	EXPECT_EQ(0, write_str(PERIOD, saved));
}

TEST_HARNESS_MAIN
