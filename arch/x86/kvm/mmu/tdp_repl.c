// SPDX-License-Identifier: GPL-2.0-only
/*
 * ePT replication: per-node copies of KVM's TDP MMU tables, so that each
 * vCPU walks a copy on its own NUMA node (vMitosis). See
 * Documentation/vmitosis/ept-replication.rst.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/gfp.h>
#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/kvm_host.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/slab.h>

#include "tdp_repl.h"

/*
 * The arrays of copies, one per replicated table, come from their own cache.
 * Freeing one is the last step of freeing its table, after the RCU grace
 * period that lockless walkers of the table, and so of its copies, rely on.
 */
static struct kmem_cache *kvm_tdp_repl_pt_cache;

int kvm_tdp_repl_module_init(void)
{
	unsigned int nodes = min_t(unsigned int, nr_node_ids, KVM_TDP_REPL_MAX_NODES);

	kvm_tdp_repl_pt_cache = kmem_cache_create("kvm_tdp_repl_pt",
						  struct_size_t(struct kvm_tdp_repl_pt, spt, nodes),
						  0, SLAB_ACCOUNT, NULL);
	return kvm_tdp_repl_pt_cache ? 0 : -ENOMEM;
}

void kvm_tdp_repl_module_exit(void)
{
	kmem_cache_destroy(kvm_tdp_repl_pt_cache);
	kvm_tdp_repl_pt_cache = NULL;
}

void __kvm_tdp_repl_free_copies(struct kvm_mmu_page *sp)
{
	struct kvm_tdp_repl_pt *r = sp->tdp_repl;
	unsigned long copies = r->copies;
	int n;

	for_each_set_bit(n, &copies, KVM_TDP_REPL_MAX_NODES)
		free_page((unsigned long)r->spt[n]);
	kmem_cache_free(kvm_tdp_repl_pt_cache, r);
	sp->tdp_repl = NULL;
}

/*
 * A table's copies are secondary page tables of the nodes they are on, in
 * /proc/meminfo and each node's meminfo (SecPageTables), as the primary is.
 */
void __kvm_tdp_repl_account(struct kvm_mmu_page *sp, int delta)
{
	unsigned long copies = sp->tdp_repl->copies;
	int n;

	for_each_set_bit(n, &copies, KVM_TDP_REPL_MAX_NODES)
		kvm_account_pgtable_pages(sp->tdp_repl->spt[n], delta);
}

DEFINE_STATIC_KEY_FALSE(kvm_tdp_repl_key);

/* The value of node @n's copy of an entry whose primary value is @spte. */
static u64 tdp_repl_copy_value(u64 spte, int level, int n)
{
	struct kvm_mmu_page *child;
	struct kvm_tdp_repl_pt *cr;

	if (!is_shadow_present_pte(spte) || is_last_spte(spte, level))
		return spte;
	/*
	 * A link: node n's copy points to node n's copy of the child, or, if
	 * the child has none (not built yet, or its allocation failed), to
	 * the primary child, which translates the same (a fallback link).
	 */
	child = spte_to_child_sp(spte);
	cr = child->tdp_repl;
	if (!cr || !(cr->copies & BIT_ULL(n)))
		return spte;
	return (spte & ~SPTE_BASE_ADDR_MASK) | __pa(cr->spt[n]);
}

static bool tdp_repl_same_leaf(u64 a, u64 b, int level)
{
	return is_shadow_present_pte(a) && is_last_spte(a, level) &&
	       is_shadow_present_pte(b) && is_last_spte(b, level) &&
	       spte_to_pfn(a) == spte_to_pfn(b);
}

/**
 * __kvm_tdp_repl_fanout - write the copies of a primary SPTE
 * @sptep: the primary entry, just written from @old to @new
 * @old: its value before the write
 * @new: its value now
 * @level: the level of the entry
 * @clear: Accessed/Dirty bits that the writer clears (aging, dirty
 *	logging): copies lose them too; 0 for every other write
 * @ad: Accessed/Dirty bits that the CPU had set in the copies' old values
 *	of the same leaf are ORed into @ad->old, those that the copies keep
 *	into @ad->kept; the caller passes @old | @ad->old and
 *	@new | @ad->kept to handle_changed_spte(), so that a bit set in any
 *	copy is seen (never frame numbers: only bits of a copy that maps the
 *	same pfn are taken)
 *
 * Called in the same hold of mmu_lock as the primary write, before the
 * lock is released and before the caller's TLB flush, so that the copies
 * agree with the primary whenever mmu_lock is free and at every flush.
 * Writers that hold mmu_lock for read also hold the table's fan-out lock
 * (kvm_tdp_repl_lock()) around the primary write and this call.
 */
