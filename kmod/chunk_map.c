// SPDX-License-Identifier: GPL-2.0
/*
 * Chunk map: where the saved copy of each chunk lives in the COW store.
 * Two levels of plain arrays, so the hot lookups (every write to a tracked
 * origin, every snapshot read) are two loads without a lock. The snapshot's
 * copiers fill entries, under the chunk's group lock; leaves appear as
 * chunks get copied.
 */
#include <linux/slab.h>

#include "hsnap.h"

int hsnap_chunk_map_init(struct hsnap_chunk_map *m, u64 nr_chunks)
{
	m->nr_leaves = DIV_ROUND_UP_ULL(nr_chunks, HSNAP_MAP_LEAF_ENTRIES);
	m->leaves = kvcalloc(m->nr_leaves, sizeof(*m->leaves), GFP_KERNEL);
	return m->leaves ? 0 : -ENOMEM;
}

void hsnap_chunk_map_free(struct hsnap_chunk_map *m)
{
	u64 i;

	for (i = 0; m->leaves && i < m->nr_leaves; i++)
		kfree(m->leaves[i]);
	kvfree(m->leaves);
	m->leaves = NULL;
}

static u32 hsnap_chunk_map_entry(struct hsnap_chunk_map *m, u64 chunk)
{
	/* Pairs with the cmpxchg() in hsnap_chunk_map_set(). */
	u32 *leaf = smp_load_acquire(&m->leaves[chunk / HSNAP_MAP_LEAF_ENTRIES]);

	return leaf ? READ_ONCE(leaf[chunk % HSNAP_MAP_LEAF_ENTRIES]) : 0;
}

bool hsnap_chunk_map_lookup(struct hsnap_chunk_map *m, u64 chunk, u64 *slot)
{
	u32 entry = hsnap_chunk_map_entry(m, chunk);

	if (!entry)
		return false;
	*slot = entry - 1;
	return true;
}

bool hsnap_chunk_map_range_saved(struct hsnap_chunk_map *m, u64 first, u64 last)
{
	u64 c;

	for (c = first; c <= last; c++)
		if (!hsnap_chunk_map_entry(m, c))
			return false;
	return true;
}

/*
 * Only copiers call this, each for chunks no other copier holds; the copy at
 * `slot` is already durable.
 */
int hsnap_chunk_map_set(struct hsnap_chunk_map *m, u64 chunk, u64 slot)
{
	u32 **leafp = &m->leaves[chunk / HSNAP_MAP_LEAF_ENTRIES];
	/* Pairs with the cmpxchg() of the copier that allocated the leaf. */
	u32 *leaf = smp_load_acquire(leafp);

	if (!leaf) {
		u32 *fresh = kcalloc(HSNAP_MAP_LEAF_ENTRIES, sizeof(u32), GFP_NOIO);

		if (!fresh)
			return -ENOMEM;
		/* Readers see a zeroed leaf or none; two copiers may race here. */
		leaf = cmpxchg(leafp, NULL, fresh);
		if (leaf)
			kfree(fresh);
		else
			leaf = fresh;
	}
	/*
	 * A chunk is saved once, for good. Claims keep two copiers from copying
	 * it twice; should a second copy ever be made, it may have been read
	 * after the first one let a write through, so the first one stays.
	 */
	if (!READ_ONCE(leaf[chunk % HSNAP_MAP_LEAF_ENTRIES]))
		WRITE_ONCE(leaf[chunk % HSNAP_MAP_LEAF_ENTRIES], (u32)slot + 1);
	return 0;
}
