// SPDX-License-Identifier: GPL-2.0-only
/*
 * /proc/<pid>/pt_nodes and /proc/<pid>/pt_dump: where a process's page tables
 * live, per NUMA node (Documentation/vmitosis/pt-info.rst).
 *
 * Both walk the process's page tables with walk_page_range() under
 * mmap_read_lock, as smaps does: huge leaves are read under their PMD lock
 * and never split, PTE tables under their PTE lock. The dump is produced a
 * bounded number of lines at a time and resumes by virtual address, the way
 * /proc/<pid>/maps resumes by VMA, so its memory does not grow with the size
 * of the process. Physical addresses are shown, so opening either file needs
 * CAP_SYS_ADMIN on top of the ptrace access that /proc/<pid>/pagemap needs.
 */
#include <linux/capability.h>
#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/pagewalk.h>
#include <linux/ptrace.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "internal.h"

/* Lines of pt_dump per record: a record ends at the first PMD boundary past it. */
#define PT_DUMP_BATCH	256

/* Page-table levels, as in the dump: 1 holds 4K leaves, 5 is a 5-level PGD. */
#define PT_LEVELS	5

struct pt_walk {
	struct seq_file *m;		/* NULL: count only */
	unsigned long *count;		/* [level * nr_node_ids + nid] */
	unsigned long last[PT_LEVELS + 1];	/* last table shown per level (pfn) */
	unsigned int lines;
	unsigned long stop_at;		/* next address, when the batch is full */
};

static int pt_page_node(unsigned long pfn)
{
	return pfn_valid(pfn) ? page_to_nid(pfn_to_page(pfn)) : NUMA_NO_NODE;
}

/* A table page, the first time the walk meets it: one line, or one count. */
static void pt_table(struct pt_walk *w, int level, unsigned long addr, const void *entry)
{
	unsigned long pfn = page_to_pfn(virt_to_page(entry));
	int nid = page_to_nid(virt_to_page(entry));

	if (w->last[level] == pfn)
		return;
	w->last[level] = pfn;
	if (w->count) {
		w->count[level * nr_node_ids + nid]++;
		return;
	}
	/* The first address the table maps: @addr aligned to the table's span. */
	addr &= ~((1UL << (PAGE_SHIFT + 9 * level)) - 1);
	seq_printf(w->m, "table %d %#lx %#lx %d\n", level, addr, pfn, nid);
	w->lines++;
}

static void pt_leaf(struct pt_walk *w, int level, unsigned long addr, unsigned long pfn)
{
	if (w->count)
		return;
	seq_printf(w->m, "leaf %#lx %d %#lx %d\n", addr, level, pfn, pt_page_node(pfn));
	w->lines++;
}

static int pt_p4d_entry(p4d_t *p4d, unsigned long addr, unsigned long next,
			struct mm_walk *walk)
{
	/* With 4-level paging the P4D is folded into the PGD. */
	if (pgtable_l5_enabled())
		pt_table(walk->private, 4, addr, p4d);
	return 0;
}

static int pt_pud_entry(pud_t *pud, unsigned long addr, unsigned long next,
			struct mm_walk *walk)
{
	pud_t val = READ_ONCE(*pud);

	pt_table(walk->private, 3, addr, pud);
	if (pud_present(val) && pud_leaf(val)) {
		pt_leaf(walk->private, 3, addr, pud_pfn(val));
		/* Huge PUDs are reported, not split. */
		walk->action = ACTION_CONTINUE;
	}
	return 0;
}

static int pt_pmd_entry(pmd_t *pmd, unsigned long addr, unsigned long next,
			struct mm_walk *walk)
{
	struct pt_walk *w = walk->private;
	struct vm_area_struct *vma = walk->vma;
	spinlock_t *ptl;	/* of the huge PMD, or of the PTE table */
	pte_t *start, *pte;
	unsigned long a;

	pt_table(w, 2, addr, pmd);
	ptl = pmd_trans_huge_lock(pmd, vma);
	if (ptl) {
		if (pmd_present(*pmd))
			pt_leaf(w, 2, addr, pmd_pfn(*pmd));
		spin_unlock(ptl);
		goto done;
	}

