// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration of TDP (EPT/NPT) page-table pages to the NUMA node of what they
 * map, so that two-dimensional walks stay local after a VM's memory moved.
 *
 * When guest memory moves (NUMA balancing of the VMM, migrate_pages(2)), the
 * MMU notifier zaps the leaf SPTEs that mapped it and the vCPUs refault them,
 * but the table pages themselves stay where they were first allocated. With
 * kvm.tdp_migration on, every invalidation notes the GiB ranges it touched
 * and kicks a per-VM worker that scans the TDP tables of those ranges
 * bottom-up (leaf tables first, the root last) and moves each table page to
 * the node holding most of what it maps: for a leaf table the pages its
 * SPTEs point to, for an upper table its child tables. Each period moves a
 * bounded batch, the next one resuming where it stopped, and reads at most
 * about 64 tables' worth of SPTEs per hold of mmu_lock: a pass costs what
 * changed, not the size of the VM.
 *
 * A move copies; it never zaps. Under mmu_lock held for write, which excludes
 * every fault, zap, notifier invalidation, dirty-log and split/collapse path
 * of the TDP MMU, the new page gets a copy of the old one's SPTEs and the
 * parent SPTE is switched to it with cmpxchg (the CPU may set its Accessed
 * bit). What can still touch the old table is outside mmu_lock:
 *
 *  - the CPU, through cached paging-structure entries, setting Accessed and
 *    Dirty bits in leaf SPTEs until the TLB flush that ends each chunk: after
 *    the flush, those bits are merged from the old page into the new one, so
 *    no Dirty bit (and no dirty page of the host) is lost;
 *  - the lockless fast page fault, which may make a leaf SPTE of the old page
 *    writable or accessed again: it records the page as dirty itself, and the
 *    vCPU simply faults again on the new page, which is never more permissive
 *    than the old one was;
 *  - lockless readers (fast page fault, tdp_pt_dump): the old page is freed
 *    through RCU, like every table the TDP MMU unlinks.
 *
 * The root is moved by building a new root with the same role and entries,
 * publishing it, and invalidating the old one: KVM_REQ_MMU_FREE_OBSOLETE_ROOTS
 * (a waiting request) takes every vCPU out of guest mode and makes it load
 * the new root before it enters again. Only then are the old root's entries
 * cleared, so that no path that walks invalid roots can reach the child
 * tables through it, and the TDP MMU's reference to it is dropped.
 *
 * Counters are in the VM's debugfs file tdp_migrate, which also runs passes on
 * demand. Documentation/vmitosis/ept-migration.rst has the rest.
 */
#include <linux/debugfs.h>
#include <linux/kvm_host.h>
#include <linux/memcontrol.h>
#include <linux/moduleparam.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "mmu.h"
#include "mmu_internal.h"
#include "mmutrace.h"
#include "spte.h"
#include "tdp_iter.h"
#include "tdp_mmu.h"
#include "tdp_migrate.h"

DEFINE_STATIC_KEY_FALSE(kvm_tdp_migrate_key);

static bool tdp_migration;
static unsigned int tdp_migration_batch = 512;
static unsigned int tdp_migration_period_ms = 200;
static unsigned int tdp_migration_linger = 50;

static int tdp_migration_set(const char *val, const struct kernel_param *kp)
{
	int r = param_set_bool(val, kp);

	if (r)
		return r;
	if (tdp_migration)
		static_branch_enable(&kvm_tdp_migrate_key);
	else
		static_branch_disable(&kvm_tdp_migrate_key);
	return 0;
}

static const struct kernel_param_ops tdp_migration_ops = {
	.set = tdp_migration_set,
	.get = param_get_bool,
};

module_param_cb(tdp_migration, &tdp_migration_ops, &tdp_migration, 0644);
MODULE_PARM_DESC(tdp_migration, "Migrate TDP page tables to the node of the memory they map");
module_param(tdp_migration_batch, uint, 0644);
MODULE_PARM_DESC(tdp_migration_batch, "TDP page tables migrated per period and VM, at most");
/* 1 ms to a minute: 0 would requeue a VM's worker with no delay, for ever. */
static int tdp_migration_period_set(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 1, 60 * MSEC_PER_SEC);
}

static const struct kernel_param_ops tdp_migration_period_ops = {
	.set = tdp_migration_period_set,
	.get = param_get_uint,
};

module_param_cb(tdp_migration_period_ms, &tdp_migration_period_ops,
		&tdp_migration_period_ms, 0644);
MODULE_PARM_DESC(tdp_migration_period_ms,
		 "Milliseconds between two migration passes of a VM (1 to 60000)");
module_param(tdp_migration_linger, uint, 0644);
MODULE_PARM_DESC(tdp_migration_linger,
		 "Passes run after the last invalidation of guest memory, for refaults to settle");

/* Moves finished with one TLB flush. */
#define TDP_MIGRATE_FLUSH_BATCH	64
/*
 * SPTEs read per hold of mmu_lock, about 64 leaf tables: every step of the
 * iterator counts, huge-page leaves and empty entries included, and so do
 * the entries a table's weighing reads (at most 512 + 512 x 32).
 */
