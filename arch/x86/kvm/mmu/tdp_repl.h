/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef __KVM_X86_MMU_TDP_REPL_H
#define __KVM_X86_MMU_TDP_REPL_H

#include <linux/compiler.h>
#include <linux/jump_label.h>
#include <linux/kvm_host.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include "mmu_internal.h"
#include "spte.h"

/*
 * ePT replication keeps one copy of each TDP MMU table per NUMA node that
 * runs vCPUs of the VM (Documentation/vmitosis/ept-replication.rst). The
 * struct kvm_mmu_page of a table stays the one the TDP MMU knows: sp->spt is
 * the primary copy, the only one that software walks (tdp_iter, the root
 * list, the frozen-SPTE protocol), and it is the copy of the VM's home node.
 * The copies of the other nodes hang off sp->tdp_repl and are read by the
 * hardware only; they are freed with the table, after the same RCU grace
 * period, and accounted with it as secondary page tables of their node.
 *
 * Node ids above KVM_TDP_REPL_MAX_NODES - 1 get no copy.
 */
#define KVM_TDP_REPL_MAX_NODES	64

struct kvm_tdp_repl_pt {
	u64 copies;		/* bit n: spt[n] is a page on node n */
	u64 loadable;		/* roots only: complete copies vCPUs may load */
	u64 *spt[];		/* indexed by node; NULL where bit n of copies is clear */
};

/*
 * Accessed/Dirty bits that the CPU set in the copies of an entry being
 * written (see __kvm_tdp_repl_fanout()).
 */
struct kvm_tdp_repl_ad {
	u64 old;	/* in the copies' old values */
	u64 kept;	/* kept by the copies in their new values */
};

#ifdef CONFIG_KVM_TDP_REPLICATION
DECLARE_STATIC_KEY_FALSE(kvm_tdp_repl_key);

void __kvm_tdp_repl_fanout(tdp_ptep_t sptep, u64 old, u64 new, int level,
			   u64 clear, struct kvm_tdp_repl_ad *ad);
u64 __kvm_tdp_repl_read_ad(tdp_ptep_t sptep, u64 spte, int level);
u64 __kvm_tdp_repl_clear_bits(tdp_ptep_t sptep, u64 spte, u64 mask, int level);
spinlock_t *__kvm_tdp_repl_lock(struct kvm *kvm, tdp_ptep_t sptep);

/* Whether @kvm keeps copies of its TDP tables: a patched-out branch for most. */
static __always_inline bool kvm_tdp_repl_on(struct kvm *kvm)
{
	return static_branch_unlikely(&kvm_tdp_repl_key) && kvm->arch.tdp_repl;
}

/*
 * Every write of a TDP MMU SPTE goes through here, right after the primary
 * write and under the same locks (__kvm_tdp_repl_fanout()).
 */
static __always_inline void kvm_tdp_repl_fanout(struct kvm *kvm, tdp_ptep_t sptep,
						u64 old, u64 new, int level, u64 clear,
						struct kvm_tdp_repl_ad *ad)
{
	if (kvm_tdp_repl_on(kvm))
		__kvm_tdp_repl_fanout(sptep, old, new, level, clear, ad);
}

static __always_inline u64 kvm_tdp_repl_read_ad(struct kvm *kvm, tdp_ptep_t sptep,
						u64 spte, int level)
{
	if (kvm_tdp_repl_on(kvm))
		return __kvm_tdp_repl_read_ad(sptep, spte, level);
	return spte & (shadow_accessed_mask | shadow_dirty_mask);
}

static __always_inline u64 kvm_tdp_repl_clear_bits(struct kvm *kvm, tdp_ptep_t sptep,
						   u64 spte, u64 mask, int level)
{
	if (kvm_tdp_repl_on(kvm))
		return __kvm_tdp_repl_clear_bits(sptep, spte, mask, level);
	return 0;
}

/*
 * The fan-out lock of the table holding @sptep, for writers that hold
 * mmu_lock for read: held around "write the primary, then the copies", it
 * orders them per table, so that the copies end on the primary's last
 * value. NULL when @kvm keeps no copies.
 */
static __always_inline spinlock_t *kvm_tdp_repl_lock(struct kvm *kvm, tdp_ptep_t sptep)
{
	if (kvm_tdp_repl_on(kvm))
		return __kvm_tdp_repl_lock(kvm, sptep);
	return NULL;
}

static inline void tdp_repl_spin_lock(spinlock_t *l)
{
	if (l)
		spin_lock(l);
}

static inline void tdp_repl_spin_unlock(spinlock_t *l)
{
	if (l)
		spin_unlock(l);
}

void __kvm_tdp_repl_free_copies(struct kvm_mmu_page *sp);
void __kvm_tdp_repl_account(struct kvm_mmu_page *sp, int delta);
int kvm_tdp_repl_module_init(void);
void kvm_tdp_repl_module_exit(void);

/*
 * Behind the key too: it is raised before a VM's first copy exists and
 * dropped only once its last table is freed (kvm_tdp_repl_uninit_vm()).
 */
static __always_inline void kvm_tdp_repl_free_copies(struct kvm_mmu_page *sp)
{
	if (static_branch_unlikely(&kvm_tdp_repl_key) && sp->tdp_repl)
		__kvm_tdp_repl_free_copies(sp);
}

static __always_inline void kvm_tdp_repl_account(struct kvm_mmu_page *sp, int delta)
{
	if (static_branch_unlikely(&kvm_tdp_repl_key) && sp->tdp_repl)
		__kvm_tdp_repl_account(sp, delta);
}
#else
static inline bool kvm_tdp_repl_on(struct kvm *kvm) { return false; }
static inline void kvm_tdp_repl_fanout(struct kvm *kvm, tdp_ptep_t sptep, u64 old, u64 new,
				       int level, u64 clear, struct kvm_tdp_repl_ad *ad) { }
static inline u64 kvm_tdp_repl_read_ad(struct kvm *kvm, tdp_ptep_t sptep, u64 spte, int level)
{
	return spte & (shadow_accessed_mask | shadow_dirty_mask);
}

static inline u64 kvm_tdp_repl_clear_bits(struct kvm *kvm, tdp_ptep_t sptep, u64 spte,
					  u64 mask, int level)
{
	return 0;
}

static inline spinlock_t *kvm_tdp_repl_lock(struct kvm *kvm, tdp_ptep_t sptep) { return NULL; }
static inline void tdp_repl_spin_lock(spinlock_t *l) { }
static inline void tdp_repl_spin_unlock(spinlock_t *l) { }
static inline int kvm_tdp_repl_module_init(void) { return 0; }
static inline void kvm_tdp_repl_module_exit(void) { }
static inline void kvm_tdp_repl_free_copies(struct kvm_mmu_page *sp) { }
static inline void kvm_tdp_repl_account(struct kvm_mmu_page *sp, int delta) { }
#endif

#endif /* __KVM_X86_MMU_TDP_REPL_H */
