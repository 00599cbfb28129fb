# vMitosis: NUMA-local page tables for processes and virtual machines (Linux/KVM patch series).
# The two commands a user needs: `make run` and `make test`. See README.md for the rest.

SHELL := /bin/bash
WB := workbench

# Knobs of the test bed, passed to the scripts (see README.md).
export NODES CPUS MEM DIST APPEND CMD TIMEOUT JOBS FORCE SHARE KCONFIG RUN_ARGS RUNS

.PHONY: all help deps source tree kernel userland image vm run test series series-check \
	writeback deb clean distclean

all: image

help:
	@echo "make run | test | kernel | vm [CMD=...] | series | series-check | writeback | deb | clean"
	@echo "knobs: NODES CPUS MEM DIST APPEND CMD TIMEOUT JOBS FORCE KCONFIG (see README.md)"

deps:
	@$(WB)/deps.sh

source: deps
	@$(WB)/fetch-base.sh

tree: source
	@$(WB)/tree.sh

kernel: tree
	@$(WB)/kernel.sh

userland: kernel
	@$(WB)/userland.sh

image: kernel userland
	@$(WB)/mkinitramfs.sh

vm: image
	@$(WB)/vm.sh

run: image
	@$(WB)/run.sh

test: image
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
	rm -rf build/obj build/selftests build/payload build/rootfs-l1 build/rootfs-l2 \
		build/initramfs-*.cpio build/series-check build/obj-deb out

# Everything, including the expanded tree (refuses nothing: write back first).
distclean:
	rm -rf build out
