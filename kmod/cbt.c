// SPDX-License-Identifier: GPL-2.0
/*
 * Changed-block tracking bitmaps: one bit per chunk, set by concurrent
 * writers without a lock.
 */
#include <linux/bitmap.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "hsnap.h"

unsigned long *hsnap_cbt_alloc(u64 nr_chunks)
{
	return vzalloc(array_size(BITS_TO_LONGS(nr_chunks), sizeof(long)));
}

void hsnap_cbt_free(unsigned long *bits)
{
	vfree(bits);
}

/* Sets bits first..last (inclusive), a whole word at a time when it can. */
void hsnap_cbt_mark(unsigned long *bits, u64 first, u64 last)
{
	u64 word = BIT_WORD(first);
	u64 last_word = BIT_WORD(last);

	for (; word <= last_word; word++) {
		unsigned long mask = ~0UL;

		if (word == BIT_WORD(first))
			mask &= BITMAP_FIRST_WORD_MASK(first);
		if (word == last_word)
			mask &= BITMAP_LAST_WORD_MASK(last + 1);
		if ((READ_ONCE(bits[word]) & mask) != mask)
			atomic_long_or(mask, (atomic_long_t *)&bits[word]);
	}
}

u64 hsnap_cbt_weight(const unsigned long *bits, u64 nr_chunks)
{
	return bitmap_weight(bits, nr_chunks);
}

/* Packs the requested range into bytes, LSB first, and copies it out. */
int hsnap_cbt_copy_to_user(const unsigned long *bits, u64 nr_chunks,
			   struct hsnap_cbt_read *req)
{
	u8 __user *out = u64_to_user_ptr(req->buffer);
	u64 count, done;
	u8 chunk_bytes[256];

	if (req->first_chunk % 8)
		return -EINVAL;
	if (req->first_chunk >= nr_chunks) {
		req->nr_chunks = 0;
		return 0;
	}
	count = min(req->nr_chunks, nr_chunks - req->first_chunk);

	for (done = 0; done < count; done += 8 * sizeof(chunk_bytes)) {
		u64 n = min_t(u64, count - done, 8 * sizeof(chunk_bytes));
		u64 nbytes = DIV_ROUND_UP(n, 8);
		u64 i;

		memset(chunk_bytes, 0, nbytes);
		for (i = 0; i < n; i++)
			if (test_bit(req->first_chunk + done + i, bits))
				chunk_bytes[i / 8] |= 1U << (i % 8);
		if (copy_to_user(out + done / 8, chunk_bytes, nbytes))
			return -EFAULT;
		cond_resched();
	}
	req->nr_chunks = count;
	return 0;
}
