#!/usr/bin/env python3
"""make run's report: out/report.json, out/report.md and out/report.png from the page-table
dumps that make run took (build/run-share/walks/<run>/{gpt,ept}.dump), replayed with
tools/vmitosis/walk_locality.py.

  report.py WALKS_DIR SOCKETS OUT_DIR ANALYZER_DIR
"""

import json
import os
import subprocess
import sys


def main(walks, sockets, out, analyzer_dir):
    sys.path.insert(0, analyzer_dir)
    import walk_locality as wl

    runs = []
    for name in sorted(os.listdir(walks)):
        d = os.path.join(walks, name)
        try:
            with open(os.path.join(d, "gpt.dump")) as f:
                gpt = wl.ProcessDump(f)
            with open(os.path.join(d, "ept.dump")) as f:
                ept = wl.TdpDump(f)
        except (OSError, wl.DumpError) as e:
            print("report: %s: %s" % (name, e), file=sys.stderr)
            continue
        res = wl.analyze(gpt, ept, list(range(sockets)))
        guest = "oblivious" if name.startswith("oblivious") else "visible"
        # Page-table pages per host node: ePT tables (root included) and the guest's page
        # tables, each on the node of the host page that backs its guest frame.
        root = ept.roots[0]
        ept_nodes = [0] * sockets
        for node in [root["node"]] + list(root["tables"].values()):
            if 0 <= node < sockets:
                ept_nodes[node] += 1
        gpt_nodes = [0] * sockets
        for pfn, _ in [gpt.pgd] + list(gpt.tables.values()):
            w = ept.walk(0, pfn)
            if w and 0 <= w[1] < sockets:
                gpt_nodes[w[1]] += 1
        runs.append({
            "scenario": "thin-migrated" if name.endswith("-thin") else "thin",
            "guest": guest,
            "workload": "vmitosis_mem 256M 4K",
            "config": "baseline",
            "note": ("process populated on guest node 0, then moved to guest node 1"
                     if name.endswith("-thin") else "process on guest node 0, not moved"),
            "sockets": [{k: e[k] for k in ("socket", "gpt_local", "ept_local",
                                            "ll", "lr", "rl", "rr")}
                        for e in res["sockets"]],
            "translations": res["sockets"][0]["translations"] if res["sockets"] else 0,
            "pt_pages_per_node": {"gpt": gpt_nodes, "ept": ept_nodes},
        })

    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump({"runs": runs}, f, indent=1)

    md = ["# Page-walk locality (make run)", "",
          "Fraction of page-table accesses local to each socket, from the live dumps of the "
          "guest process (gPT) and of its VM's TDP tables (ePT), every page of the process "
          "walked in software. `thin` runs stay on guest node 0; `thin-migrated` moves to "
          "guest node 1 after populating, and is read on socket 1.", "",
          "| scenario | guest | config | socket | gpt_local | ept_local | LL | LR | RL | RR |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        for e in r["sockets"]:
            md.append("| %s | %s | %s | %d | %s |" % (
                r["scenario"], r["guest"], r["config"], e["socket"],
                " | ".join("%.3f" % e[k] if e[k] is not None else "-"
                           for k in ("gpt_local", "ept_local", "ll", "lr", "rl", "rr"))))
    md += ["", "Page-table pages per host node (gPT: by the node backing each guest table):", "",
           "| scenario | guest | gPT | ePT |", "| --- | --- | --- | --- |"]
    for r in runs:
        md.append("| %s | %s | %s | %s |" % (r["scenario"], r["guest"],
                                            r["pt_pages_per_node"]["gpt"],
                                            r["pt_pages_per_node"]["ept"]))
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    # The chart: gPT and ePT local fraction per socket, one group per run.
    data = os.path.join(out, "report.dat")
    with open(data, "w") as f:
        for r in runs:
            for e in r["sockets"]:
                f.write('"%s %s s%d" %s %s\n' % (r["scenario"], r["guest"], e["socket"],
                                                 e["gpt_local"] or 0, e["ept_local"] or 0))
    script = """
set terminal png size 1200,500
set lmargin 10
set output '%s'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:1.05]
set ylabel 'fraction of accesses local to the socket'
set xtics rotate by -45 font ',8'
set key top right
plot '%s' using 2:xtic(1) title 'gPT local', '' using 3 title 'ePT local'
""" % (os.path.join(out, "report.png"), data)
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print("report: no chart (%s)" % e, file=sys.stderr)
    return 0 if runs else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
