// SPDX-License-Identifier: GPL-2.0
/*
 * Copy-on-write: before a write, discard or write-zeroes reaches a chunk of
 * the origin whose old contents are not yet saved, a worker copies them to
 * the COW store, makes the copy durable, records it, and only then lets the
 * write go on. When the store fills or fails the snapshot is invalidated and
 * writes pass straight through: the origin never waits on a broken snapshot.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hash.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "hsnap.h"

static void hsnap_cow_work(struct work_struct *work);

struct rw_semaphore *hsnap_group_lock(struct hsnap_snapshot *s, u64 chunk)
{
	u64 group = chunk >> (HSNAP_GROUP_SHIFT - s->tracker->chunk_shift);

	return &s->group_locks[hash_64(group, HSNAP_LOCK_BITS)];
}

bool hsnap_chunk_slot(struct hsnap_snapshot *s, u64 chunk, u64 *slot)
{
	void *entry = xa_load(&s->map, chunk);

	if (!entry)
		return false;
	*slot = xa_to_value(entry);
	return true;
}

void hsnap_snapshot_invalidate(struct hsnap_snapshot *s, int error,
			       const char *reason)
{
	spin_lock(&s->reason_lock);
	if (!s->error) {
		strscpy(s->reason, reason, sizeof(s->reason));
		/* Readers check the error after their I/O: see snapdev.c. */
		smp_store_release(&s->error, error);
		pr_warn("snapshot %u invalidated: %s (%d)\n", s->tracker->id,
			reason, error);
	}
	spin_unlock(&s->reason_lock);
}

struct hsnap_snapshot *hsnap_snapshot_alloc(struct hsnap_tracker *t,
					    const char *store_path)
{
	struct hsnap_snapshot *s;
	unsigned int i;
	int ret = -ENOMEM;

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return ERR_PTR(-ENOMEM);
	s->tracker = t;
	strscpy(s->store_path, store_path, sizeof(s->store_path));
	xa_init(&s->map);
	spin_lock_init(&s->reason_lock);
	spin_lock_init(&s->pending_lock);
	spin_lock_init(&s->read_lock);
	bio_list_init(&s->pending_writes);
	bio_list_init(&s->pending_reads);
	init_completion(&s->installed);
	INIT_WORK(&s->cow_work, hsnap_cow_work);

	s->group_locks = kvmalloc_array(1U << HSNAP_LOCK_BITS,
					sizeof(*s->group_locks), GFP_KERNEL);
	if (!s->group_locks)
		goto fail;
	for (i = 0; i < (1U << HSNAP_LOCK_BITS); i++)
		init_rwsem(&s->group_locks[i]);

	for (i = 0; i < HSNAP_GROUP_PAGES; i++) {
		s->cow_buffer[i] = alloc_page(GFP_KERNEL);
		if (!s->cow_buffer[i])
			goto fail;
	}

	s->cbt = hsnap_cbt_alloc(t->nr_chunks);
	if (!s->cbt)
		goto fail;

	/* WQ_MEM_RECLAIM: a rescuer guarantees progress under memory pressure. */
	s->cow_wq = alloc_workqueue("hsnap-cow%u", WQ_MEM_RECLAIM | WQ_UNBOUND,
				    1, t->id);
	s->read_wq = alloc_workqueue("hsnap-read%u",
				     WQ_MEM_RECLAIM | WQ_UNBOUND, 1, t->id);
	if (!s->cow_wq || !s->read_wq)
		goto fail;

	s->store = blkdev_get_by_path(store_path,
				      FMODE_READ | FMODE_WRITE | FMODE_EXCL, s);
	if (IS_ERR(s->store)) {
		ret = PTR_ERR(s->store);
		s->store = NULL;
		pr_err("cannot open COW store %s: %d\n", store_path, ret);
		goto fail;
	}
	s->store_chunks = bdev_nr_sectors(s->store) >> t->chunk_sect_shift;
	if (!s->store_chunks) {
		pr_err("COW store %s is smaller than one chunk\n", store_path);
		ret = -ENOSPC;
		goto fail;
	}
	return s;

fail:
	hsnap_snapshot_free(s);
	return ERR_PTR(ret);
}

