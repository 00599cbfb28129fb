// SPDX-License-Identifier: GPL-2.0-only
/*
 * vMitosis: move a process's PGD to another node
 * (Documentation/vmitosis/pt-migration.rst).
 *
 * The PGD is the one table no entry points to: CR3 does, on every CPU that
 * has the mm loaded. The copy, both halves of it with PTI, replaces the old
 * one on pgd_list and in mm->pgd; then every CPU in mm_cpumask() that has
 * the mm loaded, lazily or not, reloads CR3, and the mm's TLB generation
 * moves on so that a CPU coming back to a PCID it cached for the mm
 * flushes it. The old copy is left intact for the caller, which frees it
 * once no reverse-map walk or GUP-fast can still be reading it. Until a CPU
 * took the IPI, its CR3 holds the old PGD: cpu_tlbstate.loaded_pgd says
 * which, for the checks that compare.
 */
#include <linux/iommu.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/pt_migrate.h>
#include <linux/pgalloc.h>
#include <asm/tlbflush.h>

int arch_pt_migrate_pgd(struct mm_struct *mm, struct page *page)
{
	pgd_t *old = mm->pgd, *new = page_address(page);

	mmap_assert_write_locked(mm);
	/* An IOMMU walks this PGD from its PASID entry, which is not updated. */
	if (mm_valid_pasid(mm))
		return -EBUSY;
#ifdef CONFIG_MODIFY_LDT_SYSCALL
	/*
	 * With PTI, modify_ldt() maps the LDT through the PGD holding only
	 * ldt_usr_sem, which nests outside mmap_lock: only try it.
	 */
	if (!down_write_trylock(&mm->context.ldt_usr_sem))
		return -EBUSY;
#endif

	/*
	 * Kernel entries change under pgd_lock, for every PGD on pgd_list;
	 * sync_global_pgds() nests page_table_lock inside it.
	 */
	spin_lock(&pgd_lock);
	spin_lock(&mm->page_table_lock);
	memcpy(new, old, PAGE_SIZE << PGD_ALLOCATION_ORDER);
	virt_to_ptdesc(new)->pt_mm = mm;
	list_replace(&virt_to_ptdesc(old)->pt_list, &virt_to_ptdesc(new)->pt_list);
	WRITE_ONCE(mm->pgd, new);
	spin_unlock(&mm->page_table_lock);
	spin_unlock(&pgd_lock);

	/*
	 * Pairs with the atomic cpumask_set_cpu() in switch_mm_irqs_off(): a
	 * CPU switching to @mm now either loads the new PGD or gets the IPI.
	 */
	smp_mb();
	pt_migrate_reload_cr3(mm);
	flush_tlb_mm(mm);
	count_vm_event(PT_MIGRATE_FLUSH);
#ifdef CONFIG_MODIFY_LDT_SYSCALL
	up_write(&mm->context.ldt_usr_sem);
#endif
	return 0;
}
