// SPDX-License-Identifier: GPL-2.0-only
/*
 * Where the TDP MMU's page tables live, per NUMA node.
 *
 * Two files in each VM's debugfs directory:
 *
 *   tdp_pt_nodes  for every valid TDP root, its table pages by level and node
 *                 (the root included), and the root each vCPU uses;
 *   tdp_pt_dump   every table page and every leaf SPTE with the node that
 *                 holds it, from which a software walker rebuilds the node of
 *                 every access of a walk (Documentation/vmitosis/pt-info.rst).
 *
 * Both only read SPTEs, under RCU, as the lockless fast page fault path does:
 * a table unlinked by a concurrent zap is freed only after a grace period, so
 * nothing read here is reused underneath the reader. mmu_lock is not taken,
 * so readers never hold up faults, zaps or MMU-notifier invalidations; what
 * they report is a snapshot that may mix states from before and after a
 * concurrent change. Both walk a bounded batch of SPTEs per RCU read-side
 * section and resume by GFN, so neither their memory nor the time RCU is
 * held grows with the size of the VM.
 */
#include <linux/debugfs.h>
#include <linux/kvm_host.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "mmu.h"
#include "mmu_internal.h"
#include "spte.h"
#include "tdp_iter.h"
#include "tdp_numa.h"

/* SPTEs visited per record of tdp_pt_dump, present or not. */
#define TDP_DUMP_BATCH	256

/* 2M-level SPTEs tdp_pt_nodes counts per RCU read-side section (8 GiB of guest). */
#define TDP_NODES_BATCH	4096

/* Roots told apart in tdp_pt_nodes' vCPU lines; more are counted but not named. */
#define TDP_NODES_MAX_ROOTS	64

static int tdp_pt_node(kvm_pfn_t pfn)
{
	return pfn_valid(pfn) ? page_to_nid(pfn_to_page(pfn)) : NUMA_NO_NODE;
}

static int tdp_root_node(struct kvm_mmu_page *root)
{
	return page_to_nid(virt_to_page(root->spt));
}

static bool tdp_spte_is_table(u64 spte, int level)
{
	return is_shadow_present_pte(spte) && !is_last_spte(spte, level);
}

/* The next valid root after @root (the first with NULL), under RCU. */
static struct kvm_mmu_page *tdp_next_valid_root(struct kvm *kvm, struct kvm_mmu_page *root)
{
	root = root ? list_next_or_null_rcu(&kvm->arch.tdp_mmu_roots, &root->link,
					    struct kvm_mmu_page, link)
		    : list_first_or_null_rcu(&kvm->arch.tdp_mmu_roots,
					     struct kvm_mmu_page, link);
	while (root && root->role.invalid)
		root = list_next_or_null_rcu(&kvm->arch.tdp_mmu_roots, &root->link,
					     struct kvm_mmu_page, link);
	return root;
}

static struct kvm_mmu_page *tdp_find_root(struct kvm *kvm, hpa_t hpa)
{
	struct kvm_mmu_page *root;

	list_for_each_entry_rcu(root, &kvm->arch.tdp_mmu_roots, link)
		if (!root->role.invalid && __pa(root->spt) == hpa)
			return root;
	return NULL;
}

