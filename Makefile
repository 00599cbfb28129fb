# vMitosis: NUMA-local page tables for processes and virtual machines (Linux/KVM patch series).
# The two commands a user needs: `make run` and `make test`. See README.md for the rest.

SHELL := /bin/bash
WB := workbench

# Knobs of the test bed, passed to the scripts (see README.md). Those that carry shell text are
# taken verbatim: make would otherwise expand their '$' (CMD='echo $?' printed a prerequisite).
override CMD := $(value CMD)
override APPEND := $(value APPEND)
override RUN_ARGS := $(value RUN_ARGS)
override GUEST_CMD := $(value GUEST_CMD)
export QEMU NODES CPUS MEM DIST APPEND CMD TIMEOUT JOBS FORCE SHARE KCONFIG RUN_ARGS RUNS VARIANT TCG_THREAD TB_SIZE \
	BOOTS LABEL GUEST_CMD DEBUG_PASS PTI_BOOTS PARALLEL L1LOG

.PHONY: all help deps source tree kernel kernel-debug userland image image-debug vm run soak test qemu-7.2 \
	series series-check writeback deb clean distclean bench

all: image

help:
	@echo "make run | test | bench | kernel | kernel-debug | vm [CMD=...] | soak | series | series-check |" \
		"writeback | deb | clean"
	@echo "knobs: NODES CPUS MEM DIST APPEND CMD TIMEOUT JOBS FORCE KCONFIG VARIANT BOOTS" \
		"TCG_THREAD TB_SIZE DEBUG_PASS PARALLEL PTI_BOOTS L1LOG (see README.md)"

deps:
	@$(WB)/deps.sh

source: deps
	@$(WB)/fetch-base.sh

tree: source
	@$(WB)/tree.sh

kernel: tree
	@VARIANT= $(WB)/kernel.sh

# The same kernel with lockdep, KASAN, KFENCE, DEBUG_VM, page_table_check... (make test's debug pass)
kernel-debug: tree
	@VARIANT=debug $(WB)/kernel.sh

userland: kernel
	@$(WB)/userland.sh

image: kernel userland
	@$(WB)/mkinitramfs.sh

# The images and, for the debug pass, the debug kernel and its L1 image as well.
image-debug: kernel kernel-debug userland
	@$(WB)/mkinitramfs.sh

vm: $(if $(filter debug,$(VARIANT)),image-debug,image)
	@$(WB)/vm.sh

run: image
	@$(WB)/run.sh

# Figures, not verdicts: out/bench.json and out/bench.md.
bench: image
	@$(WB)/bench.sh

# Debian 12's QEMU 7.2 next to the installed one, for make soak QEMU=... (README: Known).
qemu-7.2: deps
	@$(WB)/qemu-old.sh

# How often the emulated host dies while nested guests boot (BOOTS=30 APPEND=...).
soak: $(if $(filter debug,$(VARIANT)),image-debug,image)
	@$(WB)/soak.sh

test: $(if $(filter 0,$(DEBUG_PASS)),image,image-debug)
	@$(WB)/test.sh

series: tree
	@$(WB)/series.sh

series-check: series
	@$(WB)/series-check.sh

writeback:
	@$(WB)/writeback.sh

deb: tree
	@$(WB)/deb.sh

# Build products only; keeps the unpacked base source and ccache.
clean:
	rm -rf build/obj build/obj-debug build/selftests build/payload build/rootfs-l1 build/rootfs-l2 \
		build/initramfs-*.cpio build/series-check build/obj-deb out

# Everything, including the expanded tree (refuses nothing: write back first).
distclean:
	rm -rf build out
