/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vMitosis page-table migration: a process's page-table pages follow what
 * they map to its NUMA node (Documentation/vmitosis/pt-migration.rst).
 *
 * The hooks are inline and behind a static key, as page_table_check's are:
 * with vm.pt_migration off they cost a patched-out branch.
 */
#ifndef _LINUX_PT_MIGRATE_H
#define _LINUX_PT_MIGRATE_H

#include <linux/jump_label.h>
#include <linux/numa.h>

struct mm_struct;
struct page;

#ifdef CONFIG_VMITOSIS_PT_MIGRATION

DECLARE_STATIC_KEY_FALSE(pt_migration_key);

static inline bool pt_migration_enabled(void)
{
	return static_branch_unlikely(&pt_migration_key);
}

void __pt_migrate_numa_scan(struct mm_struct *mm, unsigned long start,
			    unsigned long end);
void __pt_migrate_mm(struct mm_struct *mm, int fallback_nid);
void __pt_migrate_pages(struct mm_struct *mm, unsigned long nr,
			const void __user *__user *pages, const int __user *status);

/* Architecture: replace @mm's PGD with a copy in @page; 0 or -errno. */
int arch_pt_migrate_pgd(struct mm_struct *mm, struct page *page);
/* Architecture: CPUs that have @mm loaded load its new PGD. */
void pt_migrate_reload_cr3(struct mm_struct *mm);

/*
 * NUMA balancing has scanned [@start, @end) of @mm, the current task's mm:
 * move a bounded number of its page tables there, and the upper levels
 * once the scan has covered the whole address space.
 */
static inline void pt_migrate_numa_scan(struct mm_struct *mm,
					unsigned long start, unsigned long end)
{
	if (pt_migration_enabled())
		__pt_migrate_numa_scan(mm, start, end);
}

/*
 * Memory of @mm was moved on request (migrate_pages(2), move_pages(2),
 * cpuset): move all its page tables. Tables whose entries do not tell
 * (nothing mapped there that this process owns alone) go to @fallback_nid,
 * or stay when it is NUMA_NO_NODE.
 */
static inline void pt_migrate_mm(struct mm_struct *mm, int fallback_nid)
{
	if (pt_migration_enabled())
		__pt_migrate_mm(mm, fallback_nid);
}

/*
 * move_pages(2) moved pages of @mm: the @nr entries of @pages and @status,
 * the caller's arrays, say which (a status that is a node). Move the tables
 * that map those, and the upper tables above them.
 */
static inline void pt_migrate_pages(struct mm_struct *mm, unsigned long nr,
				    const void __user *__user *pages,
				    const int __user *status)
{
	if (pt_migration_enabled())
		__pt_migrate_pages(mm, nr, pages, status);
}

#else

static inline bool pt_migration_enabled(void)
{
	return false;
}

static inline void pt_migrate_numa_scan(struct mm_struct *mm,
					unsigned long start, unsigned long end)
{
}

static inline void pt_migrate_mm(struct mm_struct *mm, int fallback_nid)
{
}

static inline void pt_migrate_pages(struct mm_struct *mm, unsigned long nr,
				    const void __user *__user *pages,
				    const int __user *status)
{
}

#endif /* CONFIG_VMITOSIS_PT_MIGRATION */

#endif /* _LINUX_PT_MIGRATE_H */
