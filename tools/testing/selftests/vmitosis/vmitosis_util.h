/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the vMitosis selftests: NUMA topology and per-node counters from
 * sysfs, and a minimal KVM guest (one vCPU in real mode) that touches a known
 * set of pages, so that its TDP tables can be inspected.
 */
#ifndef VMITOSIS_UTIL_H
#define VMITOSIS_UTIL_H

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/mempolicy.h>
#include <linux/kvm.h>

#define MAX_NODES	64

static inline int read_file(const char *path, char *buf, size_t len)
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
static inline int parse_list(const char *s, unsigned char *set, int max)
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
static inline long node_meminfo_kb(int node, const char *field)
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

static inline int online_nodes(unsigned char *set)
{
	char buf[256];

	memset(set, 0, MAX_NODES);
	if (read_file("/sys/devices/system/node/online", buf, sizeof(buf)) < 0)
		return -1;
	return parse_list(buf, set, MAX_NODES);
}

/*
 * Node counters lag behind by the per-CPU deltas not yet folded in; fold them
 * (root only), or wait for the periodic fold of vm.stat_interval.
 */
static inline void fold_vmstat(void)
{
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);

	if (fd < 0 || write(fd, "1", 1) != 1)
		sleep(2);
	if (fd >= 0)
		close(fd);
}

static inline long sec_pagetables_kb(void)
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
static inline long long vm_stat(int vm, const char *name)
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

static inline int param_is_y(const char *path)
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

/* Run on the CPUs of @node and allocate from it only (page tables included). */
static inline int bind_node(int node)
{
	unsigned long mask;
	unsigned char cpus[1024] = { 0 };
	char path[96], buf[1024];
	cpu_set_t set;
	int cpu;

	if (node < 0 || node >= (int)(8 * sizeof(mask)))
		return -1;
	mask = 1UL << node;
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", node);
	if (read_file(path, buf, sizeof(buf)) < 0 || parse_list(buf, cpus, sizeof(cpus)) <= 0)
		return -1;
	CPU_ZERO(&set);
	for (cpu = 0; cpu < (int)sizeof(cpus); cpu++)
		if (cpus[cpu])
			CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -1;
	return syscall(SYS_set_mempolicy, MPOL_BIND, &mask, sizeof(mask) * 8);
}

static inline int page_node(void *addr)
{
	int node = -1;

	if (syscall(SYS_get_mempolicy, &node, NULL, 0, addr, MPOL_F_NODE | MPOL_F_ADDR))
		return -1;
	return node;
}

static inline int last_node(void)
{
	unsigned char nodes[MAX_NODES];
	int n;

	if (online_nodes(nodes) <= 0)
		return 0;
	for (n = MAX_NODES - 1; n > 0 && !nodes[n]; n--)
		;
	return n;
}

struct rm_vm {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	unsigned char *mem;
};

/*
 * A VM with GUEST_MEM of memory at GPA 0 that holds guest_code, and one vCPU.
 * The memory is allocated (and its pages placed) on first touch by the guest,
 * in the thread that runs the vCPU. Returns 0, or -errno.
 */
static inline int rm_vm_create(struct rm_vm *v)
{
	struct kvm_userspace_memory_region region;
	int run_size;

	memset(v, 0, sizeof(*v));
	v->kvm = open("/dev/kvm", O_RDWR);
	if (v->kvm < 0)
		return -errno;
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0)
		return -errno;
	v->mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (v->mem == MAP_FAILED)
		return -errno;
	memcpy(v->mem, guest_code, sizeof(guest_code));
	region = (struct kvm_userspace_memory_region) {
		.slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_MEM,
		.userspace_addr = (unsigned long)v->mem,
	};
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region))
		return -errno;
	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0)
		return -errno;
	run_size = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0)
		return -EINVAL;
	v->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED)
		return -errno;
	return 0;
}

/* Run guest_code from its start until it halts; returns the exit reason or -errno. */
static inline int rm_vm_run(struct rm_vm *v)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs))
		return -errno;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs))
		return -errno;
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0;
	regs.rflags = 2;
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs))
		return -errno;
	if (ioctl(v->vcpu, KVM_RUN, 0))
		return -errno;
	return v->run->exit_reason;
}

/* The VM's directory in debugfs. */
static inline void rm_vm_debugfs(struct rm_vm *v, char *buf, size_t len)
{
	snprintf(buf, len, "/sys/kernel/debug/kvm/%d-%d", getpid(), v->vm);
}

static inline void rm_vm_destroy(struct rm_vm *v)
{
	close(v->vcpu);
	close(v->vm);
	munmap(v->mem, GUEST_MEM);
	close(v->kvm);
}

#endif /* VMITOSIS_UTIL_H */