#define TDP_MIGRATE_SCAN_BATCH	(64 * SPTE_ENT_PER_PAGE)
/* Weighing a child table reads one SPTE in this many. */
#define TDP_MIGRATE_WEIGH_STRIDE	16
/*
 * Invalidated guest memory is noted in ranges of 1 GiB of GFNs, 8192 of
 * them (1 KiB per bitmap): the last range holds everything from 8 TiB up.
 */
#define TDP_MIGRATE_RANGE_SHIFT	(30 - PAGE_SHIFT)
#define TDP_MIGRATE_RANGES	8192

struct tdp_migrate_pair {
	struct kvm_mmu_page *old_sp;
	struct kvm_mmu_page *new_sp;
};

struct kvm_tdp_migrate {
	struct kvm *kvm;
	struct delayed_work work;
	struct mutex lock;		/* one pass at a time */
	bool dying;			/* under @lock: the VM is going, no more passes */
	/*
	 * Passes left before idling: set by kicks without @lock (a kick lost
	 * to a concurrent pass only shortens lingering), counted down under it.
	 */
	unsigned int linger;
	int *node_count;		/* nr_node_ids, under @lock */
	unsigned int reads;		/* SPTEs read in this hold of mmu_lock */
	u64 pass_reads;			/* SPTEs read in this pass */
	/* Ranges invalidated since the last pass: set by kicks, atomically. */
	DECLARE_BITMAP(changed, TDP_MIGRATE_RANGES);
	/* Ranges the passes scan until they find nothing to move: under @lock. */
	DECLARE_BITMAP(todo, TDP_MIGRATE_RANGES);
	bool scan_all;			/* under @lock: a request to scan it all */
	/*
	 * Where the pass that ran out of budget stopped, under @lock: the
	 * next starts there. The root is compared, never dereferenced: if it
	 * is gone, the pass starts from the beginning of the next root.
	 */
	struct kvm_mmu_page *resume_root;
	int resume_level;
	gfn_t resume_gfn;
	struct tdp_migrate_pair pending[TDP_MIGRATE_FLUSH_BATCH];
	int nr_pending;

	/* Statistics, updated under @lock but @kicks (by kicks, racy). */
	u64 passes;
	u64 kicks;
	u64 scanned[PT64_ROOT_MAX_LEVEL + 1];
	u64 migrated[PT64_ROOT_MAX_LEVEL + 1];
	u64 roots_migrated;
	u64 roots_deferred;	/* a walker that yields may be on the root */
	u64 alloc_failed;
	u64 flushes;
	u64 max_hold_ns;
	u64 last_hold_ns;
	u64 max_hold_reads;
	u64 reads_total;
	u64 last_pass_reads;
};

/*
 * The node of a mapped page. Pages without a struct page and the shared zero
 * pages, which every process maps wherever it runs, have none to follow.
 */
static int page_nid(kvm_pfn_t pfn)
{
	struct page *page;

	if (!pfn_valid(pfn) || is_zero_pfn(pfn))
		return NUMA_NO_NODE;
	page = pfn_to_page(pfn);
	if (is_huge_zero_folio(page_folio(page)))
		return NUMA_NO_NODE;
	return page_to_nid(page);
}

static int sp_nid(struct kvm_mmu_page *sp)
{
	return page_to_nid(virt_to_page(sp->spt));
}

/*
 * About how many entries the child table @sp has present: one in
 * TDP_MIGRATE_WEIGH_STRIDE is read, so that weighing an upper table reads
 * at most 512 x 32 SPTEs of its children, not 512 x 512. A child whose
 * sampled entries are all empty, a table emptied by a zap whose memory has
 * not been touched since, say, weighs nothing.
 */
static unsigned int tdp_child_weight(struct kvm_tdp_migrate *m, struct kvm_mmu_page *sp)
{
	unsigned int i, n = 0;

	for (i = 0; i < SPTE_ENT_PER_PAGE; i += TDP_MIGRATE_WEIGH_STRIDE) {
		m->reads++;
		n += is_shadow_present_pte(kvm_tdp_mmu_read_spte((tdp_ptep_t)(sp->spt + i)));
	}
	return n * TDP_MIGRATE_WEIGH_STRIDE;
}

/*
 * The node holding most of what @sp maps. A leaf table counts its mapped
 * pages by node. An upper table counts its child tables, each weighed by
 * about how many entries it has present (tdp_child_weight()), so that a
 * table that maps 256 MiB outvotes one that maps a page and tables emptied
 * by a zap do not hold their parents back, and its huge-page leaves as full
 * tables. Ties and tables that map nothing keep the current node, so tables
 * do not ping-pong.
 */
