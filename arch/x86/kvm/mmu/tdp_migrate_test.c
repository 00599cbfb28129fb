// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests of TDP table migration: what the copy of a leaf SPTE learns
 * from its old copy once no CPU can reach that one any more.
 *
 * Included by tdp_migrate.c, so that the static helpers can be reached.
 * Without A/D bits in the TDP tables (kvm_intel.ept_ad=0) a CPU that wrote
 * through a writable old copy leaves no trace in the SPTE but its
 * writability; the host must still learn that the page is dirty. That mode
 * cannot run on AMD NPT, which always has A/D bits, so it is tested here on
 * SPTEs built with A/D tracking disabled.
 */
#include <kunit/test.h>

struct tdp_merge_test {
	struct page *page[2];
};

static int tdp_merge_test_init(struct kunit *test)
{
	struct tdp_merge_test *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	int i;

	KUNIT_ASSERT_NOT_NULL(test, t);
	for (i = 0; i < ARRAY_SIZE(t->page); i++) {
		t->page[i] = alloc_page(GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, t->page[i]);
		ClearPageDirty(t->page[i]);
	}
	test->priv = t;
	return 0;
}

static void tdp_merge_test_exit(struct kunit *test)
{
	struct tdp_merge_test *t = test->priv;
	int i;

	for (i = 0; i < ARRAY_SIZE(t->page); i++) {
		if (t->page[i]) {
			ClearPageDirty(t->page[i]);
			__free_page(t->page[i]);
		}
	}
}

static kvm_pfn_t pfn(struct kunit *test, int i)
{
	struct tdp_merge_test *t = test->priv;

	return page_to_pfn(t->page[i]);
}

/* A present 4K leaf SPTE mapping page @i of the test, with @bits. */
static u64 leaf(struct kunit *test, int i, u64 bits)
{
	return SPTE_MMU_PRESENT_MASK | PT_PRESENT_MASK |
	       ((u64)pfn(test, i) << PAGE_SHIFT) | bits;
}

static bool dirty(struct kunit *test, int i)
{
	struct tdp_merge_test *t = test->priv;

	return PageDirty(t->page[i]);
}

/* No A/D bits: a writable old copy over a write-protected new one means dirty. */
static void tdp_merge_no_ad_writable_old_copy(struct kunit *test)
{
	u64 new = leaf(test, 0, SPTE_TDP_AD_DISABLED);
	u64 old = leaf(test, 0, SPTE_TDP_AD_DISABLED | PT_WRITABLE_MASK);
	u64 want = new;

	tdp_merge_leaf(&new, old, 0);
	KUNIT_EXPECT_TRUE(test, dirty(test, 0));
	KUNIT_EXPECT_EQ(test, new, want);
}

/* No A/D bits: the new copy is writable itself, its own faults tell. */
static void tdp_merge_no_ad_both_writable(struct kunit *test)
{
	u64 new = leaf(test, 0, SPTE_TDP_AD_DISABLED | PT_WRITABLE_MASK);
	u64 old = new;

	tdp_merge_leaf(&new, old, 0);
	KUNIT_EXPECT_FALSE(test, dirty(test, 0));
}

/* No A/D bits: the new copy maps another page now; neither is dirtied. */
static void tdp_merge_no_ad_other_page(struct kunit *test)
{
	u64 new = leaf(test, 1, SPTE_TDP_AD_DISABLED);
	u64 old = leaf(test, 0, SPTE_TDP_AD_DISABLED | PT_WRITABLE_MASK);
	u64 want = new;

	tdp_merge_leaf(&new, old, 0);
	KUNIT_EXPECT_FALSE(test, dirty(test, 0));
	KUNIT_EXPECT_FALSE(test, dirty(test, 1));
	KUNIT_EXPECT_EQ(test, new, want);
}

/* No A/D bits: the new copy was zapped meanwhile; nothing to merge into. */
static void tdp_merge_no_ad_zapped(struct kunit *test)
{
	u64 new = SHADOW_NONPRESENT_VALUE;
	u64 old = leaf(test, 0, SPTE_TDP_AD_DISABLED | PT_WRITABLE_MASK);

	tdp_merge_leaf(&new, old, 0);
	KUNIT_EXPECT_EQ(test, new, SHADOW_NONPRESENT_VALUE);
}

static u64 ad_mask(struct kunit *test)
{
	u64 ad = shadow_accessed_mask | shadow_dirty_mask;

	if (!ad)
		kunit_skip(test, "this host's TDP tables have no A/D bits");
	return ad;
}

/* A/D bits: those of the old copy are ORed in, the frame stays. */
static void tdp_merge_ad_bits_ored(struct kunit *test)
{
	u64 ad = ad_mask(test);
	u64 new = leaf(test, 0, PT_WRITABLE_MASK);
	u64 old = new | ad;

	tdp_merge_leaf(&new, old, ad);
	KUNIT_EXPECT_EQ(test, new, old);
	KUNIT_EXPECT_EQ(test, spte_to_pfn(new), pfn(test, 0));
}

/* A/D bits: never into a copy that maps another frame (no frame bits mixed). */
static void tdp_merge_ad_other_frame(struct kunit *test)
{
	u64 ad = ad_mask(test);
	u64 new = leaf(test, 1, 0);
	u64 old = leaf(test, 0, ad);
	u64 want = new;

	tdp_merge_leaf(&new, old, ad);
	KUNIT_EXPECT_EQ(test, new, want);
}

static struct kunit_case tdp_merge_cases[] = {
	KUNIT_CASE(tdp_merge_no_ad_writable_old_copy),
	KUNIT_CASE(tdp_merge_no_ad_both_writable),
	KUNIT_CASE(tdp_merge_no_ad_other_page),
	KUNIT_CASE(tdp_merge_no_ad_zapped),
	KUNIT_CASE(tdp_merge_ad_bits_ored),
	KUNIT_CASE(tdp_merge_ad_other_frame),
	{}
};

static struct kunit_suite tdp_merge_suite = {
	.name = "kvm_tdp_migrate",
	.init = tdp_merge_test_init,
	.exit = tdp_merge_test_exit,
	.test_cases = tdp_merge_cases,
};

kunit_test_suite(tdp_merge_suite);
