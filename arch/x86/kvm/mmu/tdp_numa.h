/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef __KVM_X86_MMU_TDP_NUMA_H
#define __KVM_X86_MMU_TDP_NUMA_H

struct kvm;

#ifdef CONFIG_VMITOSIS_PT_INFO
void kvm_tdp_numa_create_debugfs(struct kvm *kvm);
#else
static inline void kvm_tdp_numa_create_debugfs(struct kvm *kvm) { }
#endif

#endif /* __KVM_X86_MMU_TDP_NUMA_H */