static int tdp_pt_nodes_show(struct seq_file *m, void *v)
{
	hpa_t roots[TDP_NODES_MAX_ROOTS];
	unsigned long *count;
	struct kvm *kvm = m->private;
	struct kvm_mmu_page *root;
	struct kvm_vcpu *vcpu;
	struct tdp_iter iter;
	int nr_roots = 0, level, nid;
	unsigned long i;

	seq_puts(m, "# root <id> level <level> node <node> as_id <id>\n");
	seq_puts(m, "# root <id> tables level <level>: <count on node 0> <node 1> ...\n");
	seq_puts(m, "# vcpu <id> root <id>|none\n");
	seq_printf(m, "nodes %d\n", nr_node_ids);
	if (!tdp_mmu_enabled)
		return 0;

	/* count[level * nr_node_ids + nid] */
	count = kcalloc((PT64_ROOT_MAX_LEVEL + 1) * nr_node_ids, sizeof(*count), GFP_KERNEL);
	if (!count)
		return -ENOMEM;

	rcu_read_lock();
	for (root = tdp_next_valid_root(kvm, NULL); root; root = tdp_next_valid_root(kvm, root)) {
		gfn_t start = 0, end = kvm_mmu_max_gfn() + 1;
		hpa_t hpa = __pa(root->spt);

		memset(count, 0, (PT64_ROOT_MAX_LEVEL + 1) * nr_node_ids * sizeof(*count));
		count[root->role.level * nr_node_ids + tdp_root_node(root)]++;
		/*
		 * Tables are what 2M-level and higher non-leaf SPTEs point to.
		 * RCU is dropped after every TDP_NODES_BATCH 2M-level SPTEs, and
		 * the walk resumes at the first one not counted; the upper SPTEs
		 * on the way down to it were counted already.
		 */
		for (;;) {
			gfn_t next = end;
			int visited = 0;

			for_each_tdp_pte_min_level(iter, root, PG_LEVEL_2M, start, end) {
				if (start && iter.level > PG_LEVEL_2M && iter.gfn <= start)
					continue;
				if (iter.level == PG_LEVEL_2M && ++visited > TDP_NODES_BATCH) {
					next = iter.gfn;
					break;
				}
				if (tdp_spte_is_table(iter.old_spte, iter.level))
					count[(iter.level - 1) * nr_node_ids +
					      tdp_pt_node(spte_to_pfn(iter.old_spte))]++;
			}
			if (next >= end)
				break;
			start = next;
			rcu_read_unlock();
			cond_resched();
			rcu_read_lock();
			root = tdp_find_root(kvm, hpa);
			if (!root)
				break;
		}
		if (!root) {
			seq_printf(m, "# root %d was freed during the count\n", nr_roots);
			break;
		}
		if (nr_roots < TDP_NODES_MAX_ROOTS)
			roots[nr_roots] = __pa(root->spt);
		seq_printf(m, "root %d level %d node %d as_id %d\n", nr_roots, root->role.level,
			   tdp_root_node(root), kvm_mmu_page_as_id(root));
		for (level = root->role.level; level >= PG_LEVEL_4K; level--) {
			seq_printf(m, "root %d tables level %d:", nr_roots, level);
			for (nid = 0; nid < nr_node_ids; nid++)
				seq_printf(m, " %lu", count[level * nr_node_ids + nid]);
			seq_putc(m, '\n');
		}
		nr_roots++;
	}
	rcu_read_unlock();
	kfree(count);

	kvm_for_each_vcpu(i, vcpu, kvm) {
		hpa_t hpa = READ_ONCE(vcpu->arch.root_mmu.root.hpa);
		int r;

		for (r = 0; r < min(nr_roots, TDP_NODES_MAX_ROOTS); r++)
			if (roots[r] == hpa)
				break;
		if (r < min(nr_roots, TDP_NODES_MAX_ROOTS))
			seq_printf(m, "vcpu %d root %d\n", vcpu->vcpu_id, r);
		else
			seq_printf(m, "vcpu %d root none\n", vcpu->vcpu_id);
	}
	return 0;
}

/*
 * tdp_pt_dump is a sequence of records, each a batch of SPTEs of one root.
 * The cursor (root, gfn) of the record at position @pos is committed only by
 * ->next(), so that seq_file may show a record again when it had to grow its
 * buffer.
 */
struct tdp_dump {
	struct kvm *kvm;
	loff_t pos;		/* position the cursor belongs to */
	hpa_t root_hpa;		/* root of the record at @pos; INVALID_PAGE: first root */
	gfn_t gfn;		/* first GFN of the record at @pos */
	int root_id;
	bool end;
	/* cursor after the record shown last */
	hpa_t next_root_hpa;
	gfn_t next_gfn;
	int next_root_id;
	bool next_end;
};

static void *tdp_dump_start(struct seq_file *m, loff_t *pos)
{
	struct tdp_dump *d = m->private;

	rcu_read_lock();
	if (!*pos) {
		d->pos = 0;
		d->root_hpa = INVALID_PAGE;
		d->gfn = 0;
		d->root_id = 0;
		d->end = !tdp_mmu_enabled;
	} else if (*pos != d->pos) {
		return NULL;		/* only sequential reads, from the start */
	}
	return d->end ? NULL : d;
}

