// SPDX-License-Identifier: GPL-2.0
/*
 * What a TDP migration pass (kvm.tdp_migration,
 * Documentation/vmitosis/ept-migration.rst) costs, against the size of the
 * VM and against how much of its memory changed; and how many TLB flushes a
 * moved table costs. Prints one JSON object on stdout; figures, not a
 * verdict: `make bench` runs it in the emulated host.
 *
 * A VM of N GiB here has one slot of SLOT_SIZE at the start of each GiB of
 * guest memory, mapped by 4K pages (invalidations are noted per GiB, so the
 * span counts, not the memory behind it). "Changed" means 2 MiB unmapped in
 * k of those GiB; the figure is the SPTEs read by the first pass after it,
 * next to those read by a pass over all of guest memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmitosis_util.h"

#define PARAM		"/sys/module/kvm/parameters/tdp_migration"
#define PERIOD		"/sys/module/kvm/parameters/tdp_migration_period_ms"
#define SLOT_SIZE	(16UL << 20)
#define MAX_GIB		16

static int write_str(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	int r;

	if (!f)
		return -1;
	r = fputs(s, f) < 0 ? -1 : 0;
	return fclose(f) ? -1 : r;
}

/* The VM's tdp_migrate file in debugfs. */
static void migrate_file(struct rm_vm *v, char *path, size_t len)
{
	char dir[96];

	rm_vm_debugfs(v, dir, sizeof(dir));
	snprintf(path, len, "%s/tdp_migrate", dir);
}

/*
 * One counter of the VM's tdp_migrate file, or -1; "migrated" sums the
 * tables moved at every level, the root's included.
 */
static long long stat_of(struct rm_vm *v, const char *name)
{
	char path[128], line[128], key[64];
	long long val = -1, sum = 0, n, scanned;
	int level;
	FILE *f;

	migrate_file(v, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "level %d scanned %lld migrated %lld", &level, &scanned, &n) == 3)
			sum += n;
		else if (sscanf(line, "%63s %lld", key, &n) == 2 && !strcmp(key, name))
			val = n;
	}
	fclose(f);
	return strcmp(name, "migrated") ? val : sum;
}

static int run_now(struct rm_vm *v)
{
	char path[128];

	migrate_file(v, path, sizeof(path));
	return write_str(path, "1");
}

static int prefault(struct rm_vm *v, unsigned long gpa, unsigned long size)
{
	struct kvm_pre_fault_memory pre = { .gpa = gpa, .size = size };

	while (pre.size)
		if (ioctl(v->vcpu, KVM_PRE_FAULT_MEMORY, &pre) && errno != EINTR &&
		    errno != EAGAIN)
			return -1;
	return 0;
}

/* Wait until the passes of earlier invalidations are over. */
static void settle(struct rm_vm *v)
{
	int i;

	for (i = 0; i < 300 && stat_of(v, "ranges_to_scan") > 0; i++)
		usleep(100 * 1000);
}

/* SPTEs read by the first pass after 2 MiB went in each of @k GiB. */
static long long pass_after_unmap(struct rm_vm *v, char *mem, int gib, int k)
{
	long long passes;
	int i;

	settle(v);
	passes = stat_of(v, "passes");
	for (i = 0; i < k; i++)
		if (madvise(mem + (long)(i * gib / k) * SLOT_SIZE, 2UL << 20, MADV_DONTNEED))
			return -1;
	for (i = 0; i < 500 && stat_of(v, "passes") == passes; i++)
		usleep(10 * 1000);
	return stat_of(v, "last_pass_reads");
}

