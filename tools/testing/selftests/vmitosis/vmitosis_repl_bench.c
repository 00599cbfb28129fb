// SPDX-License-Identifier: GPL-2.0
/*
 * vmitosis_repl_bench: what ePT replication costs, measured in one boot for
 * make bench (figures, not verdicts). For a VM without replication, and for
 * VMs whose KVM_CAP_X86_TDP_REPLICATION mask holds the first 1, 2 and 4
 * nodes with CPUs (1: the primary alone, every hook on but no copy):
 *
 *   faults      KVM_PRE_FAULT_MEMORY of a 256 MiB slot of 4 KiB pages from
 *               vCPU 0 on the first node: ns per page;
 *   memory      SecPageTables per node afterwards, less before (kB);
 *   harvest     dirty logging with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, every
 *               page initially dirty: KVM_CLEAR_DIRTY_LOG of the whole slot,
 *               which clears the Dirty bit of every leaf in every copy: ns
 *               per page;
 *   invalidate  MADV_DONTNEED of the whole slot, an MMU-notifier zap of
 *               every copy: ns per page.
 *
 * Each figure is the median of REPS rounds, the configurations interleaved
 * within a round. Times are those of the emulated host: compare the rows
 * with one another, not with real hardware. Prints JSON.
 */
#include <stdint.h>
#include <time.h>

#include "vmitosis_util.h"

#define SLOT_GPA	0x100000000ULL	/* 4 GiB */
#define SLOT_SIZE	(256UL << 20)
#define SLOT_PAGES	(SLOT_SIZE >> 12)
#define REPS		5
#define CONFIGS		4		/* off, 1, 2, 4 nodes */

struct sample {
	long long fault_ns, harvest_ns, invalidate_ns;
	long sec_kb[MAX_NODES];
};

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static long long median(long long *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_ll);
	return v[n / 2];
}

/* One VM of @nodes (0: no replication): its figures in @s; 0, or -errno. */
static int run_one(unsigned long long nodes, const unsigned char *cpu_nodes, struct sample *s)
{
	struct kvm_userspace_memory_region region = {
		.slot = 1, .guest_phys_addr = SLOT_GPA, .memory_size = SLOT_SIZE,
	};
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
	struct kvm_clear_dirty_log clear = { .slot = 1, .num_pages = SLOT_PAGES };
	struct kvm_dirty_log log = { .slot = 1 };
	long sec0[MAX_NODES] = { 0 };
	struct kvm_run *run = MAP_FAILED;
	unsigned char *mem, *bitmap;
	struct rm_vm v;
	long long t;
	int fd, n, r, run_size = 0;

	mem = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bitmap = malloc(SLOT_PAGES / 8);
	if (mem == MAP_FAILED || !bitmap)
		return -ENOMEM;
	madvise(mem, SLOT_SIZE, MADV_NOHUGEPAGE);
	memset(mem, 0x33, SLOT_SIZE);
	fold_vmstat();
	for (n = 0; n < MAX_NODES; n++)
		if (cpu_nodes[n])
			sec0[n] = node_meminfo_kb(n, "SecPageTables");

	r = rm_vm_open(&v, -1);
	if (r)
		goto out_mem;
	r = -errno;
	cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
	if (ioctl(v.vm, KVM_ENABLE_CAP, &cap))
		goto out_vm;
	if (nodes) {
		struct kvm_enable_cap repl = {
			.cap = KVM_CAP_X86_TDP_REPLICATION, .args = { nodes, 0 },
		};

		if (ioctl(v.vm, KVM_ENABLE_CAP, &repl))
			goto out_vm;
	}
	region.userspace_addr = (unsigned long)mem;
	if (ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, &region))
		goto out_vm;
	fd = rm_vm_add_vcpu(&v, 0, &run);
	if (fd < 0) {
		r = fd;
		goto out_vm;
	}
	v.vcpu = fd;
	run_size = ioctl(v.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);

	/* Faults: the whole slot, from vCPU 0 on the first node. */
	{
		struct kvm_pre_fault_memory pre = { .gpa = SLOT_GPA, .size = SLOT_SIZE };

		t = now_ns();
		while (pre.size)
			if (ioctl(fd, KVM_PRE_FAULT_MEMORY, &pre) && errno != EINTR &&
			    errno != EAGAIN)
				goto out_vm;
		s->fault_ns = now_ns() - t;
	}
	fold_vmstat();
	for (n = 0; n < MAX_NODES; n++)
		s->sec_kb[n] = cpu_nodes[n] ? node_meminfo_kb(n, "SecPageTables") - sec0[n] : 0;

	/* Harvest: log dirty pages (all initially dirty), then clear them all. */
	region.flags = KVM_MEM_LOG_DIRTY_PAGES;
	if (ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, &region))
		goto out_vm;
	log.dirty_bitmap = bitmap;
	if (ioctl(v.vm, KVM_GET_DIRTY_LOG, &log))
		goto out_vm;
	memset(bitmap, 0xff, SLOT_PAGES / 8);
	clear.dirty_bitmap = bitmap;
	t = now_ns();
	if (ioctl(v.vm, KVM_CLEAR_DIRTY_LOG, &clear))
		goto out_vm;
	s->harvest_ns = now_ns() - t;

	/* Invalidation: the host drops the whole slot. */
	t = now_ns();
	if (madvise(mem, SLOT_SIZE, MADV_DONTNEED))
		goto out_vm;
	s->invalidate_ns = now_ns() - t;
	r = 0;