static int tdp_dump_show(struct seq_file *m, void *v)
{
	struct tdp_dump *d = v;
	struct kvm_mmu_page *root, *next;
	struct tdp_iter iter;
	gfn_t end = kvm_mmu_max_gfn() + 1;
	int visited = 0;

	if (!d->pos) {
		seq_puts(m, "# root <id> <level> <node> <as_id>\n");
		seq_puts(m, "# table <level> <first gfn> <node>\n");
		seq_puts(m, "# leaf <gfn> <level> <node of the backing page>\n");
	}

	root = d->root_hpa == INVALID_PAGE ? tdp_next_valid_root(d->kvm, NULL)
					   : tdp_find_root(d->kvm, d->root_hpa);
	if (!root) {
		/* No root, or the root went away since the last record. */
		if (d->root_hpa != INVALID_PAGE)
			seq_printf(m, "# root %d was freed during the dump\n", d->root_id);
		d->next_end = true;
		return 0;
	}
	if (!d->gfn)
		seq_printf(m, "root %d %d %d %d\n", d->root_id, root->role.level,
			   tdp_root_node(root), kvm_mmu_page_as_id(root));

	d->next_root_hpa = __pa(root->spt);
	d->next_root_id = d->root_id;
	d->next_end = false;
	for_each_tdp_pte(iter, root, d->gfn, end) {
		u64 spte = iter.old_spte;
		bool terminal = !tdp_spte_is_table(spte, iter.level);

		/* SPTEs above the resume point were shown with an earlier record. */
		if (iter.gfn < d->gfn)
			continue;
		if (!terminal)
			seq_printf(m, "table %d %#llx %d\n", iter.level - 1, iter.gfn,
				   tdp_pt_node(spte_to_pfn(spte)));
		else if (is_shadow_present_pte(spte))
			seq_printf(m, "leaf %#llx %d %d\n", iter.gfn, iter.level,
				   tdp_pt_node(spte_to_pfn(spte)));
		/* Stop only after a terminal SPTE: its range is then fully shown. */
		if (terminal && ++visited >= TDP_DUMP_BATCH) {
			d->next_gfn = iter.gfn + KVM_PAGES_PER_HPAGE(iter.level);
			if (d->next_gfn < end)
				return 0;
			break;
		}
	}

	/* This root is done: on to the next one. */
	next = tdp_next_valid_root(d->kvm, root);
	if (next) {
		d->next_root_hpa = __pa(next->spt);
		d->next_root_id = d->root_id + 1;
		d->next_gfn = 0;
	} else {
		d->next_end = true;
	}
	return 0;
}

static void *tdp_dump_next(struct seq_file *m, void *v, loff_t *pos)
{
	struct tdp_dump *d = v;

	d->root_hpa = d->next_root_hpa;
	d->gfn = d->next_gfn;
	d->root_id = d->next_root_id;
	d->end = d->next_end;
	d->pos = ++*pos;
	return d->end ? NULL : d;
}

static void tdp_dump_stop(struct seq_file *m, void *v)
{
	rcu_read_unlock();
}

static const struct seq_operations tdp_dump_sops = {
	.start	= tdp_dump_start,
	.next	= tdp_dump_next,
	.stop	= tdp_dump_stop,
	.show	= tdp_dump_show,
};

static int tdp_pt_dump_open(struct inode *inode, struct file *file)
{
	struct kvm *kvm = inode->i_private;
	struct tdp_dump *d;

	if (!kvm_get_kvm_safe(kvm))
		return -ENOENT;
	d = __seq_open_private(file, &tdp_dump_sops, sizeof(*d));
	if (!d) {
		kvm_put_kvm(kvm);
		return -ENOMEM;
	}
	d->kvm = kvm;
	return 0;
}

static int tdp_pt_dump_release(struct inode *inode, struct file *file)
{
	kvm_put_kvm(inode->i_private);
	return seq_release_private(inode, file);
}

static const struct file_operations tdp_pt_dump_fops = {
	.owner		= THIS_MODULE,
	.open		= tdp_pt_dump_open,
	.read		= seq_read,
	.llseek		= seq_lseek,
	.release	= tdp_pt_dump_release,
};

static int tdp_pt_nodes_open(struct inode *inode, struct file *file)
{
	struct kvm *kvm = inode->i_private;
	int r;

	if (!kvm_get_kvm_safe(kvm))
		return -ENOENT;
	r = single_open(file, tdp_pt_nodes_show, kvm);
	if (r)
		kvm_put_kvm(kvm);
	return r;
}

static int tdp_pt_nodes_release(struct inode *inode, struct file *file)
{
	kvm_put_kvm(inode->i_private);
	return single_release(inode, file);
}

static const struct file_operations tdp_pt_nodes_fops = {
	.owner		= THIS_MODULE,
	.open		= tdp_pt_nodes_open,
	.read		= seq_read,
	.llseek		= seq_lseek,
	.release	= tdp_pt_nodes_release,
};

void kvm_tdp_numa_create_debugfs(struct kvm *kvm)
{
	debugfs_create_file("tdp_pt_nodes", 0400, kvm->debugfs_dentry, kvm, &tdp_pt_nodes_fops);
	debugfs_create_file("tdp_pt_dump", 0400, kvm->debugfs_dentry, kvm, &tdp_pt_dump_fops);
}
