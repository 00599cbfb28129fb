/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * x86 helpers of vMitosis page-table migration (mm/vmitosis/pt_migrate.c):
 * what the generic code must not know about the format of an entry.
 */
#ifndef _ASM_X86_PT_MIGRATE_H
#define _ASM_X86_PT_MIGRATE_H

#include <linux/pgtable.h>

/*
 * The bits of a page-table entry, at any level, that the CPU sets on its
 * own while it walks: Accessed and Dirty, and only in present entries.
 */
static inline unsigned long arch_pt_migrate_hw_bits(unsigned long entry)
{
	if (!(entry & _PAGE_PRESENT))
		return 0;
	return entry & (_PAGE_ACCESSED | _PAGE_DIRTY);
}

/*
 * Take a PTE out of a table that is being replaced by a copy: atomically,
 * so that no bit the CPU sets meanwhile is lost, and without the
 * page_table_check accounting of ptep_get_and_clear(), since the mapping
 * itself stays (in the copy, through set_pte()).
 */
static inline pte_t arch_pt_migrate_take_pte(pte_t *ptep)
{
	return native_ptep_get_and_clear(ptep);
}

#endif /* _ASM_X86_PT_MIGRATE_H */
