// SPDX-License-Identifier: GPL-2.0-only
/*
 * vMitosis page-table migration (Documentation/vmitosis/pt-migration.rst).
 *
 * A process's page-table pages stay on the node where they were allocated
 * while NUMA balancing and migrate_pages(2) move the data they map. This
 * moves each table page to the node holding most of what it maps, bottom-up:
 * tables of PTEs follow the data pages this process alone maps, upper tables
 * follow their children.
 *
 * Tables of PTEs move under mmap_read_lock, with the protocol khugepaged
 * uses to retract one: the PMD lock and the old table's PTE lock exclude
 * every writer; the entries are moved into the copy by atomic exchange,
 * with the Accessed and Dirty bits the CPUs set until then, and the copy is
 * published before the PTE lock is released, so a walker that still holds
 * the old copy finds its entries gone (pte_same() fails) or rechecks the
 * PMD (pte_offset_map_lock(), GUP-fast). Old copies are flushed from the
 * TLBs and freed through RCU in batches, as pte_free_defer() does one.
 *
 * Upper tables are few, and move under mmap_write_lock, with the VMAs the
 * table maps write-locked, only after a read-locked look found one
 * misplaced. Rmap walkers and truncation hold no mmap_lock. They change PMD
 * entries holding only an rmap lock and the PMD lock of the table they
 * found, without rechecking that it is still linked: a PMD table moves with
 * the rmap locks of its VMAs taken by trylock (nothing of other processes is
 * waited for, nothing system-wide taken). Above the PMD tables they only
 * read: a PUD or P4D table or the PGD moves while they may still read the
 * old copy, which stays intact until each rmap lock of the range has been
 * taken and dropped once (ptm_rmap_barrier()).
 */

#define pr_fmt(fmt) "pt_migration: " fmt

#include <linux/bpf.h>
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
#include <linux/sort.h>
#include <linux/srcu.h>
#include <linux/sysctl.h>
#include <linux/userfaultfd_k.h>
#include <linux/vmstat.h>
#include <linux/xarray.h>
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
static DEFINE_MUTEX(pt_migration_mutex);

/* Tables of PTEs examined per NUMA scan period of a task. */
static unsigned int pt_migration_batch = 256;

/*
 * Distinct rmap locks (anon_vma roots, file mappings) a PMD table's move may
 * hold: a table over more stays. Lockdep tracks at most 48 held locks
 * (MAX_LOCK_DEPTH); the rest is left to the caller's own. A PMD table maps
 * 1 GiB: a small process maps 20 to 30 in all (each library, and an
 * anon_vma root per thread stack and per unmerged anonymous mapping), and
 * the tables above hold none of them at once.
 */
#define PTM_MAX_LOCKS	40

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

#define PTM_MAX_VMAS	4096

/* Levels as pt_dump numbers them; PTM_P4D moves only with 5-level paging. */
enum { PTM_PTE = 1, PTM_PMD, PTM_PUD, PTM_P4D, PTM_PGD };

struct ptm_pass {
	struct mm_struct *mm;
	int fallback;		/* node for a table nothing votes for */
	unsigned long budget;	/* tables of PTEs left to examine */
	unsigned long slots;	/* PMD entries looked at */
	bool dry;		/* upper levels: only find out if one would move */
	bool misplaced;		/* dry: an upper table would move */
	unsigned long *votes;	/* [nr_node_ids] */
	unsigned long weight;	/* the votes cast, for a table's own weight */
	struct xarray weights;	/* upper tables weighed by this pass */
	struct rw_semaphore *locks[PTM_MAX_LOCKS];	/* rmap locks held */
	int nr_locks;
	unsigned long *at;	/* upper levels: only above these, sorted */
	int nr_at;
	struct ptm_retired *retired;	/* NULL: flush and free one by one */
};

static void ptm_count(int level, bool moved)
{
	count_vm_event((moved ? PT_MIGRATE_PTE : PT_MIGRATE_SCAN_PTE) + level - 1);
}