out_vm:
	/* The vCPU's kvm_run mapping holds the VM: unmap it, or the VM outlives this. */
	if (run != MAP_FAILED)
		munmap(run, run_size);
	rm_vm_destroy(&v);
out_mem:
	munmap(mem, SLOT_SIZE);
	free(bitmap);
	return r;
}

int main(void)
{
	static struct sample samples[CONFIGS][REPS];
	unsigned long long mask[CONFIGS] = { 0 };
	unsigned char cpu_nodes[MAX_NODES];
	char buf[256];
	int c, i, n, nr, first = -1, r;

	if (read_file("/sys/devices/system/node/has_cpu", buf, sizeof(buf)) <= 0)
		return 1;
	nr = parse_list(buf, cpu_nodes, MAX_NODES);
	/* The masks: the first 1, 2 and 4 nodes with CPUs. */
	for (n = 0, i = 0; n < MAX_NODES; n++) {
		if (!cpu_nodes[n])
			continue;
		if (first < 0)
			first = n;
		i++;
		for (c = 1; c < CONFIGS; c++)
			if (i <= (1 << (c - 1)))
				mask[c] |= 1ULL << n;
	}
	if (nr < 4 || pin_node(first) || bind_node(first)) {
		fprintf(stderr, "vmitosis_repl_bench: needs 4 nodes with CPUs\n");
		return 1;
	}
	/* No NUMA-balancing invalidations during the measurements. */
	write_str("/proc/sys/kernel/numa_balancing", "0");
	for (i = 0; i < REPS; i++)
		for (c = 0; c < CONFIGS; c++) {
			r = run_one(mask[c], cpu_nodes, &samples[c][i]);
			if (r) {
				fprintf(stderr, "vmitosis_repl_bench: nodes %#llx: %s\n", mask[c],
					strerror(-r));
				return 1;
			}
		}

	printf("{\n  \"tdp_replication\": {\"slot_mib\": %lu, \"reps\": %d, \"configs\": [",
	       SLOT_SIZE >> 20, REPS);
	for (c = 0; c < CONFIGS; c++) {
		long long f[REPS], h[REPS], inv[REPS];

		for (i = 0; i < REPS; i++) {
			f[i] = samples[c][i].fault_ns;
			h[i] = samples[c][i].harvest_ns;
			inv[i] = samples[c][i].invalidate_ns;
		}
		printf("%s\n    {\"nodes\": %d, \"mask\": \"%#llx\", \"fault_ns_per_page\": %.1f, ",
		       c ? "," : "", c ? __builtin_popcountll(mask[c]) : 0, mask[c],
		       (double)median(f, REPS) / SLOT_PAGES);
		printf("\"harvest_ns_per_page\": %.1f, ", (double)median(h, REPS) / SLOT_PAGES);
		printf("\"invalidate_ns_per_page\": %.1f, ",
		       (double)median(inv, REPS) / SLOT_PAGES);
		printf("\"sec_page_tables_kb\": [");
		for (n = 0, i = 0; n < MAX_NODES; n++)
			if (cpu_nodes[n])
				printf("%s%ld", i++ ? ", " : "", samples[c][0].sec_kb[n]);
		printf("]}");
	}
	printf("\n  ]}\n}\n");
	return 0;
}
