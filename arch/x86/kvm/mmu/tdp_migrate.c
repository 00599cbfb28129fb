// SPDX-License-Identifier: GPL-2.0-only
/*
 * Placement of TDP (EPT/NPT) page-table pages on the NUMA node of what they
 * map, so that two-dimensional walks stay local.
 *
 * KVM allocates a TDP table page from the vCPU's cache, on the node of the
 * vCPU thread that faulted first, and never moves it: a VM whose vCPUs fault
 * from one node and whose memory is on another walks remote tables. With
 * kvm.tdp_migration on, a TDP fault allocates the tables it needs on the
 * node of the page it maps. Documentation/vmitosis/ept-migration.rst has the
 * rest.
 */
#include <linux/kvm_host.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>

#include "mmu.h"
#include "mmu_internal.h"
#include "tdp_migrate.h"

DEFINE_STATIC_KEY_FALSE(kvm_tdp_migrate_key);

static bool tdp_migration;

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
MODULE_PARM_DESC(tdp_migration, "Allocate TDP page tables on the node of the memory they map");

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
