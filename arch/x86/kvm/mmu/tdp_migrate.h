/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef __KVM_X86_MMU_TDP_MIGRATE_H
#define __KVM_X86_MMU_TDP_MIGRATE_H

#include <linux/jump_label.h>

struct kvm;

#ifdef CONFIG_VMITOSIS_EPT_MIGRATION
DECLARE_STATIC_KEY_FALSE(kvm_tdp_migrate_key);

void kvm_tdp_migrate_init(struct kvm *kvm);
void kvm_tdp_migrate_uninit(struct kvm *kvm);
void kvm_tdp_migrate_create_debugfs(struct kvm *kvm);
void __kvm_tdp_migrate_kick(struct kvm *kvm);

/*
 * Guest memory was unmapped or moved (MMU-notifier invalidation: NUMA
 * balancing, migrate_pages(2), reclaim, ...): the TDP tables that map it may
 * now be on the wrong node. Costs a patched-out branch while ept_migration
 * is off.
 */
static inline void kvm_tdp_migrate_kick(struct kvm *kvm)
{
	if (static_branch_unlikely(&kvm_tdp_migrate_key))
		__kvm_tdp_migrate_kick(kvm);
}
#else
static inline void kvm_tdp_migrate_init(struct kvm *kvm) { }
static inline void kvm_tdp_migrate_uninit(struct kvm *kvm) { }
static inline void kvm_tdp_migrate_create_debugfs(struct kvm *kvm) { }
static inline void kvm_tdp_migrate_kick(struct kvm *kvm) { }
#endif

#endif /* __KVM_X86_MMU_TDP_MIGRATE_H */