static int tdp_target_node(struct kvm_tdp_migrate *m, struct kvm_mmu_page *sp)
{
	int level = sp->role.level, cur = sp_nid(sp), best = cur, i, nid;

	memset(m->node_count, 0, nr_node_ids * sizeof(*m->node_count));
	m->reads += SPTE_ENT_PER_PAGE;
	for (i = 0; i < SPTE_ENT_PER_PAGE; i++) {
		u64 spte = kvm_tdp_mmu_read_spte((tdp_ptep_t)(sp->spt + i));
		unsigned int weight = 1;

		if (!is_shadow_present_pte(spte))
			continue;
		if (level > PG_LEVEL_4K && !is_last_spte(spte, level))
			nid = sp_nid(spte_to_child_sp(spte));
		else
			nid = page_nid(spte_to_pfn(spte));
		if (nid == NUMA_NO_NODE)
			continue;
		if (level > PG_LEVEL_4K)
			weight = is_last_spte(spte, level) ? SPTE_ENT_PER_PAGE :
				 tdp_child_weight(m, spte_to_child_sp(spte));
		m->node_count[nid] += weight;
	}
	for_each_node(nid)
		if (m->node_count[nid] > m->node_count[best])
			best = nid;
	return m->node_count[best] ? best : NUMA_NO_NODE;
}

/*
 * Placement. While tdp_migration is on, a TDP fault allocates the tables it
 * needs on the node of the page it maps: the leaf table maps it, and an
 * upper table allocated by the same fault has that leaf table as its only
 * child. The vCPU's node is the fallback for what has no node (MMIO, the
 * zero page) and when the node's cache cannot be filled; roots come from the
 * vCPU's default cache, on its node. Each vCPU has one small cache per node,
 * filled before mmu_lock is taken, as the default cache is.
 */
#define TDP_NODE_CACHE_MIN	PT64_ROOT_MAX_LEVEL
#define TDP_NODE_CACHE_SIZE	(2 * PT64_ROOT_MAX_LEVEL)

void kvm_tdp_placement_vcpu_init(struct kvm_vcpu *vcpu)
{
	struct kvm_mmu_memory_cache *caches;
	int nid;

	vcpu->arch.mmu_pt_node = NUMA_NO_NODE;
	/* Without them the vCPU allocates its tables locally, as KVM does. */
	caches = kcalloc(nr_node_ids, sizeof(*caches), GFP_KERNEL_ACCOUNT);
	if (!caches)
		return;
	for_each_node(nid) {
		caches[nid].on_node = true;
		caches[nid].node = nid;
		caches[nid].init_value = vcpu->arch.mmu_shadow_page_cache.init_value;
		caches[nid].gfp_zero = vcpu->arch.mmu_shadow_page_cache.gfp_zero;
	}
	vcpu->arch.mmu_pt_node_caches = caches;
}

void kvm_tdp_placement_vcpu_free(struct kvm_vcpu *vcpu)
{
	struct kvm_mmu_memory_cache *caches = vcpu->arch.mmu_pt_node_caches;
	int nid;

	if (!caches)
		return;
	for_each_node(nid)
		kvm_mmu_free_memory_cache(&caches[nid]);
	kfree(caches);
	vcpu->arch.mmu_pt_node_caches = NULL;
}

void __kvm_tdp_placement_prepare(struct kvm_vcpu *vcpu, kvm_pfn_t pfn)
{
	struct kvm_mmu_memory_cache *caches = vcpu->arch.mmu_pt_node_caches;
	int nid = page_nid(pfn);

	/* Whatever a fault left here when the key was flipped under it. */
	vcpu->arch.mmu_pt_node = NUMA_NO_NODE;
	if (!caches || !tdp_mmu_enabled)
		return;
	if (nid == NUMA_NO_NODE)
		nid = numa_node_id();
	if (__kvm_mmu_topup_memory_cache(&caches[nid], TDP_NODE_CACHE_SIZE, TDP_NODE_CACHE_MIN))
		return;
	vcpu->arch.mmu_pt_node = nid;
}

void *__kvm_tdp_placement_alloc(struct kvm_vcpu *vcpu)
{
	struct kvm_mmu_memory_cache *mc = &vcpu->arch.mmu_pt_node_caches[vcpu->arch.mmu_pt_node];

	return mc->nobjs ? kvm_mmu_memory_cache_alloc(mc) : NULL;
}

static struct kvm_mmu_page *tdp_alloc_sp_on(int nid)
{
	gfp_t gfp = GFP_NOWAIT | __GFP_ACCOUNT | __GFP_NOWARN;
	struct kvm_mmu_page *sp;
	struct page *page;

	sp = kmem_cache_zalloc(mmu_page_header_cache, gfp);
	if (!sp)
		return NULL;
	page = alloc_pages_node(nid, gfp | __GFP_THISNODE, 0);
	if (!page) {
		kmem_cache_free(mmu_page_header_cache, sp);
		return NULL;
	}
	sp->spt = page_address(page);
	return sp;
}

/*
 * Make @new_sp stand in for @old_sp (kvm_tdp_mmu_init_replacement_sp()) with
 * a copy of its SPTEs, and point the child tables' back pointers into
 * @new_sp. mmu_lock is held for write.
 */
static void tdp_copy_sp(struct kvm *kvm, struct kvm_mmu_page *new_sp,
			struct kvm_mmu_page *old_sp)
{
	int level = old_sp->role.level, i;

	lockdep_assert_held_write(&kvm->mmu_lock);
	kvm_tdp_mmu_init_replacement_sp(kvm, new_sp, old_sp);

