#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tests of walk_locality.py on hand-built page tables with known answers."""

import io
import os
import sys
import unittest
from contextlib import redirect_stderr, redirect_stdout

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import walk_locality as wl  # noqa: E402

G = 1 << 30
M2 = 2 << 20


def process(lines):
    return wl.ProcessDump(io.StringIO("\n".join(lines) + "\n"))


def tdp(lines):
    return wl.TdpDump(io.StringIO("\n".join(lines) + "\n"))


def by_socket(res):
    return {e["socket"]: e for e in res["sockets"]}


# One 4K page at 0x400000 (gfn of the data: 0x9000), tables at guest frames
# 0x1000 (PGD), 0x2000 (PUD table), 0x3000 (PMD table), 0x4000 (PTE table).
GPT_4K = [
    "pgd 0x1000 0",
    "table 3 0x0 0x2000 0",
    "table 2 0x0 0x3000 0",
    "table 1 0x400000 0x4000 0",
    "leaf 0x400000 1 0x9000 0",
]


def tdp_4k(frames, table_node, backing, root=0):
    """A 4-level TDP root mapping each gfn of @frames with a 4K leaf on @backing[gfn]."""
    lines = ["root %d 4 %d 0" % (root, table_node)]
    shown = set()
    for gfn in sorted(frames):
        for level in (3, 2, 1):
            first = gfn & ~((1 << (9 * level)) - 1)
            if (level, first) not in shown:
                shown.add((level, first))
                lines.append("table %d %#x %d" % (level, first, table_node))
        lines.append("leaf %#x 1 %d" % (gfn, backing[gfn]))
    return lines


class BareMetal(unittest.TestCase):
    def test_all_tables_on_one_node(self):
        lines = ["pgd 0x10 1", "table 3 0x0 0x11 1", "table 2 0x0 0x12 1"]
        lines += ["table 1 %#x %#x 1" % (i * M2, 0x20 + i) for i in range(4)]
        lines += ["leaf %#x 1 %#x 1" % (i * 4096, 0x100 + i) for i in range(2048)]
        s = by_socket(wl.analyze(process(lines), sockets=[0, 1, 2, 3]))
        self.assertEqual(s[1]["gpt_local"], 1.0)
        self.assertEqual(s[1]["l"], 1.0)
        for other in (0, 2, 3):
            self.assertEqual(s[other]["gpt_local"], 0.0)
            self.assertEqual(s[other]["l"], 0.0)
        self.assertEqual(s[0]["translations"], 2048)
        self.assertEqual(s[0]["gpt_accesses"], 4 * 2048)
        self.assertIsNone(s[0]["ept_local"])

    def test_walk_crosses_nodes_at_every_level(self):
        lines = ["pgd 0x10 0", "table 3 0x0 0x11 1", "table 2 0x0 0x12 2",
                 "table 1 0x0 0x13 3", "leaf 0x0 1 0x100 3"]
        s = by_socket(wl.analyze(process(lines), sockets=[0, 1, 2, 3]))
        for sock in range(4):
            self.assertEqual(s[sock]["gpt_local"], 0.25)
        self.assertEqual(s[3]["l"], 1.0)
        self.assertEqual(s[0]["l"], 0.0)

    def test_huge_leaves_shorten_the_walk(self):
        lines = ["pgd 0x10 0", "table 3 0x0 0x11 0", "table 2 0x0 0x12 1",
                 "leaf 0x200000 2 0x200 1", "leaf 0x40000000 3 0x40000 1",
                 "table 3 0x0 0x11 0"]
        res = wl.analyze(process(lines), sockets=[0, 1])
        s = by_socket(res)
        # 2M leaf: PGD, PUD table, PMD table; 1G leaf: PGD, PUD table.
        self.assertEqual(s[0]["gpt_accesses"], 3 + 2)
        self.assertAlmostEqual(s[0]["gpt_local"], 4 / 5)
        self.assertAlmostEqual(s[1]["gpt_local"], 1 / 5)

    def test_five_level_paging(self):
        lines = ["pgd 0x10 0", "table 4 0x0 0x11 0", "table 3 0x0 0x12 0",
                 "table 2 0x0 0x13 0", "table 1 0x0 0x14 1", "leaf 0x0 1 0x100 1"]
        s = by_socket(wl.analyze(process(lines), sockets=[0, 1]))
        self.assertEqual(s[0]["gpt_accesses"], 5)
        self.assertAlmostEqual(s[0]["gpt_local"], 4 / 5)

    def test_leaf_without_its_tables_is_not_walked(self):
        lines = ["pgd 0x10 0", "leaf 0x0 1 0x100 0"]
        res = wl.analyze(process(lines), sockets=[0])
        self.assertEqual(res["unwalkable"], 1)
        self.assertEqual(res["sockets"][0]["translations"], 0)


