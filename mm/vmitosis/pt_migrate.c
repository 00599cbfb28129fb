// SPDX-License-Identifier: GPL-2.0-only
/*
 * vMitosis page-table migration (Documentation/vmitosis/pt-migration.rst).
 *
 * A process's page-table pages stay on the node where they were allocated
 * while NUMA balancing and migrate_pages(2) move the data they map. This
 * moves each table of PTEs to the node holding most of the data pages this
 * process alone maps through it.
 *
 * Tables of PTEs move under mmap_read_lock, with the protocol khugepaged
 * uses to retract one: the PMD lock and the old table's PTE lock exclude
 * every writer; the entries are moved into the copy by atomic exchange,
 * with the Accessed and Dirty bits the CPUs set until then, and the copy is
 * published before the PTE lock is released, so a walker that still holds
 * the old copy finds its entries gone (pte_same() fails) or rechecks the
 * PMD (pte_offset_map_lock(), GUP-fast). Old copies are flushed from the
 * TLBs and freed through RCU in batches, as pte_free_defer() does one.
 */

#define pr_fmt(fmt) "pt_migration: " fmt

#include <linux/compat.h>
#include <linux/hugetlb.h>
#include <linux/init.h>
#include <linux/memcontrol.h>
#include <linux/memory-tiers.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/nodemask.h>
#include <linux/pgtable.h>
#include <linux/pt_migrate.h>
#include <linux/rcupdate.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/srcu.h>
#include <linux/userfaultfd_k.h>
#include <linux/vmstat.h>
#include <linux/pgalloc.h>
#include <asm/pt_migrate.h>
#include <asm/tlbflush.h>

#define CREATE_TRACE_POINTS
#include <trace/events/pt_migrate.h>

DEFINE_STATIC_KEY_FALSE(pt_migration_key);

/*
 * The key also makes page_vma_mapped_walk() lock PTE tables strictly, which
 * must hold before the first table moves and until the last move is done:
 * tables move only while pt_migration_ready, inside an SRCU read section.
 */
static bool pt_migration_ready;
DEFINE_STATIC_SRCU(pt_migration_srcu);

/* Tables of PTEs examined per NUMA scan period of a task. */
static unsigned int pt_migration_batch = 256;

/*
 * Old copies of tables of PTEs retired under one TLB flush and freed after
 * one grace period, at most.
 */
#define PTM_RETIRE_BATCH	64

/* Old copies of tables of PTEs, emptied, waiting for a flush and RCU. */
struct ptm_retired {
	struct rcu_head rcu;
	int nr;
	unsigned long start, end;	/* what the flush covers */
	struct ptdesc *tables[PTM_RETIRE_BATCH];
};

/* Levels as pt_dump numbers them; PTM_P4D moves only with 5-level paging. */
enum { PTM_PTE = 1, PTM_PMD, PTM_PUD, PTM_P4D, PTM_PGD };

struct ptm_pass {
	struct mm_struct *mm;
	int fallback;		/* node for a table nothing votes for */
	unsigned long budget;	/* tables of PTEs left to examine */
	unsigned long slots;	/* PMD entries looked at */
	unsigned long *votes;	/* [nr_node_ids] */
	struct ptm_retired *retired;	/* NULL: flush and free one by one */
};

static void ptm_count(int level, bool moved)
{
	count_vm_event((moved ? PT_MIGRATE_PTE : PT_MIGRATE_SCAN_PTE) + level - 1);
}

static void ptm_clear_votes(struct ptm_pass *p)
{
	memset(p->votes, 0, nr_node_ids * sizeof(*p->votes));
}

/*
 * The node a data page votes for. Only anonymous memory of this process
 * alone is placed for it (NUMA balancing, migrate_pages(2)). Page cache
 * lies where it was first read (NUMA balancing leaves read-only file
 * mappings alone; ramfs pages never move), other processes' pages where
 * they run, the zero pages anywhere: they vote for the node the process
 * was moved to, if known.
 */