	for (i = 0; i < SPTE_ENT_PER_PAGE; i++) {
		u64 spte = kvm_tdp_mmu_read_spte((tdp_ptep_t)(old_sp->spt + i));

		/* Only a holder of mmu_lock for read freezes an SPTE, for a moment. */
		WARN_ON_ONCE(is_frozen_spte(spte));
		new_sp->spt[i] = spte;
		if (is_shadow_present_pte(spte) && !is_last_spte(spte, level))
			spte_to_child_sp(spte)->ptep = (tdp_ptep_t)(new_sp->spt + i);
	}
}

/*
 * Without A/D bits in the TDP tables (kvm_intel.ept_ad=0, or hardware without
 * them) a writable SPTE stands for a dirty page and an access-tracked one for
 * an idle page. The lockless fast page fault may have made the old copy of a
 * leaf writable or accessible after the copy, through a pointer read before
 * the parent entry switched; the guest then wrote through it until the flush,
 * but the new copy never learns. Tell the primary MM about such a page now,
 * as zapping the old SPTE would have.
 */
static void tdp_merge_no_ad(u64 spte, u64 old_spte)
{
	kvm_pfn_t pfn = spte_to_pfn(old_spte);

	if (is_writable_pte(old_spte) && !is_writable_pte(spte))
		kvm_set_pfn_dirty(pfn);
	if (is_accessed_spte(old_spte) && !is_accessed_spte(spte))
		kvm_set_pfn_accessed(pfn);
}

/*
 * After the TLB flush no CPU can reach @old_sp: carry the Accessed and Dirty
 * bits it set in the old copy of a leaf SPTE over to the new copy, if that
 * still maps the same page (flag bits only, never the frame).
 */
static void tdp_merge_ad_bits(struct kvm *kvm, struct kvm_mmu_page *new_sp,
			      struct kvm_mmu_page *old_sp)
{
	u64 ad = shadow_accessed_mask | shadow_dirty_mask;
	int level = new_sp->role.level, i;

	lockdep_assert_held_write(&kvm->mmu_lock);
	for (i = 0; i < SPTE_ENT_PER_PAGE; i++) {
		u64 old_spte = READ_ONCE(old_sp->spt[i]);
		u64 spte, bits;

		if (!is_shadow_present_pte(old_spte) || !is_last_spte(old_spte, level))
			continue;
		spte = READ_ONCE(new_sp->spt[i]);
		if (!ad) {
			if (is_shadow_present_pte(spte) &&
			    spte_to_pfn(spte) == spte_to_pfn(old_spte))
				tdp_merge_no_ad(spte, old_spte);
			continue;
		}
		do {
			bits = old_spte & ad & ~spte;
			if (!bits || !is_shadow_present_pte(spte) ||
			    spte_to_pfn(spte) != spte_to_pfn(old_spte))
				break;
		} while (!try_cmpxchg64(&new_sp->spt[i], &spte, spte | bits));
	}
}

/* Flush, merge what the CPUs set meanwhile, free the old copies. */
static void tdp_migrate_finish(struct kvm_tdp_migrate *m)
{
	int i;

	lockdep_assert_held_write(&m->kvm->mmu_lock);
	if (!m->nr_pending)
		return;
	kvm_flush_remote_tlbs(m->kvm);
	m->flushes++;
	for (i = 0; i < m->nr_pending; i++) {
		tdp_merge_ad_bits(m->kvm, m->pending[i].new_sp, m->pending[i].old_sp);
		kvm_tdp_mmu_free_sp_rcu(m->pending[i].old_sp);
	}
	m->nr_pending = 0;
}

/*
 * Move the table that @iter's SPTE points to onto @nid. mmu_lock is held for
 * write and RCU read-locked. Returns false when no page could be had there.
 */
static bool tdp_migrate_child(struct kvm_tdp_migrate *m, struct tdp_iter *iter,
			      struct kvm_mmu_page *old_sp, int nid)
{
	u64 *sptep = rcu_dereference(iter->sptep);
	struct kvm_mmu_page *new_sp;
	u64 old_spte, new_spte;
	int from = sp_nid(old_sp);

	/* mmu_lock is held for write: only the Accessed bit can have changed. */
	if (WARN_ON_ONCE(spte_to_child_sp(READ_ONCE(*sptep)) != old_sp))
		return false;
	new_sp = tdp_alloc_sp_on(nid);
	if (!new_sp) {
		m->alloc_failed++;
		return false;
	}
	tdp_copy_sp(m->kvm, new_sp, old_sp);

	/* Publish the filled copy; cmpxchg orders the copy before it. */
	old_spte = READ_ONCE(*sptep);
	do {
		new_spte = (old_spte & ~SPTE_BASE_ADDR_MASK) | __pa(new_sp->spt);
	} while (!try_cmpxchg64(sptep, &old_spte, new_spte));
	iter->old_spte = new_spte;

	trace_kvm_mmu_migrate_sp(new_sp, from, nid);

	m->pending[m->nr_pending].old_sp = old_sp;
	m->pending[m->nr_pending].new_sp = new_sp;
	if (++m->nr_pending == TDP_MIGRATE_FLUSH_BATCH)
		tdp_migrate_finish(m);
	m->migrated[old_sp->role.level]++;
	return true;
}

