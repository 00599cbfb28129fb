#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Page-walk locality from page-table dumps, in one or two dimensions.

Replays in software the page-table walk of every leaf of a process, from the
point of view of each socket (NUMA node), and reports which fraction of the
memory accesses of those walks are local to that socket.

  walk_locality.py --gpt PT_DUMP [--ept TDP_PT_DUMP] [--root SOCKET=ROOT ...]
                   [--sockets N] [--json]

--gpt is /proc/<pid>/pt_dump of the process (Documentation/vmitosis/pt-info.rst).
Alone, it is a bare-metal walk: each access is to the node the dump names.
With --ept, the tdp_pt_dump of the VM that runs the process, the walk is
two-dimensional, as on hardware with EPT/NPT: the frame numbers of the
process dump are guest-physical; every guest table access is preceded by a
TDP walk of its guest-physical address, and the data address is translated
by one more TDP walk. With 4-level paging in both dimensions that is 4 gPT
and 20 ePT accesses per translation (24); huge leaves in either dimension
shorten the walks, 5-level paging lengthens them. The node of a guest table
is the host node of the page that backs it (the ePT leaf of its frame).

Each leaf of the process is one translation, whatever its size. --root says
which TDP root a socket's vCPUs walk (default: root 0 for every socket).

Per socket it reports: gpt_local and ept_local, the fractions of the gPT and
of the ePT accesses that are local; ll, lr, rl, rr, the fractions of
translations whose gPT leaf entry (first letter) and ePT leaf entry of the
data address (second letter) are local (L) or remote (R).
"""

import argparse
import json
import sys


class DumpError(Exception):
    pass


def _int(s):
    """A number of the dumps: hexadecimal with 0x, else decimal."""
    return int(s, 0)


class ProcessDump:
    """/proc/<pid>/pt_dump: the PGD, tables keyed by (level, first address), leaves."""

    def __init__(self, lines):
        self.pgd = None                  # (pfn, node)
        self.tables = {}                 # (level, first address) -> (pfn, node)
        self.leaves = []                 # (address, level, pfn, node)
        for n, line in enumerate(lines, 1):
            f = line.split()
            if not f or f[0].startswith("#"):
                continue
            try:
                if f[0] == "pgd" and len(f) == 3:
                    self.pgd = (_int(f[1]), int(f[2]))
                elif f[0] == "table" and len(f) == 5:
                    self.tables[(int(f[1]), _int(f[2]))] = (_int(f[3]), int(f[4]))
                elif f[0] == "leaf" and len(f) == 5:
                    self.leaves.append((_int(f[1]), int(f[2]), _int(f[3]), int(f[4])))
                else:
                    raise ValueError
            except ValueError:
                raise DumpError("process dump, line %d: %r" % (n, line.rstrip()))
        if self.pgd is None:
            raise DumpError("process dump: no pgd line")
        self.top = 5 if any(level == 4 for level, _ in self.tables) else 4

    def path(self, addr, leaf_level):
        """(pfn, node) of every table a walk of @addr reads, from the PGD down."""
        out = [self.pgd]
        for level in range(self.top - 1, leaf_level - 1, -1):
            span = 1 << (12 + 9 * level)
            t = self.tables.get((level, addr & ~(span - 1)))
            if t is None:
                return None
            out.append(t)
        return out


class TdpDump:
    """tdp_pt_dump: per root, its level and node, tables and leaves by GFN."""

    def __init__(self, lines):
        self.roots = {}                  # id -> dict(level, node, tables, leaves)
        cur = None
        for n, line in enumerate(lines, 1):
            f = line.split()
            if not f or f[0].startswith("#"):
                continue
            try:
                if f[0] == "root" and len(f) == 5:
                    cur = {"level": int(f[2]), "node": int(f[3]), "tables": {}, "leaves": {}}
                    self.roots[int(f[1])] = cur
                elif f[0] == "table" and len(f) == 4 and cur is not None:
                    cur["tables"][(int(f[1]), _int(f[2]))] = int(f[3])
                elif f[0] == "leaf" and len(f) == 4 and cur is not None:
                    level = int(f[2])
                    cur["leaves"][(level, _int(f[1]) >> (9 * (level - 1)))] = int(f[3])
                else:
                    raise ValueError
            except ValueError:
                raise DumpError("TDP dump, line %d: %r" % (n, line.rstrip()))
        if not self.roots:
            raise DumpError("TDP dump: no root")

    def walk(self, root_id, gfn):
        """Nodes of the tables a TDP walk of @gfn reads, root first, and the
        node of the page that backs @gfn; None when @gfn is not mapped."""
        root = self.roots[root_id]
        nodes = [root["node"]]
        for level in range(root["level"], 0, -1):
            backing = root["leaves"].get((level, gfn >> (9 * (level - 1))))
            if backing is not None:
                return nodes, backing
            if level == 1:
                return None
            span = 1 << (9 * (level - 1))
            table = root["tables"].get((level - 1, gfn & ~(span - 1)))
            if table is None:
                return None
            nodes.append(table)
        return None


def analyze(gpt, ept=None, sockets=None, root_of=None):
    """Per-socket locality of the walks of every leaf of @gpt."""
    root_of = root_of or {}
    if sockets is None:
        seen = {node for _, _, _, node in gpt.leaves} | {n for _, n in gpt.tables.values()}
        if ept:
            for r in ept.roots.values():
                seen |= set(r["leaves"].values()) | set(r["tables"].values()) | {r["node"]}
        sockets = sorted(n for n in seen if n >= 0)
    walks = []
    for addr, level, pfn, node in gpt.leaves:
        path = gpt.path(addr, level)
        if path is not None:
            walks.append((path, pfn, node))

    result = []
    for s in sockets:
        root = root_of.get(s, 0)
        g_local = g_all = e_local = e_all = 0
        leaf = {"ll": 0, "lr": 0, "rl": 0, "rr": 0}
        n = 0
        for path, data_pfn, data_node in walks:
            if ept is None:
                gnodes = [node for _, node in path]
                enodes, eleaf = [], None
            else:
                gnodes, enodes = [], []
                ok = True
                for pfn, _ in path:
                    w = ept.walk(root, pfn)
                    if w is None:
                        ok = False
                        break
                    enodes += w[0]
                    gnodes.append(w[1])
                w = ept.walk(root, data_pfn) if ok else None
                if w is None:
                    continue
                enodes += w[0]
                eleaf = w[0][-1]
            n += 1
            g_all += len(gnodes)
            g_local += sum(1 for x in gnodes if x == s)
            e_all += len(enodes)
            e_local += sum(1 for x in enodes if x == s)
            first = "l" if gnodes[-1] == s else "r"
            second = "l" if eleaf is None or eleaf == s else "r"
            leaf[first + second] += 1
        entry = {
            "socket": s,
            "translations": n,
            "gpt_accesses": g_all,
            "ept_accesses": e_all,
            "gpt_local": g_local / g_all if g_all else None,
            "ept_local": e_local / e_all if e_all and ept else None,
        }
        for k in ("ll", "lr", "rl", "rr"):
            entry[k] = leaf[k] / n if n and ept else None
        if ept is None and n:
            entry["l"] = (leaf["ll"] + leaf["lr"]) / n
        result.append(entry)
    walked = min((e["translations"] for e in result), default=0)
    return {"sockets": result, "unwalkable": len(gpt.leaves) - walked}


def _fmt(v):
    return "  -  " if v is None else "%5.3f" % v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpt", required=True, help="/proc/<pid>/pt_dump of the process")
    ap.add_argument("--ept", help="tdp_pt_dump of the VM (two-dimensional walk)")
    ap.add_argument("--sockets", type=int, help="sockets 0..N-1 (default: nodes in the dumps)")
    ap.add_argument("--root", action="append", default=[], metavar="SOCKET=ROOT",
                    help="the TDP root that vCPUs on SOCKET walk (default 0)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    a = ap.parse_args(argv)
    try:
        with open(a.gpt) as f:
            gpt = ProcessDump(f)
        ept = None
        if a.ept:
            with open(a.ept) as f:
                ept = TdpDump(f)
        root_of = {}
        for r in a.root:
            s, _, root = r.partition("=")
            root_of[int(s)] = int(root)
    except (OSError, DumpError, ValueError) as e:
        print("walk_locality: %s" % e, file=sys.stderr)
        return 2
    res = analyze(gpt, ept, list(range(a.sockets)) if a.sockets else None, root_of)
    if a.json:
        json.dump(res, sys.stdout, indent=1)
        print()
        return 0
    print("socket  translations  gpt_local  ept_local     LL     LR     RL     RR")
    for e in res["sockets"]:
        print("%6d  %12d      %s      %s  %s  %s  %s  %s" % (
            e["socket"], e["translations"], _fmt(e["gpt_local"]), _fmt(e["ept_local"]),
            _fmt(e["ll"]), _fmt(e["lr"]), _fmt(e["rl"]), _fmt(e["rr"])))
    if res["unwalkable"]:
        print("(%d leaves not walkable: a table or a TDP mapping missing from the dumps)"
              % res["unwalkable"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
