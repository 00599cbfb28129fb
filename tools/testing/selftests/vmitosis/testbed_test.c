// SPDX-License-Identifier: GPL-2.0
/*
 * Checks of the vMitosis test bed itself: the emulated NUMA server has the
 * topology asked for, and KVM runs a vCPU on two-dimensional (TDP) paging, so
 * that what later tests measure about page-table placement means something.
 *
 * VMITOSIS_NODES, when set, is the number of NUMA nodes that must be online.
 */
#include "../kselftest_harness.h"
#include "vmitosis_util.h"

TEST(numa_nodes_online_with_cpus_and_memory)
{
	unsigned char nodes[MAX_NODES];
	const char *want = getenv("VMITOSIS_NODES");
	int n, node;

	n = online_nodes(nodes);
	ASSERT_GT(n, 0);
	if (want)
		ASSERT_EQ(atoi(want), n) TH_LOG("%d nodes online, VMITOSIS_NODES=%s", n, want);

	for (node = 0; node < MAX_NODES; node++) {
		unsigned char cpus[1024] = { 0 };
		char path[96], buf[4096];

		if (!nodes[node])
			continue;
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", node);
		ASSERT_GE(read_file(path, buf, sizeof(buf)), 0);
		EXPECT_GT(parse_list(buf, cpus, sizeof(cpus)), 0)
			TH_LOG("node %d has no CPUs", node);
		EXPECT_GT(node_meminfo_kb(node, "MemTotal"), 0)
			TH_LOG("node %d has no memory", node);
	}
}

TEST(numa_distances_local_below_remote)
{
	unsigned char nodes[MAX_NODES];
	int node, n;

	n = online_nodes(nodes);
	ASSERT_GT(n, 0);
	for (node = 0; node < MAX_NODES; node++) {
		char path[96], buf[1024], *p;
		int i = 0;
		long d;

		if (!nodes[node])
			continue;
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/distance", node);
		ASSERT_GE(read_file(path, buf, sizeof(buf)), 0);
		/* The row lists the distance to every online node, in order. */
		for (p = buf; (d = strtol(p, &p, 10)) > 0; i++) {
			/* 10 to itself, more than 10 to any other node */
			EXPECT_GE(d, 10);
			EXPECT_EQ(i == node, d == 10)
				TH_LOG("node %d to %d: %ld", node, i, d);
		}
		EXPECT_EQ(n, i);
	}
}

/*
 * A fixture only for its timeout: in a nested guest of the debug kernel the
 * VM runs two levels of nested virtualization deep under KASAN and lockdep,
 * and took over 30 s (2026-12-06).
 */
FIXTURE(kvm) {};
FIXTURE_SETUP(kvm) {}
FIXTURE_TEARDOWN(kvm) {}

TEST_F_TIMEOUT(kvm, vcpu_runs_on_tdp_paging, 300)
{
	long before, after;
	long long mapped;
	struct rm_vm v;
	int i, r;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP(return, "/dev/kvm: %s", strerror(errno));

	/* Two-dimensional paging, and the TDP MMU that vMitosis changes. */
	ASSERT_TRUE(param_is_y("/sys/module/kvm_amd/parameters/npt") ||
		    param_is_y("/sys/module/kvm_intel/parameters/ept"))
		TH_LOG("neither NPT nor EPT is enabled");
	ASSERT_TRUE(param_is_y("/sys/module/kvm/parameters/tdp_mmu"));

	before = sec_pagetables_kb();
	ASSERT_GE(before, 0) TH_LOG("no SecPageTables in node meminfo");

	ASSERT_EQ(0, rm_vm_create(&v));
	r = rm_vm_run(&v);
	ASSERT_EQ(KVM_EXIT_HLT, r) TH_LOG("exit reason %d", r);

	/* The guest's writes reached the memory that backs it. */
	for (i = 0; i < NR_PAGES; i++)
		ASSERT_EQ(0x5a, v.mem[FIRST_PAGE + i * 4096]) TH_LOG("page %d", i);

	/*
	 * KVM mapped the guest through TDP tables and accounted them per node:
	 * at least the three tables below the root on the way to a 4K leaf (the
	 * root itself is not counted in SecPageTables).
	 */
	mapped = vm_stat(v.vm, "pages_4k");
	ASSERT_GE(mapped, 0);
	ASSERT_GE(vm_stat(v.vm, "pages_2m"), 0);
	mapped += 512 * vm_stat(v.vm, "pages_2m");
	EXPECT_GE(mapped, NR_PAGES);
	after = sec_pagetables_kb();
	EXPECT_GE(after - before, 3 * 4) TH_LOG("SecPageTables %ld -> %ld kB", before, after);

	rm_vm_destroy(&v);
}

TEST_HARNESS_MAIN
