/* SPDX-License-Identifier: GPL-2.0-only */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM pt_migrate

#if !defined(_TRACE_PT_MIGRATE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_PT_MIGRATE_H

#include <linux/tracepoint.h>

/*
 * One page-table page of a process moved to another node. @level is 1 for a
 * table of PTEs, 2 for PMDs, 3 for PUDs, 4 for P4Ds (5-level paging only)
 * and 5 for the PGD; @addr is the first user address the table maps.
 */
TRACE_EVENT(pt_migrate_table,
	    TP_PROTO(struct mm_struct *mm, int level, unsigned long addr,
		     int from_nid, int to_nid),
	    TP_ARGS(mm, level, addr, from_nid, to_nid),

	    TP_STRUCT__entry(__field(struct mm_struct *, mm)
			     __field(int, level)
			     __field(unsigned long, addr)
			     __field(int, from_nid)
			     __field(int, to_nid)),

	    TP_fast_assign(__entry->mm = mm;
			   __entry->level = level;
			   __entry->addr = addr;
			   __entry->from_nid = from_nid;
			   __entry->to_nid = to_nid;),

	    TP_printk("mm=%p level=%d addr=%#lx from=%d to=%d",
		      __entry->mm, __entry->level, __entry->addr,
		      __entry->from_nid, __entry->to_nid)
);

#endif /* _TRACE_PT_MIGRATE_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