class TwoDimensional(unittest.TestCase):
    frames = (0x1000, 0x2000, 0x3000, 0x4000, 0x9000)

    def test_24_accesses_of_a_4_level_2d_walk(self):
        backing = {f: 1 for f in self.frames}
        s = by_socket(wl.analyze(process(GPT_4K), tdp(tdp_4k(self.frames, 0, backing)),
                                 sockets=[0, 1]))
        for sock in (0, 1):
            self.assertEqual(s[sock]["gpt_accesses"], 4)
            self.assertEqual(s[sock]["ept_accesses"], 20)
        # TDP tables on 0, guest tables and data backed on 1.
        self.assertEqual((s[0]["gpt_local"], s[0]["ept_local"]), (0.0, 1.0))
        self.assertEqual((s[1]["gpt_local"], s[1]["ept_local"]), (1.0, 0.0))
        self.assertEqual(s[0]["rl"], 1.0)
        self.assertEqual(s[1]["lr"], 1.0)

    def test_guest_table_node_is_its_backing_node(self):
        # The guest dump says node 0 for everything; the host backs the PTE
        # table (frame 0x4000) on node 2: that is where the access goes.
        backing = {f: 0 for f in self.frames}
        backing[0x4000] = 2
        s = by_socket(wl.analyze(process(GPT_4K), tdp(tdp_4k(self.frames, 0, backing)),
                                 sockets=[0, 2]))
        self.assertAlmostEqual(s[0]["gpt_local"], 3 / 4)
        self.assertAlmostEqual(s[2]["gpt_local"], 1 / 4)
        self.assertEqual(s[2]["lr"], 1.0)   # gPT leaf entry local to 2, ePT leaf on 0

    def test_huge_tdp_leaves(self):
        # Every frame in a 2M TDP leaf backed on node 1; tables on 0.
        lines = ["root 0 4 0 0", "table 3 0x0 0", "table 2 0x0 0"]
        lines += ["leaf %#x 2 1" % f for f in self.frames]
        s = by_socket(wl.analyze(process(GPT_4K), tdp(lines), sockets=[0, 1]))
        # 5 TDP walks (4 guest tables + data) of 3 accesses each.
        self.assertEqual(s[0]["ept_accesses"], 15)
        self.assertEqual(s[0]["ept_local"], 1.0)
        self.assertEqual(s[1]["gpt_local"], 1.0)
        gb = ["root 0 4 0 0", "table 3 0x0 1", "leaf 0x0 3 1"]
        s = by_socket(wl.analyze(process(GPT_4K), tdp(gb), sockets=[0, 1]))
        self.assertEqual(s[0]["ept_accesses"], 10)
        self.assertEqual(s[1]["ept_local"], 0.5)

    def test_roots_per_socket(self):
        backing = {f: 1 for f in self.frames}
        two = tdp_4k(self.frames, 0, backing) + tdp_4k(self.frames, 1, backing, root=1)
        s = by_socket(wl.analyze(process(GPT_4K), tdp(two), sockets=[0, 1], root_of={1: 1}))
        self.assertEqual(s[0]["ept_local"], 1.0)
        self.assertEqual(s[1]["ept_local"], 1.0)

    def test_unmapped_guest_frame_is_not_walked(self):
        backing = {f: 1 for f in self.frames if f != 0x9000}
        res = wl.analyze(process(GPT_4K), tdp(tdp_4k(list(backing), 0, backing)), sockets=[0])
        self.assertEqual(res["unwalkable"], 1)


class Input(unittest.TestCase):
    def test_malformed_lines_are_errors(self):
        with self.assertRaises(wl.DumpError):
            process(["pgd 0x10 0", "tabel 1 0x0 0x1 0"])
        with self.assertRaises(wl.DumpError):
            tdp(["leaf 0x0 1 0"])
        with self.assertRaises(wl.DumpError):
            process(["table 1 0x0 0x1 0"])

    def test_command_line(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".dump", delete=False) as f:
            f.write("\n".join(GPT_4K) + "\n")
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(wl.main(["--gpt", f.name, "--json"]), 0)
        self.assertIn('"gpt_local": 1.0', out.getvalue())
        with redirect_stderr(io.StringIO()):
            self.assertEqual(wl.main(["--gpt", "/nonexistent"]), 2)
        os.unlink(f.name)


if __name__ == "__main__":
    unittest.main()