static void tdp_migrate_hold_end(struct kvm_tdp_migrate *m, u64 start)
{
	m->last_hold_ns = ktime_get_ns() - start;
	m->max_hold_ns = max(m->max_hold_ns, m->last_hold_ns);
	m->max_hold_reads = max_t(u64, m->max_hold_reads, m->reads);
	m->pass_reads += m->reads;
}

/*
 * Move the misplaced tables of @level under @root that map GFNs from *@startp
 * to @end. mmu_lock is dropped after TDP_MIGRATE_SCAN_BATCH SPTEs read, or
 * earlier when the CPU or the lock is wanted (once past where the hold began,
 * so that the walk progresses), once the moves made under it are flushed;
 * the walk resumes at the GFN it stopped at. Returns how much of @budget is
 * left, and in *@startp where the walk stopped (@end once done).
 */
static unsigned int tdp_migrate_level(struct kvm_tdp_migrate *m, struct kvm_mmu_page *root,
				      int level, gfn_t *startp, gfn_t end,
				      unsigned int budget)
{
	struct kvm *kvm = m->kvm;
	gfn_t start = *startp;
	struct tdp_iter iter;

	while (start < end && budget) {
		struct kvm_mmu_page *parent = NULL;
		int parent_nid = NUMA_NO_NODE;
		gfn_t next = end;
		u64 t0;

		write_lock(&kvm->mmu_lock);
		t0 = ktime_get_ns();
		if (root->role.invalid) {
			write_unlock(&kvm->mmu_lock);
			break;
		}
		m->reads = 0;
		rcu_read_lock();
		for_each_tdp_pte_min_level(iter, root, level + 1, start, end) {
			struct kvm_mmu_page *sp;
			int nid;

			if (m->reads >= TDP_MIGRATE_SCAN_BATCH ||
			    (iter.gfn > start &&
			     (need_resched() || rwlock_needbreak(&kvm->mmu_lock)))) {
				next = iter.gfn;
				break;
			}
			m->reads++;
			if (iter.level != level + 1 || !is_shadow_present_pte(iter.old_spte) ||
			    is_last_spte(iter.old_spte, iter.level))
				continue;
			sp = spte_to_child_sp(iter.old_spte);
			m->scanned[level]++;
			nid = tdp_target_node(m, sp);
			/*
			 * A table that maps nothing with a node (its memory moved and
			 * was not touched since, or only MMIO) goes where its siblings'
			 * memory is, which it will likely map when touched; if they
			 * map nothing either, where its parent is.
			 */
			if (nid == NUMA_NO_NODE) {
				if (parent != sptep_to_sp(rcu_dereference(iter.sptep))) {
					parent = sptep_to_sp(rcu_dereference(iter.sptep));
					parent_nid = tdp_target_node(m, parent);
					if (parent_nid == NUMA_NO_NODE)
						parent_nid = sp_nid(parent);
				}
				nid = parent_nid;
			}
			if (nid == sp_nid(sp) || !tdp_migrate_child(m, &iter, sp, nid))
				continue;
			if (!--budget) {
				/* Resume past this table: a sibling is next. */
				next = iter.gfn + KVM_PAGES_PER_HPAGE(iter.level);
				break;
			}
		}
		rcu_read_unlock();
		tdp_migrate_finish(m);
		tdp_migrate_hold_end(m, t0);
		write_unlock(&kvm->mmu_lock);
		cond_resched();
		start = next;
	}
	*startp = min(start, end);
	return budget;
}

/*
 * Move the misplaced tables of @level under @root in the ranges to scan, from
 * GFN @from on: all of guest memory on request, else the ranges invalidated
 * since they last had nothing to move. A table of @level is met through
 * the entry above it, which maps KVM_PAGES_PER_HPAGE(@level + 1) GFNs: the
 * ranges are widened to that and merged, so that each table is looked at
 * once per pass however many of the ranges it spans changed. Returns how
 * much of @budget is left, and in *@stop where the walk stopped when none.
 */
static unsigned int tdp_migrate_ranges(struct kvm_tdp_migrate *m, struct kvm_mmu_page *root,
				       int level, gfn_t from, unsigned int budget,
				       gfn_t *stop)
{
	gfn_t max = kvm_mmu_max_gfn() + 1, span = KVM_PAGES_PER_HPAGE(level + 1);
	unsigned int rs, re;

	if (m->scan_all) {
		budget = tdp_migrate_level(m, root, level, &from, max, budget);
		*stop = from;
		return budget;
	}
	for_each_set_bitrange(rs, re, m->todo, TDP_MIGRATE_RANGES) {
		gfn_t start = round_down((gfn_t)rs << TDP_MIGRATE_RANGE_SHIFT, span);
		gfn_t end = re == TDP_MIGRATE_RANGES ? max :
			    (gfn_t)re << TDP_MIGRATE_RANGE_SHIFT;

		end = min(round_up(end, span), max);
		start = max(start, from);
		if (start >= end)
			continue;
		budget = tdp_migrate_level(m, root, level, &start, end, budget);
		from = start;
		if (!budget) {
			*stop = start;
			return 0;
		}
	}
	return budget;
}