static int ptm_page_vote(struct ptm_pass *p, unsigned long pfn)
{
	struct folio *folio;

	if (!pfn_valid(pfn) || is_zero_pfn(pfn))
		return p->fallback;
	folio = page_folio(pfn_to_page(pfn));
	if (!folio_test_anon(folio) || folio_likely_mapped_shared(folio))
		return p->fallback;
	return folio_nid(folio);
}

static void ptm_vote(struct ptm_pass *p, int nid)
{
	if (nid != NUMA_NO_NODE)
		p->votes[nid]++;
}

/*
 * The node for a table now on @cur: most votes, a tie keeps it. Never a
 * node of a slower memory tier (CXL or persistent memory as system RAM):
 * page walks are latency-bound, and NUMA balancing's tiering mode promotes
 * data from there, so tables of such data stay with the CPUs.
 */
static int ptm_pick(struct ptm_pass *p, int cur)
{
	unsigned long best = 0;
	int nid, to = NUMA_NO_NODE;

	for_each_node_state(nid, N_MEMORY) {
		if (!node_is_toptier(nid))
			continue;
		if (p->votes[nid] > best) {
			best = p->votes[nid];
			to = nid;
		}
	}
	if (to == NUMA_NO_NODE) {
		if (p->fallback != NUMA_NO_NODE && node_is_toptier(p->fallback))
			to = p->fallback;
	} else if (p->votes[cur] == best) {
		to = cur;
	}
	return to == NUMA_NO_NODE ? cur : to;
}

/*
 * A table page on @nid, charged to @p->mm's memcg; failing leaves the table.
 */
static struct page *ptm_alloc(struct ptm_pass *p, int nid, unsigned int order)
{
	struct mem_cgroup *memcg = get_mem_cgroup_from_mm(p->mm);
	struct mem_cgroup *old = set_active_memcg(memcg);
	gfp_t gfp = GFP_PGTABLE_USER | __GFP_THISNODE | __GFP_NOWARN | __GFP_NORETRY;
	struct page *page;

	page = alloc_pages_node(nid, gfp, order);
	set_active_memcg(old);
	mem_cgroup_put(memcg);
	if (!page)
		count_vm_event(PT_MIGRATE_NOMEM);
	return page;
}

static void ptm_free_pte_rcu(struct rcu_head *head)
{
	struct ptdesc *ptdesc = container_of(head, struct ptdesc, pt_rcu_head);

	pagetable_pte_dtor(ptdesc);
	pagetable_free(ptdesc);
}

static void ptm_free_retired_rcu(struct rcu_head *head)
{
	struct ptm_retired *r = container_of(head, struct ptm_retired, rcu);
	int i;

	for (i = 0; i < r->nr; i++) {
		pagetable_pte_dtor(r->tables[i]);
		pagetable_free(r->tables[i]);
	}
	kfree(r);
}

/*
 * Flush the TLBs of the CPUs that run the process for the tables of PTEs
 * retired so far, and free the old copies after a grace period. One table:
 * INVLPG of one address it maps drops the paging-structure cache entry
 * that leads to it, as pmd_free_pte_page() relies on. More: the range
 * spans past tlb_single_page_flush_ceiling, and every TLB entry of the
 * process goes, once for the batch. freed_tables, so that lazy-TLB CPUs
 * drop theirs too.
 */
static void ptm_flush_retired(struct ptm_pass *p)
{
	struct ptm_retired *r = p->retired;

	if (!r || !r->nr)
		return;
	flush_tlb_mm_range(p->mm, r->start, r->end, PAGE_SHIFT, true);
	count_vm_event(PT_MIGRATE_FLUSH);
	call_rcu(&r->rcu, ptm_free_retired_rcu);
	p->retired = kmalloc(sizeof(*r), GFP_KERNEL | __GFP_NOWARN);
	if (p->retired)
		p->retired->nr = 0;
}

