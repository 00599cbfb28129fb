// SPDX-License-Identifier: GPL-2.0
/*
 * Checks of the vMitosis test bed itself: the emulated NUMA server has the
 * topology asked for, and KVM runs a vCPU on two-dimensional (TDP) paging, so
 * that what later tests measure about page-table placement means something.
 *
 * VMITOSIS_NODES, when set, is the number of NUMA nodes that must be online.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

#include "../kselftest_harness.h"

#define MAX_NODES	64

static int read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

/* Parse a node or CPU list ("0-3,6") into a bitmap; returns the number of bits set. */
static int parse_list(const char *s, unsigned char *set, int max)
{
	int count = 0;

	while (*s && *s != '\n') {
		char *end;
		long a = strtol(s, &end, 10), b = a;

		if (end == s)
			return -1;
		if (*end == '-') {
			s = end + 1;
			b = strtol(s, &end, 10);
			if (end == s)
				return -1;
		}
		for (; a <= b; a++) {
			if (a < 0 || a >= max)
				return -1;
			if (!set[a]++)
				count++;
		}
		s = end;
		if (*s == ',')
			s++;
	}
	return count;
}

/* A "Node N Field:  value kB" line of /sys/devices/system/node/nodeN/meminfo, in kB. */
static long node_meminfo_kb(int node, const char *field)
{
	char path[96], buf[4096], *p;
	size_t flen = strlen(field);

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", node);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		char *f = strchr(p, ':');

		/* "Node 0 MemTotal:" */
		if (f && f - p > (long)flen && *(f - flen - 1) == ' ' &&
		    !strncmp(f - flen, field, flen))
			return strtol(f + 1, NULL, 10);
	}
	return -1;
}

static int online_nodes(unsigned char *set)
{
	char buf[256];

	memset(set, 0, MAX_NODES);
	if (read_file("/sys/devices/system/node/online", buf, sizeof(buf)) < 0)
		return -1;
	return parse_list(buf, set, MAX_NODES);
}

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
 * Node counters lag behind by the per-CPU deltas not yet folded in; fold them
 * (root only), or wait for the periodic fold of vm.stat_interval.
 */
static void fold_vmstat(void)
{
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);

	if (fd < 0 || write(fd, "1", 1) != 1)
		sleep(2);
	if (fd >= 0)
		close(fd);
}

static long sec_pagetables_kb(void)
{
	unsigned char nodes[MAX_NODES];
	long sum = 0, v;
	int node;

	fold_vmstat();
	if (online_nodes(nodes) <= 0)
		return -1;
	for (node = 0; node < MAX_NODES; node++) {
		if (!nodes[node])
			continue;
		v = node_meminfo_kb(node, "SecPageTables");
		if (v < 0)
			return -1;
		sum += v;
	}
	return sum;
}

/* Value of a VM's binary statistic, or -1. */
static long long vm_stat(int vm, const char *name)
{
	struct kvm_stats_header hdr;
	long long ret = -1;
	size_t dsize;
	char *descs;
	int fd, i;

	fd = ioctl(vm, KVM_GET_STATS_FD, NULL);
	if (fd < 0)
		return -1;
	if (pread(fd, &hdr, sizeof(hdr), 0) != sizeof(hdr))
		goto out;
	dsize = sizeof(struct kvm_stats_desc) + hdr.name_size;
	descs = calloc(hdr.num_desc, dsize);
	if (!descs)
		goto out;
	if (pread(fd, descs, dsize * hdr.num_desc, hdr.desc_offset) !=
	    (ssize_t)(dsize * hdr.num_desc))
		goto free;
	for (i = 0; i < (int)hdr.num_desc; i++) {
		struct kvm_stats_desc *d = (void *)(descs + i * dsize);
		__u64 val;

		if (strcmp(d->name, name))
			continue;
		if (pread(fd, &val, sizeof(val), hdr.data_offset + d->offset) == sizeof(val))
			ret = val;
		break;
	}
free:
	free(descs);
out:
	close(fd);
	return ret;
}

