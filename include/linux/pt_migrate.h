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

#ifdef CONFIG_VMITOSIS_PT_MIGRATION

DECLARE_STATIC_KEY_FALSE(pt_migration_key);

static inline bool pt_migration_enabled(void)
{
	return static_branch_unlikely(&pt_migration_key);
}

#else

static inline bool pt_migration_enabled(void)
{
	return false;
}

#endif /* CONFIG_VMITOSIS_PT_MIGRATION */

#endif /* _LINUX_PT_MIGRATE_H */