/*
 * Replace @root by a copy on @nid. mmu_lock is held for write and the RCU
 * read lock, as for every walk of TDP tables; the caller holds a reference
 * to @root.
 */
static bool tdp_migrate_root(struct kvm_tdp_migrate *m, struct kvm_mmu_page *root, int nid)
{
	struct kvm *kvm = m->kvm;
	struct kvm_mmu_page *new_root;
	int from = sp_nid(root), i;

	lockdep_assert_held_write(&kvm->mmu_lock);
	RCU_LOCKDEP_WARN(!rcu_read_lock_held(), "a TDP root copied outside RCU");

	new_root = tdp_alloc_sp_on(nid);
	if (!new_root) {
		m->alloc_failed++;
		return false;
	}
	tdp_copy_sp(kvm, new_root, root);
	/* The TDP MMU's own reference; vCPUs take theirs when they load it. */
	refcount_set(&new_root->tdp_mmu_root_count, 1);

	spin_lock(&kvm->arch.tdp_mmu_pages_lock);
	list_add_rcu(&new_root->link, &kvm->arch.tdp_mmu_roots);
	spin_unlock(&kvm->arch.tdp_mmu_pages_lock);

	/*
	 * An invalid root is obsolete: every vCPU drops it and loads the valid
	 * root of the same role, the new one, before it next enters the guest,
	 * and the waiting request returns only once none is in guest mode.
	 * The old root is not scheduled for zapping, which would tear down
	 * the child tables the new root shares.
	 */
	root->role.invalid = true;
	kvm_make_all_cpus_request(kvm, KVM_REQ_MMU_FREE_OBSOLETE_ROOTS);
	kvm_flush_remote_tlbs(kvm);

	/* Nothing may reach the shared children through the old root now. */
	for (i = 0; i < SPTE_ENT_PER_PAGE; i++)
		__kvm_tdp_mmu_write_spte((tdp_ptep_t)(root->spt + i), SHADOW_NONPRESENT_VALUE);

	trace_kvm_mmu_migrate_sp(new_root, from, nid);
	m->roots_migrated++;
	m->migrated[root->role.level]++;
	/* Drop the TDP MMU's reference; the vCPUs drop theirs as they reload. */
	kvm_tdp_mmu_put_root(kvm, root);
	return true;
}

/*
 * A root is replaced by a new kvm_mmu_page, added at the head of the list of
 * roots. A walker that yields mmu_lock (tdp_mmu_iter_cond_resched()) resumes
 * on the root it started from, emptied by then, and goes on to the next in
 * the list: it never visits the new root, and what it was to zap or
 * write-protect survives there (a guest mapping of memory the host frees).
 * So a root moves only while no such walker can be in flight:
 * - zaps for MMU-notifier invalidations, and kvm_zap_gfn_range()'s, run
 *   between kvm_mmu_invalidate_begin() and _end(): the caller checks
 *   mmu_invalidate_in_progress under mmu_lock and defers the move;
 * - memslot updates and the dirty-log walks (write-protecting, clearing
 *   dirty bits, splitting and recovering huge pages) run under slots_lock,
 *   which this takes, or gives up the roots of this pass;
 * - the zap of everything at ->release comes at the mm's exit, which a
 *   reference to the mm holds off, or once the VM is dying (the work is
 *   stopped then).
 * Returns with both held, or false.
 */
static bool tdp_migrate_roots_begin(struct kvm_tdp_migrate *m)
{
	struct kvm *kvm = m->kvm;

	if (!mmget_not_zero(kvm->mm)) {
		m->roots_deferred++;
		return false;
	}
	if (!mutex_trylock(&kvm->slots_lock)) {
		mmput_async(kvm->mm);
		m->roots_deferred++;
		return false;
	}
	return true;
}

static void tdp_migrate_roots_end(struct kvm_tdp_migrate *m)
{
	mutex_unlock(&m->kvm->slots_lock);
	/* Never the exit of the mm from this work: the last reference goes async. */
	mmput_async(m->kvm->mm);
}

/*
 * The valid root after @prev in the list (the first if @prev is NULL), with
 * a reference taken; drops @prev's. A referenced root stays on the list, so
 * the walk goes on from it; roots that moves add at the head meanwhile wait
 * for the next pass.
 */
static struct kvm_mmu_page *tdp_migrate_next_root(struct kvm *kvm,
						  struct kvm_mmu_page *prev)
{
	struct kvm_mmu_page *root;

	read_lock(&kvm->mmu_lock);
	rcu_read_lock();
	if (prev)
		root = list_next_or_null_rcu(&kvm->arch.tdp_mmu_roots, &prev->link,
					     typeof(*prev), link);
	else
		root = list_first_or_null_rcu(&kvm->arch.tdp_mmu_roots,
					      typeof(*prev), link);
	while (root && (root->role.invalid || !kvm_tdp_mmu_get_root(root)))
		root = list_next_or_null_rcu(&kvm->arch.tdp_mmu_roots, &root->link,
					     typeof(*root), link);
	rcu_read_unlock();
	if (prev)
		kvm_tdp_mmu_put_root(kvm, prev);
	read_unlock(&kvm->mmu_lock);
	return root;
}