static int param_is_y(const char *path)
{
	char buf[16];

	return read_file(path, buf, sizeof(buf)) > 0 && (buf[0] == 'Y' || buf[0] == '1');
}

/*
 * Real-mode guest code at GPA 0: write 0x5a to the first byte of each 4 KiB
 * page from 0x10000 to 0x9ffff, then halt.
 */
static const unsigned char guest_code[] = {
	0xb9, 0x90, 0x00,		/* mov cx, 0x90 (144 pages) */
	0xb8, 0x00, 0x10,		/* mov ax, 0x1000 */
	0x8e, 0xd8,			/* 1: mov ds, ax */
	0xc6, 0x06, 0x00, 0x00, 0x5a,	/* mov byte [0], 0x5a */
	0x05, 0x00, 0x01,		/* add ax, 0x100 */
	0xe2, 0xf4,			/* loop 1b */
	0xf4,				/* hlt */
};

#define GUEST_MEM	0x100000
#define FIRST_PAGE	0x10000
#define NR_PAGES	144

TEST(kvm_vcpu_runs_on_tdp_paging)
{
	struct kvm_userspace_memory_region region;
	long before, after;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	int kvm, vm, vcpu, i, run_size;
	long long mapped;
	unsigned char *mem;

	kvm = open("/dev/kvm", O_RDWR);
	if (kvm < 0)
		SKIP(return, "/dev/kvm: %s", strerror(errno));

	/* Two-dimensional paging, and the TDP MMU that vMitosis changes. */
	ASSERT_TRUE(param_is_y("/sys/module/kvm_amd/parameters/npt") ||
		    param_is_y("/sys/module/kvm_intel/parameters/ept"))
		TH_LOG("neither NPT nor EPT is enabled");
	ASSERT_TRUE(param_is_y("/sys/module/kvm/parameters/tdp_mmu"));

	before = sec_pagetables_kb();
	ASSERT_GE(before, 0) TH_LOG("no SecPageTables in node meminfo");

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	ASSERT_GE(vm, 0);
	mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	memcpy(mem, guest_code, sizeof(guest_code));
	region = (struct kvm_userspace_memory_region) {
		.slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_MEM,
		.userspace_addr = (unsigned long)mem,
	};
	ASSERT_EQ(0, ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region));

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	ASSERT_GE(vcpu, 0);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	ASSERT_GT(run_size, 0);
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	ASSERT_NE(MAP_FAILED, run);

	ASSERT_EQ(0, ioctl(vcpu, KVM_GET_SREGS, &sregs));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	ASSERT_EQ(0, ioctl(vcpu, KVM_SET_SREGS, &sregs));
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0;
	regs.rflags = 2;
	ASSERT_EQ(0, ioctl(vcpu, KVM_SET_REGS, &regs));

	ASSERT_EQ(0, ioctl(vcpu, KVM_RUN, 0));
	ASSERT_EQ(KVM_EXIT_HLT, (int)run->exit_reason)
		TH_LOG("exit reason %u", run->exit_reason);

	/* The guest's writes reached the memory that backs it. */
	for (i = 0; i < NR_PAGES; i++)
		ASSERT_EQ(0x5a, mem[FIRST_PAGE + i * 4096]) TH_LOG("page %d", i);

	/*
	 * KVM mapped the guest through TDP tables and accounted them per node:
	 * at least the three tables below the root on the way to a 4K leaf (the
	 * root itself is not counted in SecPageTables).
	 */
	mapped = vm_stat(vm, "pages_4k");
	ASSERT_GE(mapped, 0);
	ASSERT_GE(vm_stat(vm, "pages_2m"), 0);
	mapped += 512 * vm_stat(vm, "pages_2m");
	EXPECT_GE(mapped, NR_PAGES);
	after = sec_pagetables_kb();
	EXPECT_GE(after - before, 3 * 4) TH_LOG("SecPageTables %ld -> %ld kB", before, after);

	close(vcpu);
	close(vm);
	munmap(mem, GUEST_MEM);
	close(kvm);
}

TEST_HARNESS_MAIN