void __kvm_tdp_repl_fanout(tdp_ptep_t sptep, u64 old, u64 new, int level,
			   u64 clear, struct kvm_tdp_repl_ad *ad)
{
	u64 *primary = rcu_dereference(sptep);
	struct kvm_tdp_repl_pt *r = sptep_to_sp(primary)->tdp_repl;
	u64 ad_mask = shadow_accessed_mask | shadow_dirty_mask;
	int idx = spte_index(primary);
	unsigned long copies;
	int n;

	if (!r)
		return;
	copies = r->copies;
	for_each_set_bit(n, &copies, KVM_TDP_REPL_MAX_NODES) {
		u64 *csptep = &r->spt[n][idx];
		u64 cnew = tdp_repl_copy_value(new, level, n);
		u64 cold = READ_ONCE(*csptep);
		u64 keep;

		if (!is_shadow_present_pte(cold) || !is_last_spte(cold, level)) {
			/* The CPU writes no bit of a non-leaf entry that KVM reads. */
			WRITE_ONCE(*csptep, cnew);
			continue;
		}
		/*
		 * A present leaf: the CPU may set Accessed or Dirty in it at
		 * any time, through this copy's upper entries, so it is
		 * exchanged, never stored over.
		 */
		do {
			keep = 0;
			if (tdp_repl_same_leaf(cold, cnew, level))
				keep = cold & ad_mask & ~clear;
		} while (!try_cmpxchg64(csptep, &cold, cnew | keep));

		KVM_MMU_WARN_ON((cold ^ old) & ~ad_mask);
		if (tdp_repl_same_leaf(cold, old, level)) {
			ad->old |= cold & ad_mask;
			ad->kept |= keep;
		}
	}
}

/*
 * The Accessed and Dirty bits of a leaf SPTE as the CPU sees them: those of
 * the primary value @spte ORed with those of every copy that maps the same
 * pfn. For aging and dirty logging, under mmu_lock.
 */
u64 __kvm_tdp_repl_read_ad(tdp_ptep_t sptep, u64 spte, int level)
{
	u64 *primary = rcu_dereference(sptep);
	struct kvm_tdp_repl_pt *r = sptep_to_sp(primary)->tdp_repl;
	u64 ad_mask = shadow_accessed_mask | shadow_dirty_mask;
	int idx = spte_index(primary);
	u64 bits = spte & ad_mask;
	unsigned long copies;
	int n;

	if (!r)
		return bits;
	copies = r->copies;
	for_each_set_bit(n, &copies, KVM_TDP_REPL_MAX_NODES) {
		u64 c = READ_ONCE(r->spt[n][idx]);

		if (tdp_repl_same_leaf(c, spte, level))
			bits |= c & ad_mask;
	}
	return bits;
}

/*
 * Clear @mask (Accessed or Dirty) in every copy of a leaf whose primary the
 * caller clears; returns the bits that copies of the same pfn had set.
 */
u64 __kvm_tdp_repl_clear_bits(tdp_ptep_t sptep, u64 spte, u64 mask, int level)
{
	u64 *primary = rcu_dereference(sptep);
	struct kvm_tdp_repl_pt *r = sptep_to_sp(primary)->tdp_repl;
	int idx = spte_index(primary);
	unsigned long copies;
	u64 bits = 0;
	int n;

	if (!r)
		return 0;
	copies = r->copies;
	for_each_set_bit(n, &copies, KVM_TDP_REPL_MAX_NODES) {
		u64 *c = &r->spt[n][idx];
		u64 v = READ_ONCE(*c);

		if (!tdp_repl_same_leaf(v, spte, level))
			continue;
		v = (u64)atomic64_fetch_and(~mask, (atomic64_t *)c);
		bits |= v & mask;
	}
	return bits;
}

#define KVM_TDP_REPL_LOCKS	256

/* Per VM (kvm->arch.tdp_repl). */
struct kvm_tdp_repl {
	struct kvm *kvm;
	spinlock_t locks[KVM_TDP_REPL_LOCKS];	/* fan-out locks, hashed by table */
};

spinlock_t *__kvm_tdp_repl_lock(struct kvm *kvm, tdp_ptep_t sptep)
{
	unsigned long pt = (unsigned long)rcu_dereference(sptep) >> PAGE_SHIFT;

	return &kvm->arch.tdp_repl->locks[hash_long(pt, ilog2(KVM_TDP_REPL_LOCKS))];
}