/* One pass over every valid root; returns the number of tables moved. */
static unsigned int tdp_migrate_pass(struct kvm_tdp_migrate *m, unsigned int budget)
{
	struct kvm_mmu_page *root = NULL;
	struct kvm *kvm = m->kvm;
	unsigned int left = budget;
	struct mem_cgroup *memcg, *old_memcg;
	int level, i;

	lockdep_assert_held(&m->lock);

	/* Charge the new tables to the VM's owner, as faults do. */
	memcg = get_mem_cgroup_from_mm(kvm->mm);
	old_memcg = set_active_memcg(memcg);

	m->pass_reads = 0;
	for (i = 0; i < BITS_TO_LONGS(TDP_MIGRATE_RANGES); i++)
		m->todo[i] |= xchg(&m->changed[i], 0);

	while ((root = tdp_migrate_next_root(kvm, root))) {
		gfn_t from = 0, stop = 0;

		level = PG_LEVEL_4K;
		if (root == m->resume_root) {
			level = m->resume_level;
			from = m->resume_gfn;
		}
		for (; level < root->role.level && left; level++, from = 0)
			left = tdp_migrate_ranges(m, root, level, from, left, &stop);
		if (!left) {
			/* @level went one past the level that used the budget up. */
			if (!m->resume_root || m->resume_root == root) {
				m->resume_root = root;
				m->resume_level = level - 1;
				m->resume_gfn = stop;
			}
			continue;
		}
		if (root == m->resume_root)
			m->resume_root = NULL;

		if (!tdp_migrate_roots_begin(m))
			continue;
		write_lock(&kvm->mmu_lock);
		/* The SPTEs of TDP tables are read under RCU, mmu_lock or not. */
		rcu_read_lock();
		if (!root->role.invalid) {
			u64 t0 = ktime_get_ns();
			int nid;

			m->scanned[root->role.level]++;
			nid = tdp_target_node(m, root);
			if (nid != NUMA_NO_NODE && nid != sp_nid(root)) {
				if (kvm->mmu_invalidate_in_progress)
					m->roots_deferred++;
				else if (tdp_migrate_root(m, root, nid))
					left--;
			}
			tdp_migrate_hold_end(m, t0);
		}
		rcu_read_unlock();
		write_unlock(&kvm->mmu_lock);
		tdp_migrate_roots_end(m);
	}

	set_active_memcg(old_memcg);
	mem_cgroup_put(memcg);
	m->passes++;
	m->reads_total += m->pass_reads;
	m->last_pass_reads = m->pass_reads;
	return budget - left;
}

static void tdp_migrate_work(struct work_struct *work)
{
	struct kvm_tdp_migrate *m = container_of(to_delayed_work(work),
						 struct kvm_tdp_migrate, work);
	unsigned int moved;

	if (!READ_ONCE(tdp_migration))
		return;
	mutex_lock(&m->lock);
	/* A kick that raced with kvm_tdp_migrate_pre_destroy(): the vCPUs may be gone. */
	if (m->dying) {
		mutex_unlock(&m->lock);
		return;
	}
	moved = tdp_migrate_pass(m, max(READ_ONCE(tdp_migration_batch), 1U));
	/*
	 * Keep going while there is work, then a while for refaults to settle;
	 * then forget the ranges: a kick notes those it invalidates anew.
	 */
	if (moved || m->linger) {
		if (!moved)
			m->linger--;
		queue_delayed_work(system_unbound_wq, &m->work,
				   msecs_to_jiffies(READ_ONCE(tdp_migration_period_ms)));
	} else {
		bitmap_zero(m->todo, TDP_MIGRATE_RANGES);
	}
	mutex_unlock(&m->lock);
}

void __kvm_tdp_migrate_kick(struct kvm *kvm, gfn_t start, gfn_t end)
{
	struct kvm_tdp_migrate *m = kvm->arch.tdp_migrate;
	unsigned long r, last;

	/* Unlocked: tdp_migrate_work() rechecks @dying under the lock. */
	if (!m || READ_ONCE(m->dying) || start >= end)
		return;
	/* One bit per GiB invalidated; the test keeps the cache line shared. */
	last = min_t(gfn_t, (end - 1) >> TDP_MIGRATE_RANGE_SHIFT, TDP_MIGRATE_RANGES - 1);
	for (r = min_t(gfn_t, start >> TDP_MIGRATE_RANGE_SHIFT, last); r <= last; r++)
		if (!test_bit(r, m->changed))
			set_bit(r, m->changed);
	/* Racy on purpose: a kick lost to a concurrent pass only shortens lingering. */
	WRITE_ONCE(m->linger, READ_ONCE(tdp_migration_linger));
	WRITE_ONCE(m->kicks, m->kicks + 1);
	queue_delayed_work(system_unbound_wq, &m->work,
			   msecs_to_jiffies(READ_ONCE(tdp_migration_period_ms)));
}