/* Frees a snapshot that is no longer reachable from its tracker. */
void hsnap_snapshot_free(struct hsnap_snapshot *s)
{
	unsigned int i;

	if (s->cow_wq)
		destroy_workqueue(s->cow_wq);
	if (s->read_wq)
		destroy_workqueue(s->read_wq);
	if (s->store)
		blkdev_put(s->store, FMODE_READ | FMODE_WRITE | FMODE_EXCL);
	for (i = 0; i < HSNAP_GROUP_PAGES; i++)
		if (s->cow_buffer[i])
			__free_page(s->cow_buffer[i]);
	hsnap_cbt_free(s->cbt);
	kvfree(s->group_locks);
	xa_destroy(&s->map);
	kfree(s);
}

static bool hsnap_range_saved(struct hsnap_snapshot *s, u64 first, u64 last)
{
	u64 c;

	for (c = first; c <= last; c++)
		if (!xa_load(&s->map, c))
			return false;
	return true;
}

/*
 * Called from the hook inside an SRCU read section. Returns true when the
 * worker took the bio; false when it can go down at once (chunks already
 * saved, or the snapshot is invalid).
 */
bool hsnap_snapshot_queue_write(struct hsnap_snapshot *s, struct bio *bio,
				u64 first, u64 last)
{
	if (READ_ONCE(s->error) || hsnap_range_saved(s, first, last))
		return false;

	spin_lock(&s->pending_lock);
	bio_list_add(&s->pending_writes, bio);
	spin_unlock(&s->pending_lock);
	queue_work(s->cow_wq, &s->cow_work);
	return true;
}

/* Reads chunks [first, first + n) of the origin into the COW buffer. */
static void hsnap_cow_add_run(struct hsnap_snapshot *s, struct hsnap_io_batch *batch,
			      struct block_device *bdev, blk_opf_t opf,
			      sector_t sector, u64 group_first, u64 first, u64 n)
{
	struct hsnap_tracker *t = s->tracker;
	unsigned int chunk_pages = 1U << (t->chunk_shift - PAGE_SHIFT);
	unsigned int page = (first - group_first) * chunk_pages;
	unsigned int nr_pages = n * chunk_pages;
	sector_t origin_start = first << t->chunk_sect_shift;
	/* The last chunk of an origin whose size is not a chunk multiple. */
	u64 bytes = min_t(u64, (u64)n << t->chunk_shift,
			  (t->nr_sects - origin_start) << SECTOR_SHIFT);
	struct bio *bio;
	unsigned int i;

	bio = bio_alloc_bioset(bdev, nr_pages, opf, GFP_NOIO, &hsnap_bioset);
	bio->bi_iter.bi_sector = sector;
	for (i = 0; i < nr_pages && bytes; i++) {
		unsigned int len = min_t(u64, bytes, PAGE_SIZE);

		__bio_add_page(bio, s->cow_buffer[page + i], len, 0);
		bytes -= len;
	}
	hsnap_io_batch_submit(batch, bio);
}

/*
 * Copies the unsaved chunks among [first, last], which lie in one group:
 * read them, write them to fresh store slots, flush the store, and only then
 * publish their slots. Holding the group lock for writing keeps snapshot
 * reads of the origin out while the chunks change hands.
 */
