#!/usr/bin/env bash
# make bench: figures, not verdicts. Boots the emulated NUMA host (L1) and
# measures what a TDP migration pass costs against the size of the VM and
# against how much of it changed, and the TLB flushes per moved table
# (vmitosis_tdp_bench); and for gPT migration the TLB flushes per moved
# table and the mmap/munmap latency of another process while one moves its
# tables (vmitosis_pt_bench); for ePT replication the cost of TDP faults, dirty-log harvests
# and invalidations and the memory per node, without it and with 1, 2 and 4 copies
# (vmitosis_repl_bench); writes out/bench.json and out/bench.md. Emulated
# times are not NUMA-real: the figures that matter are counts (SPTEs read,
# flushes), which do not depend on the emulation's speed.
. "$(dirname "$0")/lib.sh"

mkdir -p "$OUT"
share=$(mktemp -d "$BUILD/benchshare.XXXXXX")
trap 'rm -rf "$share"' EXIT
b=/opt/vmitosis/selftests/vmitosis
SHARE=$share CMD="$b/vmitosis_tdp_bench > /share/bench.json && $b/vmitosis_pt_bench > /share/pt_bench.json \
&& $b/vmitosis_repl_bench > /share/repl_bench.json" \
	"$TOP/workbench/vm.sh" || die "the benchmark failed in L1 (exit $?)"
[ -s "$share/bench.json" ] && [ -s "$share/pt_bench.json" ] && [ -s "$share/repl_bench.json" ] ||
	die "the benchmark wrote nothing"

/usr/bin/python3 - "$share/bench.json" "$share/pt_bench.json" "$share/repl_bench.json" "$OUT" \
	"$(git -C "$TOP" rev-parse --short HEAD)" <<'EOF'
import json, sys, time
src, pt_src, repl_src, out, rev = sys.argv[1:6]
b = json.load(open(src))
b.update(json.load(open(pt_src)))
b.update(json.load(open(repl_src)))
b["meta"] = {"commit": rev, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "bed": "QEMU TCG, 4 nodes, L1 = the patched kernel"}
json.dump(b, open(out + "/bench.json", "w"), indent=2)
md = ["# vMitosis benchmark", "",
      "Commit %s, %s. Counts, not times: the emulated host is not NUMA-real." % (rev, b["meta"]["date"]), "",
      "## ePT migration: SPTEs read per pass (finding 5)", "",
      "A VM spans N GiB of guest memory, one 16 MiB slot (4K pages) per GiB. A pass over all of it",
      "(debugfs request) against the first pass after 2 MiB were unmapped in k of the N GiB.", "",
      "| GiB spanned | MiB mapped | pass over all | after 1 GiB changed | after N/2 | after N |",
      "|---:|---:|---:|---:|---:|---:|"]
for r in b["pass_cost"]:
    a = r["after_unmap"]
    md.append("| %d | %d | %d | %d | %d (%d GiB) | %d |" % (r["gib"], r["mapped_mib"], r["full_pass_reads"],
              a[0]["reads"], a[1]["reads"], a[1]["gib_changed"], a[2]["reads"]))
e = b["ept_move_256mib"]
md += ["", "## ePT migration: TLB flushes per moved table (finding 10)", "",
       "A 256 MiB VM moved from node 0 to node 1: %d tables moved with %d flushes (%.3f per table);"
       % (e["tables_moved"], e["tlb_flushes"], e["tlb_flushes"] / max(e["tables_moved"], 1)),
       "the longest hold of mmu_lock read %d SPTEs (%d us emulated)." % (e["max_lock_hold_reads"], e["max_lock_hold_us"]), "",
       "## gPT migration: TLB flushes per moved table (finding 10)", "",
       "A process on node 0 moves its memory to node 1 with migrate_pages(2); its page tables, every",
       "level, follow. Tables of PTEs are flushed in batches of up to 64, upper tables one by one.", "",
       "| MiB | pages | tables moved | TLB flushes | per table |", "|---:|---|---:|---:|---:|"]
for r in b["gpt_flushes"]:
    md.append("| %d | %s | %d | %d | %.3f |" % (r["mib"], "THP" if r["thp"] else "4K", r["tables_moved"],
              r["tlb_flushes"], r["tlb_flushes"] / max(r["tables_moved"], 1)))
md += ["", "## gPT migration: mmap/munmap of libc in another process (finding 7)", "",
       "One process on node 2 maps and unmaps libc for 6 s while another, which maps libc too, moves",
       "64 MiB between nodes 0 and 1 (its tables with it when vm.pt_migration=1). Emulated times:",
       "compare the two rows, not the figures with real hardware.", "",
       "| vm.pt_migration | calls | median us | p99 us | worst us | tables moved |",
       "|---:|---:|---:|---:|---:|---:|"]
for r in b["mmap_latency_other_process"]:
    md.append("| %d | %d | %.1f | %.1f | %.1f | %d |" % (r["pt_migration"], r["calls"], r["median_us"],
              r["p99_us"], r["worst_us"], r["tables_moved"]))
r = b["tdp_replication"]
off = r["configs"][0]
md += ["", "## ePT replication: what copies cost (issue 12)", "",
       "A VM with a %d MiB slot of 4K pages, faulted in by KVM_PRE_FAULT_MEMORY from vCPU 0 on the" % r["slot_mib"],
       "first node; then, dirty logging on (manual protect, all pages initially dirty), one",
       "KVM_CLEAR_DIRTY_LOG of the whole slot (clears the Dirty bit of every leaf of every copy);",
       "then MADV_DONTNEED of the slot (an MMU-notifier zap of every copy). Medians of %d rounds," % r["reps"],
       "configurations interleaved; emulated times: compare rows, and the ratios to no replication.",
       "Nodes 1: replication on with the primary alone (every hook runs, no copy).", "",
       "| nodes | fault ns/page | x off | harvest ns/page | x off | invalidate ns/page | x off | SecPageTables kB per node |",
       "|---:|---:|---:|---:|---:|---:|---:|---|"]
for c in r["configs"]:
    md.append("| %s | %.0f | %.2f | %.0f | %.2f | %.0f | %.2f | %s |" % (
        c["nodes"] or "off", c["fault_ns_per_page"], c["fault_ns_per_page"] / off["fault_ns_per_page"],
        c["harvest_ns_per_page"], c["harvest_ns_per_page"] / off["harvest_ns_per_page"],
        c["invalidate_ns_per_page"], c["invalidate_ns_per_page"] / off["invalidate_ns_per_page"],
        " / ".join(str(x) for x in c["sec_page_tables_kb"])))
md.append("")
open(out + "/bench.md", "w").write("\n".join(md))
print("\n".join(md))
EOF
say "bench: $OUT/bench.json, $OUT/bench.md"