void kvm_tdp_migrate_init(struct kvm *kvm)
{
	struct kvm_tdp_migrate *m;

	/* Without it the VM simply never migrates its tables. */
	m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);
	if (!m)
		return;
	m->node_count = kcalloc(nr_node_ids, sizeof(*m->node_count), GFP_KERNEL_ACCOUNT);
	if (!m->node_count) {
		kfree(m);
		return;
	}
	m->kvm = kvm;
	mutex_init(&m->lock);
	INIT_DELAYED_WORK(&m->work, tdp_migrate_work);
	kvm->arch.tdp_migrate = m;
}

/*
 * The VM is being destroyed: stop the work before kvm_destroy_vcpus() frees
 * the vCPUs that its TLB flushes and root reloads reach
 * (kvm_make_all_cpus_request()). The MMU notifier can still kick until it is
 * unregistered; such a work item finds @dying and does nothing.
 */
void kvm_tdp_migrate_pre_destroy(struct kvm *kvm)
{
	struct kvm_tdp_migrate *m = kvm->arch.tdp_migrate;

	if (!m)
		return;
	mutex_lock(&m->lock);
	WRITE_ONCE(m->dying, true);
	mutex_unlock(&m->lock);
	cancel_delayed_work_sync(&m->work);
}

void kvm_tdp_migrate_uninit(struct kvm *kvm)
{
	struct kvm_tdp_migrate *m = kvm->arch.tdp_migrate;

	if (!m)
		return;
	/*
	 * The MMU notifier is gone: nothing can kick the work any more, but
	 * a kick since kvm_tdp_migrate_pre_destroy() may have queued it.
	 */
	cancel_delayed_work_sync(&m->work);
	kvm->arch.tdp_migrate = NULL;
	kfree(m->node_count);
	kfree(m);
}

static int tdp_migrate_show(struct seq_file *s, void *v)
{
	struct kvm *kvm = s->private;
	struct kvm_tdp_migrate *m = kvm->arch.tdp_migrate;
	int level;

	if (!m)
		return -ENODEV;
	mutex_lock(&m->lock);
	seq_printf(s, "enabled %d\n", READ_ONCE(tdp_migration));
	seq_printf(s, "passes %llu\nkicks %llu\npending %d\n", m->passes, m->kicks,
		   delayed_work_pending(&m->work));
	for (level = PG_LEVEL_4K; level <= PT64_ROOT_MAX_LEVEL; level++)
		seq_printf(s, "level %d scanned %llu migrated %llu\n", level,
			   m->scanned[level], m->migrated[level]);
	seq_printf(s, "roots_migrated %llu\nroots_deferred %llu\n", m->roots_migrated,
		   m->roots_deferred);
	seq_printf(s, "alloc_failed %llu\nflushes %llu\n", m->alloc_failed, m->flushes);
	seq_printf(s, "max_lock_hold_ns %llu\nlast_lock_hold_ns %llu\n",
		   m->max_hold_ns, m->last_hold_ns);
	seq_printf(s, "max_lock_hold_reads %llu\n", m->max_hold_reads);
	seq_printf(s, "reads %llu\nlast_pass_reads %llu\nranges_to_scan %u\n",
		   m->reads_total, m->last_pass_reads,
		   bitmap_weight(m->todo, TDP_MIGRATE_RANGES));
	mutex_unlock(&m->lock);
	return 0;
}

/* Writing runs passes now, whatever the parameter, until one moves nothing. */
static ssize_t tdp_migrate_write(struct file *file, const char __user *buf,
				 size_t len, loff_t *ppos)
{
	struct kvm *kvm = file_inode(file)->i_private;
	struct kvm_tdp_migrate *m = kvm->arch.tdp_migrate;
	unsigned int passes = 0;
	bool run;
	int r;

	r = kstrtobool_from_user(buf, len, &run);
	if (r)
		return r;
	if (!m)
		return -ENODEV;
	if (!run)
		return len;
	mutex_lock(&m->lock);
	m->scan_all = true;
	m->resume_root = NULL;
	while (tdp_migrate_pass(m, UINT_MAX) && ++passes < 16)
		cond_resched();
	m->scan_all = false;
	mutex_unlock(&m->lock);
	return len;
}

static int tdp_migrate_open(struct inode *inode, struct file *file)
{
	struct kvm *kvm = inode->i_private;
	int r;

	if (!kvm_get_kvm_safe(kvm))
		return -ENOENT;
	r = single_open(file, tdp_migrate_show, kvm);
	if (r)
		kvm_put_kvm(kvm);
	return r;
}

static int tdp_migrate_release(struct inode *inode, struct file *file)
{
	kvm_put_kvm(inode->i_private);
	return single_release(inode, file);
}

static const struct file_operations tdp_migrate_fops = {
	.owner		= THIS_MODULE,
	.open		= tdp_migrate_open,
	.read		= seq_read,
	.write		= tdp_migrate_write,
	.llseek		= seq_lseek,
	.release	= tdp_migrate_release,
};

void kvm_tdp_migrate_create_debugfs(struct kvm *kvm)
{
	if (kvm->arch.tdp_migrate)
		debugfs_create_file("tdp_migrate", 0600, kvm->debugfs_dentry, kvm,
				    &tdp_migrate_fops);
}