static void hsnap_cow_group(struct hsnap_snapshot *s, u64 first, u64 last)
{
	struct hsnap_tracker *t = s->tracker;
	u64 group_first = first & ~((1ULL << (HSNAP_GROUP_SHIFT - t->chunk_shift)) - 1);
	struct rw_semaphore *lock = hsnap_group_lock(s, first);
	struct hsnap_io_batch batch;
	u64 c, run, n = 0, slot;
	struct bio *flush;
	int ret;

	down_write(lock);
	if (READ_ONCE(s->error))
		goto out;
	for (c = first; c <= last; c++)
		if (!xa_load(&s->map, c))
			n++;
	if (!n)
		goto out;

	slot = atomic64_fetch_add(n, &s->next_slot);
	if (slot + n > s->store_chunks) {
		hsnap_snapshot_invalidate(s, -ENOSPC, "COW store full");
		goto out;
	}

	/* Old contents of each run of unsaved chunks into the buffer. */
	hsnap_io_batch_init(&batch);
	for (c = first; c <= last; c = run) {
		for (; c <= last && xa_load(&s->map, c); c++)
			;
		for (run = c; run <= last && !xa_load(&s->map, run); run++)
			;
		if (run > c)
			hsnap_cow_add_run(s, &batch, t->bdev, REQ_OP_READ,
					  c << t->chunk_sect_shift, group_first,
					  c, run - c);
	}
	ret = hsnap_io_batch_wait(&batch);
	if (ret) {
		hsnap_snapshot_invalidate(s, ret, "origin read failed while copying");
		goto out;
	}

	/* Runs go to consecutive slots, in chunk order. */
	hsnap_io_batch_init(&batch);
	n = 0;
	for (c = first; c <= last; c = run) {
		for (; c <= last && xa_load(&s->map, c); c++)
			;
		for (run = c; run <= last && !xa_load(&s->map, run); run++)
			;
		if (run > c)
			hsnap_cow_add_run(s, &batch, s->store, REQ_OP_WRITE,
					  (slot + n) << t->chunk_sect_shift,
					  group_first, c, run - c);
		n += run - c;
	}
	ret = hsnap_io_batch_wait(&batch);
	if (!ret) {
		hsnap_io_batch_init(&batch);
		flush = bio_alloc_bioset(s->store, 0, REQ_OP_WRITE | REQ_PREFLUSH,
					 GFP_NOIO, &hsnap_bioset);
		hsnap_io_batch_submit(&batch, flush);
		ret = hsnap_io_batch_wait(&batch);
	}
	if (ret) {
		hsnap_snapshot_invalidate(s, ret, "COW store write failed");
		goto out;
	}

	n = 0;
	for (c = first; c <= last; c++) {
		if (xa_load(&s->map, c))
			continue;
		ret = xa_err(xa_store(&s->map, c, xa_mk_value(slot + n), GFP_NOIO));
		if (ret) {
			hsnap_snapshot_invalidate(s, ret, "out of memory for the COW map");
			goto out;
		}
		n++;
	}
out:
	up_write(lock);
}

static void hsnap_cow_bio(struct hsnap_snapshot *s, struct bio *bio)
{
	struct hsnap_tracker *t = s->tracker;
	sector_t start = bio->bi_bdev->bd_start_sect + bio->bi_iter.bi_sector;
	sector_t end = start + bio_sectors(bio);
	u64 group_chunks = 1ULL << (HSNAP_GROUP_SHIFT - t->chunk_shift);
	u64 first, last, c;

	start = max(start, t->start_sect) - t->start_sect;
	end = min(end, t->start_sect + t->nr_sects) - t->start_sect;
	if (start >= end)
		return;
	first = start >> t->chunk_sect_shift;
	last = (end - 1) >> t->chunk_sect_shift;

	for (c = first; c <= last && !READ_ONCE(s->error);) {
		u64 group_last = min(last, (c | (group_chunks - 1)));

		if (!hsnap_range_saved(s, c, group_last))
			hsnap_cow_group(s, c, group_last);
		c = group_last + 1;
	}
}

static void hsnap_cow_work(struct work_struct *work)
{
	struct hsnap_snapshot *s = container_of(work, struct hsnap_snapshot,
						cow_work);
	unsigned int noio = memalloc_noio_save();
	struct bio_list bios;
	struct bio *bio;

	wait_for_completion(&s->installed);
	for (;;) {
		spin_lock(&s->pending_lock);
		bios = s->pending_writes;
		bio_list_init(&s->pending_writes);
		spin_unlock(&s->pending_lock);
		if (bio_list_empty(&bios))
			break;
		while ((bio = bio_list_pop(&bios))) {
			if (!READ_ONCE(s->error))
				hsnap_cow_bio(s, bio);
			hsnap_submit_own_bio(bio);
		}
	}
	memalloc_noio_restore(noio);
}
