/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef __KVM_X86_MMU_TDP_MIGRATE_H
#define __KVM_X86_MMU_TDP_MIGRATE_H

#include <linux/jump_label.h>

#include <linux/kvm_types.h>
#include <linux/numa.h>

struct kvm;
struct kvm_vcpu;

#ifdef CONFIG_KVM_TDP_MIGRATION
DECLARE_STATIC_KEY_FALSE(kvm_tdp_migrate_key);

void kvm_tdp_placement_vcpu_init(struct kvm_vcpu *vcpu);
void kvm_tdp_placement_vcpu_free(struct kvm_vcpu *vcpu);
void __kvm_tdp_placement_prepare(struct kvm_vcpu *vcpu, kvm_pfn_t pfn);
void *__kvm_tdp_placement_alloc(struct kvm_vcpu *vcpu);

/*
 * Before a TDP fault takes mmu_lock: the tables it may allocate go to the
 * node of the page it maps (see tdp_migrate.c). Sleeps to fill that node's
 * cache, as mmu_topup_memory_caches() does.
 */
static inline void kvm_tdp_placement_prepare(struct kvm_vcpu *vcpu, kvm_pfn_t pfn)
{
	if (static_branch_unlikely(&kvm_tdp_migrate_key))
		__kvm_tdp_placement_prepare(vcpu, pfn);
}

static inline void kvm_tdp_placement_done(struct kvm_vcpu *vcpu)
{
	if (static_branch_unlikely(&kvm_tdp_migrate_key))
		vcpu->arch.mmu_pt_node = NUMA_NO_NODE;
}

/* A table page for the fault being handled, or NULL for the vCPU's default cache. */
static inline void *kvm_tdp_placement_alloc(struct kvm_vcpu *vcpu)
{
	if (!static_branch_unlikely(&kvm_tdp_migrate_key) ||
	    vcpu->arch.mmu_pt_node == NUMA_NO_NODE)
		return NULL;
	return __kvm_tdp_placement_alloc(vcpu);
}
#else
static inline void kvm_tdp_placement_vcpu_init(struct kvm_vcpu *vcpu) { }
static inline void kvm_tdp_placement_vcpu_free(struct kvm_vcpu *vcpu) { }
static inline void kvm_tdp_placement_prepare(struct kvm_vcpu *vcpu, kvm_pfn_t pfn) { }
static inline void kvm_tdp_placement_done(struct kvm_vcpu *vcpu) { }
static inline void *kvm_tdp_placement_alloc(struct kvm_vcpu *vcpu) { return NULL; }
#endif

#endif /* __KVM_X86_MMU_TDP_MIGRATE_H */