static int one_size(int gib, int first)
{
	long long full, changed[3];
	int ks[3] = { 1, gib / 2, gib }, i;
	struct rm_vm v;
	char *mem;

	if (rm_vm_create_on(&v, 0))
		return -1;
	mem = mmap(NULL, gib * SLOT_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -1;
	memset(mem, 0x33, gib * SLOT_SIZE);
	for (i = 0; i < gib; i++) {
		struct kvm_userspace_memory_region region = {
			.slot = 1 + i, .guest_phys_addr = (1UL + i) << 30,
			.memory_size = SLOT_SIZE,
			.userspace_addr = (unsigned long)mem + i * SLOT_SIZE,
		};

		if (ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, &region) ||
		    prefault(&v, region.guest_phys_addr, SLOT_SIZE))
			return -1;
	}
	if (run_now(&v))
		return -1;
	full = stat_of(&v, "last_pass_reads");
	for (i = 0; i < 3; i++) {
		int s;

		/* Map it all again, so that each pass meets what a full VM has. */
		for (s = 0; i && s < gib; s++)
			if (prefault(&v, (1UL + s) << 30, SLOT_SIZE))
				return -1;
		changed[i] = pass_after_unmap(&v, mem, gib, ks[i]);
	}
	printf("%s\n    {\"gib\": %d, \"mapped_mib\": %lu, \"full_pass_reads\": %lld, ",
	       first ? "" : ",", gib, gib * SLOT_SIZE >> 20, full);
	printf("\"after_unmap\": [");
	for (i = 0; i < 3; i++)
		printf("%s{\"gib_changed\": %d, \"reads\": %lld}", i ? ", " : "",
		       ks[i], changed[i]);
	printf("]}");
	munmap(mem, gib * SLOT_SIZE);
	rm_vm_destroy(&v);
	return 0;
}

/* Move a 256 MiB VM from node 0 to node 1: TLB flushes per table moved. */
static int move_flushes(void)
{
	struct kvm_userspace_memory_region region = {
		.slot = 1, .guest_phys_addr = 1UL << 30, .memory_size = 256UL << 20,
	};
	unsigned long from = 1, to = 2;
	long long moved, flushed;
	struct rm_vm v;
	char *mem;

	if (bind_node(0) || rm_vm_create_on(&v, 0))
		return -1;
	mem = mmap(NULL, region.memory_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -1;
	memset(mem, 0x33, region.memory_size);
	region.userspace_addr = (unsigned long)mem;
	if (ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, &region) ||
	    prefault(&v, region.guest_phys_addr, region.memory_size))
		return -1;
	if (bind_node(1) || syscall(SYS_migrate_pages, 0, 64, &from, &to) < 0 ||
	    prefault(&v, region.guest_phys_addr, region.memory_size))
		return -1;
	settle(&v);
	run_now(&v);
	moved = stat_of(&v, "migrated");
	flushed = stat_of(&v, "flushes");
	printf("  \"ept_move_256mib\": {\"tables_moved\": %lld, \"tlb_flushes\": %lld, ",
	       moved, flushed);
	printf("\"max_lock_hold_reads\": %lld, \"max_lock_hold_us\": %lld}\n",
	       stat_of(&v, "max_lock_hold_reads"), stat_of(&v, "max_lock_hold_ns") / 1000);
	munmap(mem, region.memory_size);
	rm_vm_destroy(&v);
	return 0;
}

/*
 * Each VM in a process of its own: its debugfs directory is named after
 * the process and the VM's file descriptor, and goes only with the VM.
 */
static int in_child(int (*fn)(int, int), int a, int b)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		int r = fn(a, b);

		fflush(stdout);
		_exit(r ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status) ? -1 : 0;
}

static int flushes_fn(int a, int b)
{
	return move_flushes();
}

int main(void)
{
	int gib;

	if (access(PARAM, W_OK) || last_node() < 1) {
		fprintf(stderr, "needs " PARAM " and two NUMA nodes\n");
		return 4;
	}
	if (write_str(PARAM, "1") || write_str(PERIOD, "50"))
		return 1;
	printf("{\n  \"pass_cost\": [");
	for (gib = 2; gib <= MAX_GIB; gib *= 2)
		if (in_child(one_size, gib, gib == 2)) {
			perror("pass_cost");
			return 1;
		}
	printf("\n  ],\n");
	if (in_child(flushes_fn, 0, 0)) {
		perror("move");
		return 1;
	}
	printf("}\n");
	write_str(PERIOD, "200");
	write_str(PARAM, "0");
	return 0;
}