	start = pte_offset_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start) {
		/* The PTE table went away (khugepaged): look at the PMD again. */
		walk->action = ACTION_AGAIN;
		return 0;
	}
	pt_table(w, 1, addr, start);
	for (pte = start, a = addr; a != next; pte++, a += PAGE_SIZE) {
		pte_t val = ptep_get(pte);

		if (pte_present(val))
			pt_leaf(w, 1, a, pte_pfn(val));
	}
	pte_unmap_unlock(start, ptl);
done:
	/* Everything below this PMD is done: the walker must not split or descend. */
	walk->action = ACTION_CONTINUE;
	if (w->m && w->lines >= PT_DUMP_BATCH) {
		w->stop_at = next;
		return 1;
	}
	return 0;
}

#ifdef CONFIG_HUGETLB_PAGE
static int pt_hugetlb_entry(pte_t *pte, unsigned long hmask, unsigned long addr,
			    unsigned long next, struct mm_walk *walk)
{
	struct pt_walk *w = walk->private;
	unsigned long size = huge_page_size(hstate_vma(walk->vma));
	int level = size >= PUD_SIZE ? 3 : 2;
	pgd_t *pgd = pgd_offset(walk->mm, addr);
	p4d_t *p4d = p4d_offset(pgd, addr);
	pte_t val = huge_ptep_get(walk->mm, addr, pte);

	/* The walker hands over the huge entry only: name the tables above it. */
	if (pgtable_l5_enabled())
		pt_table(w, 4, addr, p4d);
	if (level == 2)
		pt_table(w, 3, addr, pud_offset(p4d, addr));
	pt_table(w, level, addr, pte);
	if (pte_present(val))
		pt_leaf(w, level, addr & hmask, pte_pfn(val));
	if (w->m && w->lines >= PT_DUMP_BATCH) {
		w->stop_at = next;
		return 1;
	}
	return 0;
}
#endif

static const struct mm_walk_ops pt_walk_ops = {
	.p4d_entry	= pt_p4d_entry,
	.pud_entry	= pt_pud_entry,
	.pmd_entry	= pt_pmd_entry,
#ifdef CONFIG_HUGETLB_PAGE
	.hugetlb_entry	= pt_hugetlb_entry,
#endif
	.walk_lock	= PGWALK_RDLOCK,
};