/* @old, emptied, mapped [@addr, @addr + PMD_SIZE): flush and free it. */
static void ptm_retire_pte_table(struct ptm_pass *p, struct ptdesc *old,
				 unsigned long addr)
{
	struct ptm_retired *r = p->retired;

	if (!r) {
		flush_tlb_mm_range(p->mm, addr, addr + PAGE_SIZE, PAGE_SHIFT, true);
		count_vm_event(PT_MIGRATE_FLUSH);
		call_rcu(&old->pt_rcu_head, ptm_free_pte_rcu);
		return;
	}
	if (!r->nr) {
		r->start = addr;
		r->end = addr + PAGE_SIZE;
	}
	r->start = min(r->start, addr);
	r->end = max(r->end, addr + PAGE_SIZE);
	r->tables[r->nr++] = old;
	if (r->nr == PTM_RETIRE_BATCH)
		ptm_flush_retired(p);
}

static void ptm_moved(struct ptm_pass *p, int level, unsigned long addr,
		      int from, int to)
{
	ptm_count(level, true);
	trace_pt_migrate_table(p->mm, level, addr, from, to);
}

/*
 * Whether the page tables of @mm may move at all: not while it uses
 * userfaultfd, whose UFFDIO_MOVE locks the PTE tables it looked up without
 * rechecking the PMD, in any anonymous VMA of the mm. MMF_UFFD_MAYBE_ARMED
 * says whether to look: a VMA gains a registration only under mmap_lock
 * for write, so with it held for read a look that finds none may clear the
 * flag, and later passes cost nothing until the next registration.
 */
static bool ptm_mm_movable(struct mm_struct *mm)
{
	struct vm_area_struct *vma;
	struct vma_iterator vmi;

	mmap_assert_locked(mm);
	if (!test_bit(MMF_UFFD_MAYBE_ARMED, &mm->flags))
		return true;
	vma_iter_init(&vmi, mm, 0);
	for_each_vma(vmi, vma) {
		if (userfaultfd_armed(vma))
			return false;
	}
	clear_bit(MMF_UFFD_MAYBE_ARMED, &mm->flags);
	return true;
}

/* Whether tables over @vma may move: not hugetlb's, which may be shared. */
static bool ptm_vma_movable(struct vm_area_struct *vma)
{
	return !is_vm_hugetlb_page(vma);
}

/* Whether a table mapping [@addr, @end) may move (ptm_vma_movable()). */
static bool ptm_range_movable(struct mm_struct *mm, unsigned long addr,
			      unsigned long end)
{
	struct vm_area_struct *vma;
	struct vma_iterator vmi;

	vma_iter_init(&vmi, mm, addr);
	for_each_vma_range(vmi, vma, end) {
		if (!ptm_vma_movable(vma))
			return false;
	}
	return true;
}