static void ptm_clear_votes(struct ptm_pass *p)
{
	memset(p->votes, 0, nr_node_ids * sizeof(*p->votes));
	p->weight = 0;
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

static void ptm_vote_n(struct ptm_pass *p, int nid, unsigned long weight)
{
	p->weight += weight;
	if (nid != NUMA_NO_NODE)
		p->votes[nid] += weight;
}

static void ptm_vote(struct ptm_pass *p, int nid)
{
	ptm_vote_n(p, nid, 1);
}

/*
 * Above the tables of PMDs, a child votes with what it maps, counted in
 * PMD entries (2 MiB each): the tables of a 256 MiB region outvote those
 * of a stack of a few pages, where one vote per child table is a tie that
 * keeps the PGD, which every walk reads, with the stack. The pass records
 * the weight of each upper table it has voted on, bottom up, keyed by
 * level and span; a table it has not weighed (move_pages(2) examines only
 * some) weighs one entry, and so does every table when the record cannot
 * be allocated. The record costs no extra read of any table.
 */
static unsigned long ptm_weight_key(int level, unsigned long addr)
{
	unsigned long span = level == PTM_PMD ? PUD_SHIFT :
			     level == PTM_PUD ? P4D_SHIFT : PGDIR_SHIFT;

	return (addr >> span) << 2 | (level - PTM_PMD);
}

static void ptm_weigh(struct ptm_pass *p, int level, unsigned long addr)
{
	xa_store(&p->weights, ptm_weight_key(level, addr),
		 xa_mk_value(min(p->weight, LONG_MAX >> 1)), GFP_KERNEL);
}

static unsigned long ptm_weight(struct ptm_pass *p, int level, unsigned long addr)
{
	void *w = xa_load(&p->weights, ptm_weight_key(level, addr));

	return w ? max(xa_to_value(w), 1UL) : 1;
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
 * Allocated before the rmap locks are taken, which reclaim may need.
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

/*
 * Fold the Accessed and Dirty bits a CPU set in the old copy of an entry,
 * until the flush, into the new copy, where CPUs may be setting them too.
 */
static void ptm_merge_ad(unsigned long *new, unsigned long old)
{
	unsigned long bits = arch_pt_migrate_hw_bits(old);
	unsigned long cur = READ_ONCE(*new);

	if (!bits)
		return;
	while ((cur & bits) != bits && !try_cmpxchg(new, &cur, cur | bits))
		;
}

/*
 * After the new copy of a table is linked and the TLBs flushed, no CPU walks
 * the old one: merge its A/D bits and empty it, so that a walker still
 * holding a pointer into it sees no entry it could act on.
 */
static void ptm_retire_copy(void *new, void *old)
{
	unsigned long *n = new, *o = old;
	int i;

	for (i = 0; i < PTRS_PER_PTE; i++) {
		ptm_merge_ad(&n[i], READ_ONCE(o[i]));
		WRITE_ONCE(o[i], 0);
	}
}

/*
 * Above the PMD tables, after the new copy is linked and the TLBs flushed:
 * merge the Accessed bits a CPU set in the old copy, which stays intact for
 * the rmap walkers that may still read it (ptm_rmap_barrier()).
 */
static void ptm_merge_copy(void *new, void *old)
{
	unsigned long *n = new, *o = old;
	int i;

	for (i = 0; i < PTRS_PER_PTE; i++)
		ptm_merge_ad(&n[i], READ_ONCE(o[i]));
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

/*
 * An upper table, whose destructor has run: nobody can take its lock any
 * more (a PMD table moves excluding every walker that takes one; nobody
 * takes one of a PUD table but page_table_lock), and pt_rcu_head overlays
 * pmd_huge_pte, which the PMD destructor checks. GUP-fast may still read it
 * until a grace period has passed.
 */
static void ptm_free_upper_rcu(struct rcu_head *head)
{
	pagetable_free(container_of(head, struct ptdesc, pt_rcu_head));
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

/*
 * Whether tables over @vma may move. Not over hugetlb, whose PMD tables may
 * be shared between processes. Not over mappings whose entries are written
 * by walkers that hold no mmap_lock and may have found the old copy of an
 * upper table: DAX and PFN maps with huge PMD or PUD entries (vfio-pci's
 * BARs), which truncation and drivers' zaps clear holding only an rmap lock
 * (a PUD or P4D table or the PGD moves while such walkers may still read the
 * old copy, ptm_rmap_barrier()); and BPF maps, whose arena zaps its pages
 * in every process that maps it holding no lock of theirs at all.
 */
static bool ptm_vma_movable(struct vm_area_struct *vma)
{
	if (is_vm_hugetlb_page(vma) || vma_is_dax(vma))
		return false;
	if ((vma->vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) && vma->vm_ops &&
	    vma->vm_ops->huge_fault)
		return false;
#ifdef CONFIG_BPF_SYSCALL
	if (vma->vm_file && vma->vm_file->f_op == &bpf_map_fops)
		return false;
#endif
	return true;
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

static bool ptm_trylock(struct ptm_pass *p, struct rw_semaphore *sem)
{
	int i;

	for (i = 0; i < p->nr_locks; i++)
		if (p->locks[i] == sem)
			return true;
	if (p->nr_locks == PTM_MAX_LOCKS || !down_write_trylock(sem))
		return false;
	p->locks[p->nr_locks++] = sem;
	return true;
}

static void ptm_unlock_range(struct ptm_pass *p)
{
	while (p->nr_locks)
		up_write(p->locks[--p->nr_locks]);
}

/*
 * Before an upper table mapping [@start, @end) moves, with mmap_lock held
 * for write: write-lock the VMAs there against page faults under a per-VMA
 * lock (until mmap_write_unlock()), which may link a table into it. False
 * if there are more than PTM_MAX_VMAS: the table stays.
 */
static bool ptm_lock_vmas(struct ptm_pass *p, unsigned long start, unsigned long end)
{
	struct vm_area_struct *vma;
	struct vma_iterator vmi;
	int n = 0;

	mmap_assert_write_locked(p->mm);
	vma_iter_init(&vmi, p->mm, start);
	for_each_vma_range(vmi, vma, end) {
		if (++n > PTM_MAX_VMAS) {
			count_vm_event(PT_MIGRATE_BUSY);
			return false;
		}
		vma_start_write(vma);
	}
	return true;
}

/*
 * Before a PMD table mapping [@start, @end) moves, with mmap_lock held for
 * write: exclude everything else that may hold a pointer into it or change
 * its entries. Page faults under a per-VMA lock: ptm_lock_vmas(). Reverse-map
 * walks and truncation, which hold an rmap lock of the VMA they walk and
 * only the PMD lock of the table they found: the anon_vma (its root) and the
 * file mapping of each of those VMAs, taken by trylock, since other
 * processes hold them too; another process's walk is never waited for, and
 * the table stays if one is busy or there are too many. False then.
 */
static bool ptm_lock_range(struct ptm_pass *p, unsigned long start, unsigned long end)
{
	struct vm_area_struct *vma;
	struct vma_iterator vmi;

	/*
	 * Every VMA first, then the rmap locks: a page fault holds its VMA's
	 * lock for read while it takes the anon_vma lock (anon_vma_prepare(),
	 * and the anon_vma may be shared with the next VMA), so waiting for
	 * a VMA's lock while holding an rmap lock could deadlock.
	 */
	if (!ptm_lock_vmas(p, start, end))
		return false;
	vma_iter_init(&vmi, p->mm, start);
	for_each_vma_range(vmi, vma, end) {
		if (vma->anon_vma && !ptm_trylock(p, &vma->anon_vma->root->rwsem))
			goto busy;
		if (vma->vm_file && vma->vm_file->f_mapping &&
		    !ptm_trylock(p, &vma->vm_file->f_mapping->i_mmap_rwsem))
			goto busy;
	}
	return true;
busy:
	ptm_unlock_range(p);
	count_vm_event(PT_MIGRATE_BUSY);
	return false;
}

/*
 * After a PUD or P4D table or the PGD mapping [@start, @end) was replaced,
 * with mmap_lock still held for write: wait until no reverse-map walk or
 * truncation can still be reading the old copy. They hold an rmap lock of
 * the VMA they walk for the whole walk, and looked the table up under it:
 * once each of those locks has been taken for write and dropped, every walk
 * that began before the switch has ended. Above the PMD tables they never
 * write an entry (huge PUDs, which truncation splits, are DAX's, which do not
 * move), and mmap_lock keeps the entries from changing meanwhile, so the old
 * copy they read says what the new one does. One lock at a time, in the
 * order of mm/rmap.c (mmap_lock, then i_mmap_rwsem, then anon_vma), each
 * held for no work: another process's walk of a shared library delays this
 * by its own length, and its next walk or mmap() of the library by this
 * lock's hand-over only.
 */
static void ptm_rmap_barrier(struct ptm_pass *p, unsigned long start, unsigned long end)
{
	struct address_space *mapping, *last_mapping = NULL;
	struct anon_vma *root, *last_root = NULL;
	struct vm_area_struct *vma;
	struct vma_iterator vmi;

	mmap_assert_write_locked(p->mm);
	vma_iter_init(&vmi, p->mm, start);
	for_each_vma_range(vmi, vma, end) {
		mapping = vma->vm_file ? vma->vm_file->f_mapping : NULL;
		if (mapping && mapping != last_mapping) {
			i_mmap_lock_write(mapping);
			i_mmap_unlock_write(mapping);
			last_mapping = mapping;
		}
		root = vma->anon_vma ? vma->anon_vma->root : NULL;
		if (root && root != last_root) {
			down_write(&root->rwsem);
			up_write(&root->rwsem);
			last_root = root;
		}
		cond_resched();
	}
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

/*
 * Where the table @old, whose votes are in, goes: true if it is to move from
 * *@from to *@to now; a dry pass only notes that it would.
 */
static bool ptm_decide(struct ptm_pass *p, void *old, int *from, int *to)
{
	*from = page_to_nid(virt_to_page(old));
	*to = ptm_pick(p, *from);
	if (*to == *from)
		return false;
	if (p->dry) {
		p->misplaced = true;
		return false;
	}
	return true;
}

/*
 * Put @new, a copy of the PUD or (5-level paging) P4D table @old, in the
 * parent entry @parent that maps from @addr, and retire @old. Their entries
 * change only under mmap_lock for write or page_table_lock, which
 * __pmd_alloc() and __pud_alloc() take to link a table: a real pass holds
 * both, and page faults under a per-VMA lock are kept out. With PTI,
 * p4d_populate() (4-level paging: the PGD entry) and pgd_populate() mirror
 * the entry into the user half of the PGD.
 */
static bool ptm_relink(struct ptm_pass *p, int level, void *parent, void *old,
		       void *new, unsigned long addr, int from, int to)
{
	struct mm_struct *mm = p->mm;
	unsigned long size = level == PTM_PUD ? P4D_SIZE : PGDIR_SIZE;
	int i;

	if (!ptm_lock_vmas(p, addr, addr + size))
		return false;
	spin_lock(&mm->page_table_lock);
	if (level == PTM_PUD) {
		for (i = 0; i < PTRS_PER_PUD; i++)
			set_pud((pud_t *)new + i, pudp_get((pud_t *)old + i));
		/* The entries must be visible before the table is. */
		smp_wmb();
		p4d_populate(mm, parent, new);
	} else {
		for (i = 0; i < PTRS_PER_P4D; i++)
			set_p4d((p4d_t *)new + i, p4dp_get((p4d_t *)old + i));
		/* As above. */
		smp_wmb();
		pgd_populate(mm, parent, new);
	}
	flush_tlb_mm_range(mm, addr, addr + size, PAGE_SHIFT, true);
	count_vm_event(PT_MIGRATE_FLUSH);
	ptm_merge_copy(new, old);
	spin_unlock(&mm->page_table_lock);
	ptm_rmap_barrier(p, addr, addr + size);

	/* P4D tables have no constructor in 6.12: p4d_free() frees the page. */
	if (level == PTM_PUD)
		pagetable_pud_dtor(virt_to_ptdesc(old));
	call_rcu(&virt_to_ptdesc(old)->pt_rcu_head, ptm_free_upper_rcu);
	ptm_moved(p, level, addr, from, to);
	return true;
}

/*
 * The upper levels. Entries are read without their locks in a dry pass
 * (mmap_lock held for read: the tables covering VMAs stay linked); a real
 * pass holds mmap_lock for write and, while it copies a PMD table, the rmap
 * locks of what the table maps (ptm_lock_range()), so nothing else changes
 * an upper entry, and takes the page-table locks for the hardware and for
 * GUP-fast. Above the PMD tables, the old copy outlives the rmap walkers
 * that may read it instead (ptm_rmap_barrier()).
 */
static void ptm_pmd_table(struct ptm_pass *p, pud_t *pudp, unsigned long addr)
{
	struct mm_struct *mm = p->mm;
	pmd_t *old = pud_pgtable(pudp_get(pudp)), *new;
	spinlock_t *optl, *nptl;
	struct ptdesc *optd = virt_to_ptdesc(old), *nptd;
	struct page *page;
	int i, from, to;

	ptm_count(PTM_PMD, false);
	ptm_clear_votes(p);
	for (i = 0; i < PTRS_PER_PMD; i++) {
		pmd_t entry = pmdp_get_lockless(old + i);

		if (!pmd_present(entry))
			continue;
		/* A huge page NUMA balancing made PROT_NONE votes too, as above. */
		if (!pmd_leaf(entry))
			ptm_vote(p, page_to_nid(pmd_page(entry)));
		else if (p->dry)	/* a THP may be split meanwhile: its node only */
			ptm_vote(p, page_to_nid(pmd_page(entry)));
		else if (!pmd_devmap(entry))
			ptm_vote(p, ptm_page_vote(p, pmd_pfn(entry)));
	}
	ptm_weigh(p, PTM_PMD, addr);
	if (!ptm_decide(p, old, &from, &to))
		return;

	page = ptm_alloc(p, to, 0);
	if (!page)
		return;
	nptd = page_ptdesc(page);
	if (!pagetable_pmd_ctor(nptd)) {
		pagetable_free(nptd);
		return;
	}
	new = ptdesc_address(nptd);
	if (!ptm_lock_range(p, addr, addr + PUD_SIZE)) {
		pagetable_pmd_dtor(nptd);
		pagetable_free(nptd);
		return;
	}
	optl = pmd_lockptr(mm, old);
	nptl = pmd_lockptr(mm, new);

	spin_lock(&mm->page_table_lock);
	if (optl != &mm->page_table_lock)
		spin_lock_nested(optl, SINGLE_DEPTH_NESTING);
	if (nptl != optl)
		spin_lock_nested(nptl, SINGLE_DEPTH_NESTING + 1);
	for (i = 0; i < PTRS_PER_PMD; i++)
		set_pmd(new + i, pmdp_get(old + i));
#ifdef CONFIG_SPLIT_PMD_PTLOCKS
	/* The page tables deposited for THPs hang off the PMD table. */
	nptd->pmd_huge_pte = optd->pmd_huge_pte;
	optd->pmd_huge_pte = NULL;
#endif
	/* The entries must be visible before the table is. */
	smp_wmb();
	pud_populate(mm, pudp, new);
	flush_tlb_mm_range(mm, addr, addr + PUD_SIZE, PAGE_SHIFT, true);
	count_vm_event(PT_MIGRATE_FLUSH);
	ptm_retire_copy(new, old);
	if (nptl != optl)
		spin_unlock(nptl);
	if (optl != &mm->page_table_lock)
		spin_unlock(optl);
	spin_unlock(&mm->page_table_lock);
	ptm_unlock_range(p);

	pagetable_pmd_dtor(optd);	/* its deposit list went to the copy */
	call_rcu(&optd->pt_rcu_head, ptm_free_upper_rcu);
	ptm_moved(p, PTM_PMD, addr, from, to);
}

static void ptm_pud_table(struct ptm_pass *p, p4d_t *p4dp, unsigned long addr)
{
	pud_t *old = p4d_pgtable(p4dp_get(p4dp));
	struct ptdesc *nptd;
	struct page *page;
	int i, from, to;

	ptm_count(PTM_PUD, false);
	ptm_clear_votes(p);
	for (i = 0; i < PTRS_PER_PUD; i++) {
		pud_t entry = pudp_get(old + i);

		if (!pud_present(entry))
			continue;
		if (!pud_leaf(entry))
			ptm_vote_n(p, page_to_nid(virt_to_page(pud_pgtable(entry))),
				   ptm_weight(p, PTM_PMD, addr + i * PUD_SIZE));
		else if (!pud_devmap(entry))
			ptm_vote_n(p, ptm_page_vote(p, pud_pfn(entry)), PTRS_PER_PMD);
	}
	ptm_weigh(p, PTM_PUD, addr);
	if (!ptm_decide(p, old, &from, &to))
		return;

	page = ptm_alloc(p, to, 0);
	if (!page)
		return;
	nptd = page_ptdesc(page);
	pagetable_pud_ctor(nptd);
	if (!ptm_relink(p, PTM_PUD, p4dp, old, ptdesc_address(nptd), addr, from, to)) {
		pagetable_pud_dtor(nptd);
		pagetable_free(nptd);
	}
}

/*
 * An architecture that can replace the PGD of a running process (x86: by
 * reloading CR3 wherever the mm is loaded) overrides this; elsewhere the
 * PGD stays where it is.
 */
int __weak arch_pt_migrate_pgd(struct mm_struct *mm, struct page *page)
{
	return -EOPNOTSUPP;
}

/* With 5-level paging, the P4D table under *@pgdp, mapping from @addr. */
static void ptm_p4d_table(struct ptm_pass *p, pgd_t *pgdp, unsigned long addr)
{
	p4d_t *old = (p4d_t *)pgd_page_vaddr(pgdp_get(pgdp));
	struct page *page;
	int i, from, to;

	ptm_count(PTM_P4D, false);
	ptm_clear_votes(p);
	for (i = 0; i < PTRS_PER_P4D; i++) {
		p4d_t entry = p4dp_get(old + i);

		if (p4d_present(entry) && !p4d_bad(entry))
			ptm_vote_n(p, page_to_nid(virt_to_page(p4d_pgtable(entry))),
				   ptm_weight(p, PTM_PUD, addr + i * P4D_SIZE));
	}
	ptm_weigh(p, PTM_P4D, addr);
	if (!ptm_decide(p, old, &from, &to))
		return;

	page = ptm_alloc(p, to, 0);
	if (!page)
		return;
	if (!ptm_relink(p, PTM_P4D, pgdp, old, page_address(page), addr, from, to))
		__free_page(page);
}

static void ptm_free_pgd_rcu(struct rcu_head *head)
{
	__free_pages(container_of(head, struct page, rcu_head), PGD_ALLOCATION_ORDER);
}

static void ptm_pgd(struct ptm_pass *p)
{
	struct mm_struct *mm = p->mm;
	struct page *page;
	unsigned long addr;
	pgd_t *old = mm->pgd;
	int from, to;

	if (!ptm_range_movable(mm, 0, TASK_SIZE_MAX))
		return;
	ptm_count(PTM_PGD, false);
	ptm_clear_votes(p);
	for (addr = 0; addr < TASK_SIZE_MAX; addr += PGDIR_SIZE) {
		pgd_t *pgd = pgd_offset(mm, addr);
		p4d_t *p4d;

		if (pgd_none(*pgd) || pgd_bad(*pgd))
			continue;
		/* The children: P4D tables, or with 4-level paging PUD tables. */
		if (pgtable_l5_enabled()) {
			ptm_vote_n(p, page_to_nid(virt_to_page(pgd_page_vaddr(*pgd))),
				   ptm_weight(p, PTM_P4D, addr));
			continue;
		}
		p4d = p4d_offset(pgd, addr);
		if (p4d_none(*p4d) || p4d_bad(*p4d))
			continue;
		ptm_vote_n(p, page_to_nid(virt_to_page(p4d_pgtable(*p4d))),
			   ptm_weight(p, PTM_PUD, addr));
	}
	if (!ptm_decide(p, mm->pgd, &from, &to))
		return;
	page = ptm_alloc(p, to, PGD_ALLOCATION_ORDER);
	if (!page)
		return;
	if (!ptm_lock_vmas(p, 0, TASK_SIZE_MAX) || arch_pt_migrate_pgd(mm, page)) {
		__free_pages(page, PGD_ALLOCATION_ORDER);
		return;
	}
	/* GUP-fast may still be reading it, after the walkers of the rmap. */
	ptm_rmap_barrier(p, 0, TASK_SIZE_MAX);
	call_rcu(&virt_to_page(old)->rcu_head, ptm_free_pgd_rcu);
	ptm_moved(p, PTM_PGD, 0, from, to);
}

/*
 * The PMD, PUD or (5-level paging) P4D table, per @level, that maps @addr,
 * if it is there and movable.
 */
static void ptm_upper_one(struct ptm_pass *p, int level, unsigned long addr)
{
	struct mm_struct *mm = p->mm;
	pgd_t *pgd = pgd_offset(mm, addr);
	unsigned long size = level == PTM_PMD ? PUD_SIZE :
			     level == PTM_PUD ? P4D_SIZE : PGDIR_SIZE;
	p4d_t *p4d;
	pud_t *pud;

	addr &= ~(size - 1);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return;
	if (level == PTM_P4D) {
		if (ptm_range_movable(mm, addr, addr + size))
			ptm_p4d_table(p, pgd, addr);
		return;
	}
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return;
	if (level == PTM_PUD) {
		if (ptm_range_movable(mm, addr, addr + size))
			ptm_pud_table(p, p4d, addr);
		return;
	}
	pud = pud_offset(p4d, addr);
	if (!pud_present(pudp_get(pud)) || pud_leaf(pudp_get(pud)) || pud_bad(pudp_get(pud)))
		return;
	if (ptm_range_movable(mm, addr, addr + size))
		ptm_pmd_table(p, pud, addr);
}

/*
 * PMD tables, then PUD tables, then (5-level paging) P4D tables, then the
 * PGD: those above the addresses @p->at if it is set, else those of every
 * VMA of @p->mm.
 */
static void ptm_upper(struct ptm_pass *p)
{
	int levels = pgtable_l5_enabled() ? PTM_P4D : PTM_PUD;
	struct mm_struct *mm = p->mm;
	struct vm_area_struct *vma;
	unsigned long addr, last, size;
	struct vma_iterator vmi;
	int level, i;

	for (level = PTM_PMD; level <= levels; level++) {
		size = level == PTM_PMD ? PUD_SIZE : level == PTM_PUD ? P4D_SIZE : PGDIR_SIZE;
		last = -1UL;
		if (p->at) {
			for (i = 0; i < p->nr_at; i++) {
				addr = p->at[i] & ~(size - 1);
				if (addr == last)	/* sorted */
					continue;
				last = addr;
				ptm_upper_one(p, level, addr);
				if (p->misplaced)
					return;
			}
			continue;
		}
		vma_iter_init(&vmi, mm, 0);
		for_each_vma(vmi, vma) {
			for (addr = vma->vm_start & ~(size - 1); addr < vma->vm_end; addr += size) {
				if (addr == last)
					continue;
				last = addr;
				ptm_upper_one(p, level, addr);
				if (p->misplaced)
					return;
			}
		}
	}
	ptm_pgd(p);
}

/* Move the upper levels if a look under mmap_read_lock found one misplaced. */
static void ptm_upper_pass(struct ptm_pass *p, bool wait)
{
	struct mm_struct *mm = p->mm;

	p->dry = true;
	p->misplaced = false;
	if (wait)
		mmap_read_lock(mm);
	else if (!mmap_read_trylock(mm))
		return;
	if (ptm_mm_movable(mm))
		ptm_upper(p);
	mmap_read_unlock(mm);
	xa_destroy(&p->weights);
	if (!p->misplaced)
		return;

	if (wait) {
		if (mmap_write_lock_killable(mm))
			return;
	} else if (!mmap_write_trylock(mm)) {
		count_vm_event(PT_MIGRATE_BUSY);
		return;
	}
	p->dry = false;
	p->misplaced = false;
	if (ptm_mm_movable(mm))
		ptm_upper(p);
	mmap_write_unlock(mm);
	xa_destroy(&p->weights);
}

static bool ptm_init(struct ptm_pass *p, struct mm_struct *mm, int fallback)
{
	p->mm = mm;
	p->fallback = fallback;
	p->nr_locks = 0;
	p->slots = 0;
	p->at = NULL;
	p->nr_at = 0;
	xa_init(&p->weights);
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
	bool covered;
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
	covered = ptm_mm_movable(mm) &&
		  ptm_leaf_range(&p, start, end) >= end &&
		  ptm_leaf_range(&p, end, TASK_SIZE_MAX) >= TASK_SIZE_MAX &&
		  ptm_leaf_range(&p, 0, start) >= start;
	mmap_read_unlock(mm);
	/* Every table of PTEs had its turn: now the levels above. */
	if (covered || end >= TASK_SIZE_MAX)
		ptm_upper_pass(&p, false);
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
	ptm_upper_pass(&p, true);
out:
	ptm_fini(&p);
unlock:
	srcu_read_unlock(&pt_migration_srcu, idx);
}

/* Addresses whose upper tables move_pages(2) examines; beyond, all of them. */
#define PTM_MAX_AT	64

static int ptm_cmp_addr(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
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

void __pt_migrate_pages(struct mm_struct *mm, unsigned long nr,
			const void __user *__user *pages, const int __user *status)
{
	unsigned long i = 0, addr, last = -1UL;
	struct ptm_pass p;
	int idx, st;

	idx = srcu_read_lock(&pt_migration_srcu);
	if (!READ_ONCE(pt_migration_ready) || !ptm_init(&p, mm, NUMA_NO_NODE))
		goto unlock;
	p.at = kmalloc_array(PTM_MAX_AT, sizeof(*p.at), GFP_KERNEL);
	while (i < nr) {
		if (mmap_read_lock_killable(mm))
			goto out;
		p.budget = READ_ONCE(pt_migration_batch);
		for (; i < nr && p.budget; i++) {
			/* Only the pages it moved: their status is a node. */
			if (get_user(st, status + i) || ptm_get_page_addr(pages, i, &addr)) {
				i = nr;
				break;
			}
			if (st < 0 || (addr & PMD_MASK) == last)
				continue;
			last = addr & PMD_MASK;
			if (ptm_mm_movable(mm))
				ptm_leaf_range(&p, last, last + PMD_SIZE);
			if (p.at && p.nr_at < PTM_MAX_AT)
				p.at[p.nr_at++] = last;
			else
				p.nr_at = PTM_MAX_AT + 1;
		}
		mmap_read_unlock(mm);
		if (fatal_signal_pending(current))
			goto out;
		cond_resched();
	}
	if (!p.nr_at)
		goto out;
	if (p.nr_at > PTM_MAX_AT) {
		/* Too many places, or no memory to note them: everywhere. */
		kfree(p.at);
		p.at = NULL;
	} else {
		sort(p.at, p.nr_at, sizeof(*p.at), ptm_cmp_addr, NULL);
	}
	ptm_upper_pass(&p, true);
out:
	kfree(p.at);
	ptm_fini(&p);
unlock:
	srcu_read_unlock(&pt_migration_srcu, idx);
}

static int pt_migration_sysctl(const struct ctl_table *table, int write,
			       void *buffer, size_t *lenp, loff_t *ppos)
{
	struct ctl_table t = *table;
	int enabled, err;

	mutex_lock(&pt_migration_mutex);
	enabled = READ_ONCE(pt_migration_ready);
	t.data = &enabled;
	err = proc_dointvec_minmax(&t, write, buffer, lenp, ppos);
	if (err || !write || enabled == READ_ONCE(pt_migration_ready))
		goto out;
	if (enabled) {
		static_branch_enable(&pt_migration_key);
		/*
		 * page_vma_mapped_walk() locks PTE tables strictly from now
		 * on; the walks that looked one up the lax way did so in an
		 * RCU read-side section: let them finish first.
		 */
		synchronize_rcu();
		WRITE_ONCE(pt_migration_ready, true);
	} else {
		WRITE_ONCE(pt_migration_ready, false);
		synchronize_srcu(&pt_migration_srcu);
		static_branch_disable(&pt_migration_key);
	}
out:
	mutex_unlock(&pt_migration_mutex);
	return err;
}

static struct ctl_table pt_migration_table[] = {
	{
		.procname	= "pt_migration",
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= pt_migration_sysctl,
		.extra1		= SYSCTL_ZERO,
		.extra2		= SYSCTL_ONE,
	},
	{
		.procname	= "pt_migration_batch",
		.data		= &pt_migration_batch,
		.maxlen		= sizeof(pt_migration_batch),
		.mode		= 0644,
		.proc_handler	= proc_douintvec_minmax,
		.extra1		= SYSCTL_ONE,
		.extra2		= SYSCTL_INT_MAX,
	},
};

static bool pt_migration_boot __initdata;

static int __init pt_migration_setup(char *str)
{
	if (kstrtobool(str, &pt_migration_boot)) {
		pr_warn("ignoring invalid pt_migration=%s\n", str);
		return 1;
	}
	return 1;
}
__setup("pt_migration=", pt_migration_setup);

static int __init pt_migration_init(void)
{
	if (pt_migration_boot) {
		static_branch_enable(&pt_migration_key);
		WRITE_ONCE(pt_migration_ready, true);
	}
	register_sysctl_init("vm", pt_migration_table);
	return 0;
}
subsys_initcall(pt_migration_init);