static int pt_open(struct inode *inode, struct file *file, struct mm_struct **mmp)
{
	struct mm_struct *mm;

	/* Physical addresses: only for those who may see pagemap's PFNs. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	mm = proc_mem_open(inode, PTRACE_MODE_READ);
	if (IS_ERR(mm))
		return PTR_ERR(mm);
	if (!mm)
		return -ESRCH;
	*mmp = mm;
	return 0;
}

static int pt_nodes_show(struct seq_file *m, void *v)
{
	struct mm_struct *mm = m->private;
	struct pt_walk w = { };
	int level, nid, ret;

	if (!mmget_not_zero(mm))
		return 0;
	w.count = kcalloc((PT_LEVELS + 1) * nr_node_ids, sizeof(*w.count), GFP_KERNEL);
	if (!w.count) {
		mmput(mm);
		return -ENOMEM;
	}
	ret = mmap_read_lock_killable(mm);
	if (!ret) {
		w.count[(pgtable_l5_enabled() ? 5 : 4) * nr_node_ids +
			page_to_nid(virt_to_page(mm->pgd))]++;
		ret = walk_page_range(mm, 0, TASK_SIZE_MAX, &pt_walk_ops, &w);
		mmap_read_unlock(mm);
	}
	mmput(mm);
	if (ret >= 0) {
		seq_printf(m, "nodes %d\n", nr_node_ids);
		for (level = pgtable_l5_enabled() ? 5 : 4; level >= 1; level--) {
			seq_printf(m, "tables level %d:", level);
			for (nid = 0; nid < nr_node_ids; nid++)
				seq_printf(m, " %lu", w.count[level * nr_node_ids + nid]);
			seq_putc(m, '\n');
		}
		ret = 0;
	}
	kfree(w.count);
	return ret;
}

static int pt_nodes_open(struct inode *inode, struct file *file)
{
	struct mm_struct *mm;
	int ret = pt_open(inode, file, &mm);

	if (ret)
		return ret;
	ret = single_open(file, pt_nodes_show, mm);
	if (ret)
		mmdrop(mm);
	return ret;
}

static int pt_nodes_release(struct inode *inode, struct file *file)
{
	struct seq_file *m = file->private_data;

	mmdrop(m->private);
	return single_release(inode, file);
}

const struct file_operations proc_pid_pt_nodes_operations = {
	.open		= pt_nodes_open,
	.read		= seq_read,
	.llseek		= seq_lseek,
	.release	= pt_nodes_release,
};

/*
 * pt_dump: records of about PT_DUMP_BATCH lines, each from a cursor address
 * to the PMD boundary where it filled up. The cursor of the record at @pos is
 * committed only by ->next(), so that seq_file can show a record again after
 * growing its buffer; mmap_read_lock is held from ->start() to ->stop().
 */
struct pt_dump {
	struct mm_struct *mm;
	loff_t pos;
	unsigned long addr, next_addr;
	bool end, next_end;
	bool locked;		/* mmap_read_lock and an mm reference held */
	struct pt_walk w;
};

static void *pt_dump_start(struct seq_file *m, loff_t *pos)
{
	struct pt_dump *d = m->private;

	if (!*pos) {
		d->pos = 0;
		d->addr = 0;
		d->end = false;
		memset(d->w.last, 0, sizeof(d->w.last));
	} else if (*pos != d->pos) {
		return NULL;		/* only sequential reads, from the start */
	}
	if (d->end || !mmget_not_zero(d->mm))
		return NULL;
	if (mmap_read_lock_killable(d->mm)) {
		mmput(d->mm);
		return ERR_PTR(-EINTR);
	}
	d->locked = true;
	return d;
}

static int pt_dump_show(struct seq_file *m, void *v)
{
	struct pt_dump *d = v;
	unsigned long last[PT_LEVELS + 1];
	int ret;

	if (!d->pos) {
		seq_puts(m, "# pgd <pfn> <node>\n");
		seq_puts(m, "# table <level> <first address> <pfn> <node>\n");
		seq_puts(m, "# leaf <address> <level> <pfn> <node>\n");
		seq_printf(m, "pgd %#lx %d\n", page_to_pfn(virt_to_page(d->mm->pgd)),
			   page_to_nid(virt_to_page(d->mm->pgd)));
	}
	/* A record shown again must show the same tables again. */
	memcpy(last, d->w.last, sizeof(last));
	d->w.m = m;
	d->w.lines = 0;
	d->w.stop_at = 0;
	ret = walk_page_range(d->mm, d->addr, TASK_SIZE_MAX, &pt_walk_ops, &d->w);
	if (ret < 0) {
		memcpy(d->w.last, last, sizeof(last));
		return ret;
	}
	d->next_end = !d->w.stop_at;
	d->next_addr = d->w.stop_at;
	if (seq_has_overflowed(m))
		memcpy(d->w.last, last, sizeof(last));
	return 0;
}

static void *pt_dump_next(struct seq_file *m, void *v, loff_t *pos)
{
	struct pt_dump *d = v;

	d->addr = d->next_addr;
	d->end = d->next_end;
	d->pos = ++*pos;
	return d->end ? NULL : d;
}

static void pt_dump_stop(struct seq_file *m, void *v)
{
	struct pt_dump *d = m->private;

	/* @v is NULL too when ->next() ended the dump: go by what ->start() took. */
	if (d->locked) {
		mmap_read_unlock(d->mm);
		mmput(d->mm);
		d->locked = false;
	}
}

static const struct seq_operations pt_dump_sops = {
	.start	= pt_dump_start,
	.next	= pt_dump_next,
	.stop	= pt_dump_stop,
	.show	= pt_dump_show,
};

static int pt_dump_open(struct inode *inode, struct file *file)
{
	struct mm_struct *mm;
	struct pt_dump *d;
	int ret = pt_open(inode, file, &mm);

	if (ret)
		return ret;
	d = __seq_open_private(file, &pt_dump_sops, sizeof(*d));
	if (!d) {
		mmdrop(mm);
		return -ENOMEM;
	}
	d->mm = mm;
	return 0;
}

static int pt_dump_release(struct inode *inode, struct file *file)
{
	struct seq_file *m = file->private_data;
	struct pt_dump *d = m->private;

	mmdrop(d->mm);
	return seq_release_private(inode, file);
}

const struct file_operations proc_pid_pt_dump_operations = {
	.open		= pt_dump_open,
	.read		= seq_read,
	.llseek		= seq_lseek,
	.release	= pt_dump_release,
};