/* Move the table of PTEs under @pmdp, mapping from @addr; mmap_lock held. */
static void ptm_pte_table(struct ptm_pass *p, pmd_t *pmdp, unsigned long addr)
{
	struct mm_struct *mm = p->mm;
	spinlock_t *ptl, *pml;
	struct ptdesc *optd, *nptd;
	pte_t *pte, *old, *new;
	struct page *page;
	pmd_t pmdval;
	int i, from, to;

	pte = pte_offset_map_lock(mm, pmdp, addr, &ptl);
	if (!pte)
		return;
	ptm_count(PTM_PTE, false);
	if (p->budget)
		p->budget--;
	ptm_clear_votes(p);
	/*
	 * Entries that NUMA balancing's scan has just made PROT_NONE vote
	 * too: they still map their page. The scan leaves the pages already
	 * on the scanning task's node accessible, so counting only those
	 * would move the table to wherever the task runs, not to its data.
	 */
	for (i = 0; i < PTRS_PER_PTE; i++) {
		pte_t entry = ptep_get(pte + i);

		if (pte_present(entry) && !pte_special(entry) && !pte_devmap(entry))
			ptm_vote(p, ptm_page_vote(p, pte_pfn(entry)));
	}
	from = page_to_nid(virt_to_page(pte));
	pte_unmap_unlock(pte, ptl);
	to = ptm_pick(p, from);
	if (to == from)
		return;

	page = ptm_alloc(p, to, 0);
	if (!page)
		return;
	nptd = page_ptdesc(page);
	if (!pagetable_pte_ctor(nptd)) {
		pagetable_free(nptd);
		return;
	}
	new = ptdesc_address(nptd);

	pml = pmd_lock(mm, pmdp);
	pmdval = pmdp_get(pmdp);
	if (!pmd_present(pmdval) || pmd_leaf(pmdval) || pmd_bad(pmdval) ||
	    page_to_nid(pmd_page(pmdval)) != from) {
		spin_unlock(pml);
		goto free_new;
	}
	old = (pte_t *)pmd_page_vaddr(pmdval);
	optd = virt_to_ptdesc(old);
	ptl = pte_lockptr(mm, pmdp);
	if (ptl != pml)
		spin_lock_nested(ptl, SINGLE_DEPTH_NESTING);

	/*
	 * Each entry is taken out of the old copy with an atomic exchange:
	 * the CPU sets Accessed and Dirty bits only in present entries, so
	 * the value taken carries every bit set until then, and none is set
	 * in the old copy after. A CPU that still walks the old copy, through
	 * a paging-structure cache entry until the flush, finds nothing
	 * there and faults; the fault drops that cache entry, and the
	 * handler finds the entry in the new copy. Software that looked the
	 * old copy up and waits for its lock finds it empty, or rechecks the
	 * PMD, and retries. The translations are unchanged: the TLB entries
	 * they gave stay right until the entries themselves change, which
	 * flushes them as usual.
	 */
	for (i = 0; i < PTRS_PER_PTE; i++)
		set_pte(new + i, arch_pt_migrate_take_pte(old + i));
	/* The entries must be visible before the table is, as in pmd_install(). */
	smp_wmb();
	pmd_populate(mm, pmdp, ptdesc_page(nptd));

	if (ptl != pml)
		spin_unlock(ptl);
	spin_unlock(pml);

	/* Before the old copy is freed, no CPU may hold a pointer to it. */
	ptm_retire_pte_table(p, optd, addr);
	ptm_moved(p, PTM_PTE, addr, from, to);
	return;

free_new:
	pagetable_pte_dtor(nptd);
	pagetable_free(nptd);
}

/*
 * Tables of PTEs of @mm mapping [@start, @end), within the budget; returns
 * where it stopped. mmap_lock held for read.
 */
