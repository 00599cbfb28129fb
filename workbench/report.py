#!/usr/bin/env python3
"""make run's report: out/report.json, out/report.md and out/report.png from the runs that
make run took (build/run-share/walks/<run>/: gpt.dump, ept.dump, meta, ...), each replayed
with tools/vmitosis/walk_locality.py. Prints each run's per-socket table as it goes.

  report.py WALKS_DIR SOCKETS OUT_DIR ANALYZER_DIR
"""

import json
import os
import subprocess
import sys

ORDER = {"thin-migrated": 0, "wide": 1, "visible": 0, "oblivious": 1,
         "gups-4k": 0, "gups-thp": 1, "memcached": 2}
FIELDS = ("gpt_local", "ept_local", "ll", "lr", "rl", "rr")


def read_meta(d):
    meta = {}
    with open(os.path.join(d, "meta")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(" ")
            meta[k] = v
    return meta


def lines_of(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except OSError:
        return []


def headline(run):
    """The run's figures in the summary: socket 1 for thin-migrated (where the workload was
    measured). For wide (one worker per socket, each walking the whole process) the local
    fractions per socket, since their mean is 1/sockets whatever the placement, and the mean
    of the leaf breakdown (mean LL: the walks of a worker whose two leaf entries are local)."""
    s = run["sockets"]
    if run["measured_on"] is not None:
        return next(e for e in s if e["socket"] == run["measured_on"])
    out = {k: (sum(e[k] for e in s) / len(s) if s and all(e[k] is not None for e in s)
               else None) for k in FIELDS}
    for k in ("gpt_local", "ept_local"):
        out[k] = [e[k] for e in s]
    return out


GPT_LEVELS = (("pte", 1), ("pmd", 2), ("pud", 3), ("pgd", 4))


def gpt_summary(m, extra=True):
    s = ", ".join("L%d %d/%d" % (n, m.get(k, 0), m.get("scan_" + k, 0)) for k, n in GPT_LEVELS)
    if extra:
        s += " (level migrated/scanned), no memory %d, lock busy %d" % (
            m.get("nomem", 0), m.get("busy", 0))
    return s


def fmt(v):
    if isinstance(v, list):
        return "/".join("%.2f" % x if x is not None else "-" for x in v)
    return "-" if v is None else "%.3f" % v


def label(r):
    """A run's name on the chart, its scenario left out (each panel holds one)."""
    return "%s %s%s" % (r["guest"], r["workload"],
                        "" if r["config"] == "baseline" else " " + r["config"])


def chart(runs, out):
    """out/report.png, two panels. Top: the thin-migrated runs, gPT and ePT local fractions on
    socket 1, where the workload ran. Bottom: the wide runs, one bar per socket for gPT and
    one per socket for ePT, so that the picture shows which socket walks locally (their mean
    is 1/sockets whatever the placement, so a single figure would hide it)."""
    thin = [r for r in runs if r["measured_on"] is not None]
    wide = [r for r in runs if r["measured_on"] is None]
    nsock = max((len(r["sockets"]) for r in wide), default=0)
    thin_dat = os.path.join(out, "report-thin.dat")
    wide_dat = os.path.join(out, "report-wide.dat")
    with open(thin_dat, "w") as f:
        for r in thin:
            h = headline(r)
            f.write('"%s" %s %s\n' % (label(r), h["gpt_local"] or 0, h["ept_local"] or 0))
    with open(wide_dat, "w") as f:
        for r in wide:
            by = {e["socket"]: e for e in r["sockets"]}
            cols = [by.get(s, {}).get(k) or 0 for k in ("gpt_local", "ept_local")
                    for s in range(nsock)]
            f.write('"%s" %s\n' % (label(r), " ".join(str(c) for c in cols)))
    # Light to dark blue for gPT, light to dark red for ePT, socket 0 first.
    blues = ["#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b", "#041c40"]
    reds = ["#fcae91", "#fb6a4a", "#de2d26", "#a50f15", "#67000d", "#3b0007"]
    wide_plot = ", ".join(
        "'%s' using %d%s title '%s socket %d' lc rgb '%s'" % (
            wide_dat if i == 0 else "", i + 2, ":xtic(1)" if i == 0 else "",
            "gPT" if i < nsock else "ePT", i % nsock,
            (blues if i < nsock else reds)[(i % nsock) % len(blues)])
        for i in range(2 * nsock))
    script = """
set terminal png size 1400,1300 font ',10'
set output '%(png)s'
set style data histograms
set style fill solid 0.85 border -1
set yrange [0:1.05]
set ylabel 'fraction local'
set xtics rotate by 30 right font ',9' nomirror
set key outside right top vertical
set grid ytics
set lmargin 24
set rmargin 22
set multiplot layout 2,1
set bmargin 14
set title 'thin-migrated: page-table accesses local to socket 1, where the workload ran'
set style histogram clustered gap 1
plot '%(thin)s' using 2:xtic(1) title 'gPT local' lc rgb '#3182bd', \
     '' using 3 title 'ePT local' lc rgb '#de2d26'
set title 'wide (one worker per socket): page-table accesses local to each socket'
set style histogram clustered gap 2
%(wide)s
unset multiplot
""" % {"png": os.path.join(out, "report.png"), "thin": thin_dat,
       "wide": ("plot " + wide_plot) if wide else "set label 1 'no wide run' at graph 0.5,0.5\n"
       "plot 2 notitle"}
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print("report: no chart (%s)" % e, file=sys.stderr)


def main(walks, sockets, out, analyzer_dir):
    sys.path.insert(0, analyzer_dir)
    import walk_locality as wl

    runs = []
    names = [n for n in os.listdir(walks) if os.path.isfile(os.path.join(walks, n, "meta"))]
    names.sort(key=lambda n: [ORDER.get(p, 9) for p in n.split(".")])
    for name in names:
        d = os.path.join(walks, name)
        try:
            meta = read_meta(d)
            with open(os.path.join(d, "gpt.dump")) as f:
                gpt = wl.ProcessDump(f)
            with open(os.path.join(d, "ept.dump")) as f:
                ept = wl.TdpDump(f)
        except (OSError, wl.DumpError) as e:
            print("report: %s: %s" % (name, e), file=sys.stderr)
            continue
        res = wl.analyze(gpt, ept, list(range(sockets)))
        # Page-table pages per host node: ePT tables of every root (roots included) and the
        # guest process's tables, each on the host node of the page backing its guest frame.
        ept_nodes = [0] * sockets
        copy_nodes = [0] * sockets       # ePT replication: the copies' pages
        for root in ept.roots.values():
            for node in [root["node"]] + list(root["tables"].values()):
                if 0 <= node < sockets:
                    ept_nodes[node] += 1
            for c in [root["copies"]] + list(root["table_copies"].values()):
                for node in c.values():
                    if 0 <= node < sockets:
                        copy_nodes[node] += 1
        gpt_nodes = [0] * sockets
        for pfn, _ in [gpt.pgd] + list(gpt.tables.values()):
            w = ept.walk(0, pfn)
            if w and 0 <= w[1] < sockets:
                gpt_nodes[w[1]] += 1
        thin = meta["scenario"] == "thin-migrated"
        guest_thp = [line.split()[1] for line in lines_of(d, "guest.txt")
                     if line.startswith("thp ")]
        # kvm.tdp_migration's counters (tdp_migrate in the VM's debugfs), when it ran.
        migration = {}
        for line in lines_of(d, "tdp_migrate"):
            f = line.split()
            if f[0] == "level" and len(f) == 6:
                migration.setdefault("levels", {})[f[1]] = {"scanned": int(f[3]),
                                                            "migrated": int(f[5])}
            elif len(f) == 2 and f[1].isdigit():
                migration[f[0]] = int(f[1])
        # TDP faults and SecPageTables per node (kB), and kvm.tdp_replication's check.
        stats = {}
        for line in lines_of(d, "kvm_stats"):
            f = line.split()
            if f[0] == "pf_fixed" and len(f) == 2 and f[1].isdigit():
                stats["pf_fixed"] = int(f[1])
            elif f[0] == "sec_page_tables_kb" and all(x.isdigit() for x in f[1:]):
                stats["sec_page_tables_kb"] = [int(x) for x in f[1:]]
        replication = {}
        for line in lines_of(d, "tdp_repl"):
            f = line.split()
            if f[0] in ("copies", "copy_leaves") and all(x.isdigit() for x in f[1:]):
                replication[f[0]] = [int(x) for x in f[1:]]
            elif f[0] == "vcpu" and len(f) == 6:
                replication.setdefault("vcpu_walks", {})[int(f[1])] = int(f[5])
            elif len(f) == 2 and f[1].isdigit():
                replication[f[0]] = int(f[1])
        # vm.pt_migration's counters in the guest (its /proc/vmstat), when it ran.
        gpt_migration = {}
        for line in lines_of(d, "guest.txt"):
            f = line.split()
            if len(f) == 3 and f[0] == "vmstat" and f[1].startswith("pt_migrate_"):
                gpt_migration[f[1][len("pt_migrate_"):]] = int(f[2])
        run = {
            "scenario": meta["scenario"],
            "guest": meta["guest"],
            "workload": meta["workload"],
            "config": meta["config"],
            "measured_on": 1 if thin else None,
            "sockets": [{k: e[k] for k in ("socket",) + FIELDS} for e in res["sockets"]],
            "pt_pages_per_node": {"gpt": gpt_nodes, "ept": ept_nodes,
                                  "ept_copies": copy_nodes},
            "pf_fixed": stats.get("pf_fixed"),
            "sec_page_tables_kb": stats.get("sec_page_tables_kb"),
            "ept_replication": replication if "ept-replication" in meta["config"] else None,
            "translations": min((e["translations"] for e in res["sockets"]), default=0),
            "unwalkable": res["unwalkable"],
            "thp": {"host": meta.get("host_thp"), "guest": guest_thp[0] if guest_thp else None},
            "gups_size": meta.get("size") if meta["workload"].startswith("gups") else None,
            "guest_opts": meta.get("guest_opts"),
            "host_move": meta.get("host_move"),
            "ept_migration": migration if "ept-migration" in meta["config"] else None,
            "gpt_migration": gpt_migration if "gpt" in meta["config"] else None,
            "workload_output": lines_of(d, "workload.txt"),
        }
        runs.append(run)
        print("\n== %s, NUMA-%s guest, %s, %s: 2D walks of %d translations%s" % (
            run["scenario"], run["guest"], run["workload"], run["config"], run["translations"],
            " (%d leaves not walkable)" % run["unwalkable"] if run["unwalkable"] else ""))
        print("  socket  gpt_local  ept_local     LL     LR     RL     RR")
        for e in run["sockets"]:
            print("  %6d  %9s  %9s  %5s  %5s  %5s  %5s%s" % (
                (e["socket"],) + tuple(fmt(e[k]) for k in FIELDS) +
                ("   <- measured here" if e["socket"] == run["measured_on"] else "",)))
        print("  page-table pages per host node: gPT %s, ePT %s%s" % (
            gpt_nodes, ept_nodes, ", ePT copies %s" % copy_nodes if any(copy_nodes) else ""))
        print("  TDP faults fixed: %s, SecPageTables per host node: %s kB" % (
            run["pf_fixed"], run["sec_page_tables_kb"]))
        if run["ept_replication"]:
            m = run["ept_replication"]
            print("  ePT replication: mismatch %s, misplaced %s, fallback %s, alloc_failed %s, "
                  "vCPU -> node of the root it walks %s" % (
                      m.get("mismatch"), m.get("misplaced"), m.get("fallback"),
                      m.get("alloc_failed"), m.get("vcpu_walks")))
        if run["ept_migration"]:
            m = run["ept_migration"]
            print("  ePT migration: %s tables migrated (%s), roots %s, longest mmu_lock hold %.1f us"
                  % (sum(v["migrated"] for v in m.get("levels", {}).values()),
                     ", ".join("L%s %d/%d" % (k, v["migrated"], v["scanned"])
                               for k, v in sorted(m.get("levels", {}).items()) if v["scanned"]),
                     m.get("roots_migrated"), m.get("max_lock_hold_ns", 0) / 1000))
        if run["gpt_migration"]:
            print("  gPT migration in the guest: %s" % gpt_summary(run["gpt_migration"]))

    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump({"runs": runs}, f, indent=1)

    md = ["# Page-walk locality (make run)", "",
          "Fraction of the page-table accesses of a TLB miss that are local to the socket, "
          "from live dumps of the workload's page tables in the guest (gPT) and of its VM's "
          "TDP tables in the host (ePT): every mapped page of the process walked in software, "
          "4 gPT + 20 ePT accesses per 4K translation (fewer with huge pages). LL/LR/RL/RR: "
          "translations whose gPT leaf entry and ePT leaf entry (of the data) are "
          "local or remote.", "",
          "thin-migrated: the workload is set up on socket 0, moved to socket 1 (visible "
          "guest: by the guest, CPU affinity and migratepages; oblivious guest: the whole VM "
          "by the host, vCPU threads re-pinned and migratepages of QEMU) and measured on "
          "socket 1. wide: one worker per socket, memory placed by first touch, each worker "
          "walking the whole process: gPT and ePT local per socket (0/1/2/3; their mean is "
          "1/4 by construction), LL to RR as the mean over the sockets.", "",
          "| scenario | guest | workload | config | measured on | gPT local | ePT local "
          "| LL | LR | RL | RR |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        h = headline(r)
        md.append("| %s | %s | %s | %s | %s | %s |" % (
            r["scenario"], r["guest"], r["workload"], r["config"],
            "socket %d" % r["measured_on"] if r["measured_on"] is not None
            else "each socket (LL-RR: mean)",
            " | ".join(fmt(h[k]) for k in FIELDS)))
    md += ["", "## Per socket", "",
           "| scenario | guest | workload | config | socket | gPT local | ePT local "
           "| LL | LR | RL | RR |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        for e in r["sockets"]:
            md.append("| %s | %s | %s | %s | %d | %s |" % (
                r["scenario"], r["guest"], r["workload"], r["config"], e["socket"],
                " | ".join(fmt(e[k]) for k in FIELDS)))
    md += ["", "## Page-table pages per host node", "",
           "gPT: the workload's page-table pages, by the host node backing each guest frame; "
           "ePT: the VM's TDP page-table pages, roots included.", "",
           "| scenario | guest | workload | config | gPT | ePT | translations | THP host/guest |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        md.append("| %s | %s | %s | %s | %s | %s | %d | %s/%s |" % (
            r["scenario"], r["guest"], r["workload"], r["config"],
            r["pt_pages_per_node"]["gpt"], r["pt_pages_per_node"]["ept"], r["translations"],
            r["thp"]["host"], r["thp"]["guest"]))
    md += ["", "## ePT migration", "",
           "Tables migrated / scanned per level (L4: the root), from the VM's tdp_migrate.", "",
           "| scenario | guest | workload | migrated/scanned | roots | longest mmu_lock hold |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        m = r["ept_migration"]
        if not m:
            continue
        md.append("| %s | %s | %s | %s | %s | %.1f us |" % (
            r["scenario"], r["guest"], r["workload"],
            ", ".join("L%s %d/%d" % (k, v["migrated"], v["scanned"])
                      for k, v in sorted(m.get("levels", {}).items()) if v["scanned"]),
            m.get("roots_migrated"), m.get("max_lock_hold_ns", 0) / 1000))
    md += ["", "## TDP faults and secondary page tables", "",
           "TDP faults fixed (the VM's pf_fixed, all vCPUs, when the tables were dumped), "
           "their ratio to the baseline run of the same scenario, guest and workload, and "
           "SecPageTables per host node (kB, TDP tables but roots). With ept-replication: "
           "table pages of the copies per node, the node of the root each vCPU walked, and "
           "the VM's tdp_repl check (entries of copies that differ from the primary, "
           "copies off their node, links of copies to primary tables).", "",
           "| scenario | guest | workload | config | pf_fixed | vs baseline | SecPageTables "
           "| copies | vCPU -> root node | mismatch/misplaced/fallback |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    base = {(r["scenario"], r["guest"], r["workload"]): r["pf_fixed"]
            for r in runs if r["config"] == "baseline"}
    for r in runs:
        b = base.get((r["scenario"], r["guest"], r["workload"]))
        m = r["ept_replication"] or {}
        md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["scenario"], r["guest"], r["workload"], r["config"], r["pf_fixed"],
            "%.2fx" % (r["pf_fixed"] / b) if b and r["pf_fixed"] is not None else "-",
            r["sec_page_tables_kb"],
            r["pt_pages_per_node"]["ept_copies"] if m else "-",
            " ".join("%d->%d" % kv for kv in sorted(m.get("vcpu_walks", {}).items())) or "-",
            "%s/%s/%s" % (m.get("mismatch"), m.get("misplaced"), m.get("fallback"))
            if m else "-"))
    md += ["", "## gPT migration", "",
           "Guest page tables migrated / scanned per level (L4: the PGD), from the guest's "
           "/proc/vmstat (`pt_migrate_*`).", "",
           "| scenario | guest | workload | config | migrated/scanned | no memory | lock busy |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        m = r["gpt_migration"]
        if not m:
            continue
        md.append("| %s | %s | %s | %s | %s | %d | %d |" % (
            r["scenario"], r["guest"], r["workload"], r["config"], gpt_summary(m, False),
            m.get("nomem", 0), m.get("busy", 0)))
    md += ["", "## Workload output", ""]
    for r in runs:
        md.append("- %s, %s guest, %s, %s: %s" % (r["scenario"], r["guest"], r["workload"],
                                                 r["config"],
                                                 "; ".join(r["workload_output"]) or "-"))
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    chart(runs, out)
    return 0 if runs else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