static unsigned long __ptm_leaf_range(struct ptm_pass *p, unsigned long start,
				      unsigned long end)
{
	struct mm_struct *mm = p->mm;
	unsigned long addr = start & PMD_MASK, last = -1UL, vend;
	struct vm_area_struct *vma;
	struct vma_iterator vmi;

	vma_iter_init(&vmi, mm, start);
	for_each_vma_range(vmi, vma, end) {
		if (is_vm_hugetlb_page(vma))
			continue;
		/* Not past @end: move_pages(2) asks for one PMD's worth. */
		vend = min(vma->vm_end, end);
		for (addr = max(addr, vma->vm_start & PMD_MASK); addr < vend;
		     addr += PMD_SIZE) {
			pgd_t *pgd;
			p4d_t *p4d;
			pud_t *pud;
			pmd_t *pmd, pmdval;

			if (!p->budget)
				return addr;
			if (addr == last)
				continue;
			last = addr;
			/* Empty slots cost too: 512 of them as much as a table. */
			if (!(++p->slots % PTRS_PER_PMD)) {
				p->budget--;
				cond_resched();
			}
			pgd = pgd_offset(mm, addr);
			if (pgd_none(*pgd) || pgd_bad(*pgd)) {
				addr = ALIGN_DOWN(addr, PGDIR_SIZE) + PGDIR_SIZE - PMD_SIZE;
				continue;
			}
			p4d = p4d_offset(pgd, addr);
			if (p4d_none(*p4d) || p4d_bad(*p4d)) {
				addr = ALIGN_DOWN(addr, P4D_SIZE) + P4D_SIZE - PMD_SIZE;
				continue;
			}
			pud = pud_offset(p4d, addr);
			if (!pud_present(pudp_get(pud)) || pud_leaf(pudp_get(pud)) ||
			    pud_bad(pudp_get(pud))) {
				addr = ALIGN_DOWN(addr, PUD_SIZE) + PUD_SIZE - PMD_SIZE;
				continue;
			}
			pmd = pmd_offset(pud, addr);
			pmdval = pmdp_get_lockless(pmd);
			if (!pmd_present(pmdval) || pmd_leaf(pmdval) || pmd_bad(pmdval))
				continue;
			if (!ptm_range_movable(mm, addr, addr + PMD_SIZE))
				continue;
			ptm_pte_table(p, pmd, addr);
		}
	}
	return end;
}

/*
 * Examine, and move to where their data is, the tables of PTEs that map
 * [@start, @end) until the budget runs out: returns where it stopped. The
 * old copies are flushed and freed, in batches, before it returns.
 */
static unsigned long ptm_leaf_range(struct ptm_pass *p, unsigned long start,
				    unsigned long end)
{
	unsigned long addr = __ptm_leaf_range(p, start, end);

	ptm_flush_retired(p);
	return addr;
}

static bool ptm_init(struct ptm_pass *p, struct mm_struct *mm, int fallback)
{
	p->mm = mm;
	p->fallback = fallback;
	p->slots = 0;
	p->retired = kmalloc(sizeof(*p->retired), GFP_KERNEL | __GFP_NOWARN);
	if (p->retired)
		p->retired->nr = 0;
	p->votes = kcalloc(nr_node_ids, sizeof(*p->votes), GFP_KERNEL);
	if (!p->votes)
		kfree(p->retired);
	return p->votes;
}

static void ptm_fini(struct ptm_pass *p)
{
	/* ptm_leaf_range() left nothing to flush. */
	kfree(p->retired);
	kfree(p->votes);
}

/*
 * The node for tables that map only what says nothing about the scanning
 * task: where it runs, as for a table it would allocate now. Its preferred
 * node lags: that follows fault statistics that decay over scan periods,
 * which grow to a minute and more once the faults are local. None while
 * @mm runs on CPUs of other nodes too: such tables would follow whichever
 * thread scanned last, every scan period, and they stay instead.
 */
static int ptm_task_node(struct mm_struct *mm)
{
	if (!cpumask_subset(mm_cpumask(mm), cpumask_of_node(numa_node_id())))
		return NUMA_NO_NODE;
	return numa_mem_id();
}

void __pt_migrate_numa_scan(struct mm_struct *mm, unsigned long start,
			    unsigned long end)
{
	struct ptm_pass p;
	int idx;

	idx = srcu_read_lock(&pt_migration_srcu);
	if (!READ_ONCE(pt_migration_ready) || !ptm_init(&p, mm, ptm_task_node(mm)))
		goto unlock;
	p.budget = READ_ONCE(pt_migration_batch);
	if (!mmap_read_trylock(mm))
		goto free;
	/*
	 * What NUMA balancing just scanned first, then the rest of the
	 * address space as far as the budget goes: once the task stops
	 * faulting remotely, its scan period grows to a minute and more.
	 */
	if (ptm_mm_movable(mm) && ptm_leaf_range(&p, start, end) >= end &&
	    ptm_leaf_range(&p, end, TASK_SIZE_MAX) >= TASK_SIZE_MAX)
		ptm_leaf_range(&p, 0, start);
	mmap_read_unlock(mm);
free:
	ptm_fini(&p);
unlock:
	srcu_read_unlock(&pt_migration_srcu, idx);
}

void __pt_migrate_mm(struct mm_struct *mm, int fallback_nid)
{
	unsigned long addr = 0;
	struct ptm_pass p;
	int idx;

	idx = srcu_read_lock(&pt_migration_srcu);
	if (!READ_ONCE(pt_migration_ready) || !ptm_init(&p, mm, fallback_nid))
		goto unlock;
	while (addr < TASK_SIZE_MAX) {
		if (mmap_read_lock_killable(mm))
			goto out;
		p.budget = READ_ONCE(pt_migration_batch);
		addr = ptm_mm_movable(mm) ? ptm_leaf_range(&p, addr, TASK_SIZE_MAX) :
					    TASK_SIZE_MAX;
		mmap_read_unlock(mm);
		if (fatal_signal_pending(current))
			goto out;
		cond_resched();
	}
out:
	ptm_fini(&p);
unlock:
	srcu_read_unlock(&pt_migration_srcu, idx);
}

/* Entry @i of move_pages(2)'s address array, of a compat caller too. */
static int ptm_get_page_addr(const void __user *__user *pages, unsigned long i,
			     unsigned long *addr)
{
	const void __user *p;

	if (in_compat_syscall()) {
		compat_uptr_t cp;

		if (get_user(cp, (compat_uptr_t __user *)pages + i))
			return -EFAULT;
		p = compat_ptr(cp);
	} else if (get_user(p, pages + i)) {
		return -EFAULT;
	}
	*addr = untagged_addr((unsigned long)p);
	return 0;
}

/* PMDs of moved pages that one read of move_pages(2)'s arrays notes. */
#define PTM_PMDS_PER_READ	(PAGE_SIZE / sizeof(unsigned long))

void __pt_migrate_pages(struct mm_struct *mm, unsigned long nr,
			const void __user *__user *pages, const int __user *status)
{
	unsigned long i = 0, j = 0, n = 0, addr, last = -1UL, *pmds;
	struct ptm_pass p;
	int idx, st;

	idx = srcu_read_lock(&pt_migration_srcu);
	if (!READ_ONCE(pt_migration_ready) || !ptm_init(&p, mm, NUMA_NO_NODE))
		goto unlock;
	/* No memory to note the moved pages: their tables move with the next pass. */
	pmds = (unsigned long *)__get_free_page(GFP_KERNEL);
	if (!pmds)
		goto out;
	while (i < nr || j < n) {
		if (j == n) {
			/*
			 * Read the caller's arrays without the mmap_lock: a
			 * fault on them takes it (this mm's, if the caller
			 * moved its own pages). Only the pages it moved: their
			 * status is a node.
			 */
			for (j = n = 0; i < nr && n < PTM_PMDS_PER_READ; i++) {
				if (get_user(st, status + i) ||
				    ptm_get_page_addr(pages, i, &addr)) {
					i = nr;
					break;
				}
				if (st < 0 || (addr & PMD_MASK) == last)
					continue;
				last = addr & PMD_MASK;
				pmds[n++] = last;
			}
		} else {
			if (mmap_read_lock_killable(mm))
				break;
			p.budget = READ_ONCE(pt_migration_batch);
			for (; j < n && p.budget; j++) {
				if (ptm_mm_movable(mm))
					ptm_leaf_range(&p, pmds[j], pmds[j] + PMD_SIZE);
			}
			mmap_read_unlock(mm);
		}
		if (fatal_signal_pending(current))
			break;
		cond_resched();
	}
	free_page((unsigned long)pmds);
out:
	ptm_fini(&p);
unlock:
	srcu_read_unlock(&pt_migration_srcu, idx);
}
