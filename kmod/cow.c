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
	spin_lock_init(&s->reason_lock);
	spin_lock_init(&s->pending_lock);
	spin_lock_init(&s->read_lock);
	bio_list_init(&s->pending_writes);
	bio_list_init(&s->pending_reads);
	init_completion(&s->installed);
	INIT_WORK(&s->cow_work, hsnap_cow_work);
	atomic_set(&s->cow_inflight, 0);
	init_waitqueue_head(&s->cow_idle);

	s->group_locks = kvmalloc_array(1U << HSNAP_LOCK_BITS,
					sizeof(*s->group_locks), GFP_KERNEL);
	if (!s->group_locks)
		goto fail;
	for (i = 0; i < (1U << HSNAP_LOCK_BITS); i++)
		init_rwsem(&s->group_locks[i]);

	s->cow_runs = kvmalloc_array(HSNAP_COW_RUNS, sizeof(*s->cow_runs),
				     GFP_KERNEL);
	s->cow_pieces = kvmalloc_array(HSNAP_COW_PIECES, sizeof(*s->cow_pieces),
				       GFP_KERNEL);
	s->cow_buffer = kvcalloc(HSNAP_COW_PAGES, sizeof(*s->cow_buffer),
				 GFP_KERNEL);
	if (!s->cow_runs || !s->cow_pieces || !s->cow_buffer)
		goto fail;
	for (i = 0; i < HSNAP_COW_PAGES; i++) {
		s->cow_buffer[i] = alloc_page(GFP_KERNEL);
		if (!s->cow_buffer[i])
			goto fail;
	}

	s->cbt = hsnap_cbt_alloc(t->nr_chunks);
	if (!s->cbt || hsnap_chunk_map_init(&s->map, t->nr_chunks))
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
	s->store_chunks = min_t(u64, HSNAP_MAX_STORE_CHUNKS,
				bdev_nr_sectors(s->store) >> t->chunk_sect_shift);
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

	/* COW bios of a timed-out batch still use the buffer and batches. */
	wait_event(s->cow_idle, !atomic_read(&s->cow_inflight));
	if (s->cow_wq)
		destroy_workqueue(s->cow_wq);
	if (s->read_wq)
		destroy_workqueue(s->read_wq);
	if (s->store)
		blkdev_put(s->store, FMODE_READ | FMODE_WRITE | FMODE_EXCL);
	for (i = 0; s->cow_buffer && i < HSNAP_COW_PAGES; i++)
		if (s->cow_buffer[i])
			__free_page(s->cow_buffer[i]);
	kvfree(s->cow_buffer);
	kvfree(s->cow_runs);
	kvfree(s->cow_pieces);
	hsnap_cbt_free(s->cbt);
	kvfree(s->group_locks);
	hsnap_chunk_map_free(&s->map);
	kfree(s);
}

/*
 * Called from the hook inside an SRCU read section. Returns true when the
 * worker took the bio; false when it can go down at once (chunks already
 * saved, or the snapshot is invalid).
 */
bool hsnap_snapshot_queue_write(struct hsnap_snapshot *s, struct bio *bio,
				u64 first, u64 last)
{
	if (READ_ONCE(s->error) || hsnap_chunk_map_range_saved(&s->map, first, last))
		return false;

	spin_lock(&s->pending_lock);
	bio_list_add(&s->pending_writes, bio);
	spin_unlock(&s->pending_lock);
	queue_work(s->cow_wq, &s->cow_work);
	return true;
}

/*
 * One round of copying: the unsaved chunks of several queued writes, read
 * together, written together, made durable by one flush, then published,
 * and only then are the writes released.
 */
struct hsnap_cow_batch {
	struct hsnap_snapshot *s;
	unsigned int nr_runs;
	unsigned int pages;
	u64 chunks;
	struct bio_list writes; /* released when the batch is done */
};

static void hsnap_cow_batch_init(struct hsnap_cow_batch *b,
				 struct hsnap_snapshot *s)
{
	b->s = s;
	b->nr_runs = 0;
	b->pages = 0;
	b->chunks = 0;
	bio_list_init(&b->writes);
}

static bool hsnap_cow_batch_has(struct hsnap_cow_batch *b, u64 chunk)
{
	unsigned int i;

	for (i = 0; i < b->nr_runs; i++)
		if (chunk >= b->s->cow_runs[i].first &&
		    chunk < b->s->cow_runs[i].first + b->s->cow_runs[i].count)
			return true;
	return false;
}

/* Adds `chunk` to the batch; false when the batch is full. */
static bool hsnap_cow_batch_add(struct hsnap_cow_batch *b, u64 chunk)
{
	struct hsnap_snapshot *s = b->s;
	unsigned int chunk_pages = 1U << (s->tracker->chunk_shift - PAGE_SHIFT);
	struct hsnap_cow_run *last = b->nr_runs ? &s->cow_runs[b->nr_runs - 1] : NULL;

	if (b->pages + chunk_pages > HSNAP_COW_PAGES)
		return false;
	if (last && last->first + last->count == chunk) {
		last->count++;
	} else {
		if (b->nr_runs == HSNAP_COW_RUNS)
			return false;
		last = &s->cow_runs[b->nr_runs++];
		last->first = chunk;
		last->count = 1;
		last->page = b->pages;
	}
	b->pages += chunk_pages;
	b->chunks++;
	return true;
}

/* Cuts the batch's runs into bio-sized pieces; returns how many. */
static unsigned int hsnap_cow_batch_pieces(struct hsnap_cow_batch *b, u64 slot)
{
	struct hsnap_snapshot *s = b->s;
	struct hsnap_tracker *t = s->tracker;
	unsigned int i, n = 0;

	for (i = 0; i < b->nr_runs; slot += s->cow_runs[i++].count) {
		struct hsnap_cow_run *run = &s->cow_runs[i];
		sector_t origin = run->first << t->chunk_sect_shift;
		sector_t store = slot << t->chunk_sect_shift;
		/* The last chunk of an origin whose size is not a chunk multiple. */
		u64 bytes = min_t(u64, (u64)run->count << t->chunk_shift,
				  (t->nr_sects - origin) << SECTOR_SHIFT);
		unsigned int page = run->page;

		while (bytes) {
			struct hsnap_cow_piece *p = &s->cow_pieces[n++];

			p->page = page;
			p->bytes = min_t(u64, bytes, BIO_MAX_VECS * PAGE_SIZE);
			p->nr_pages = DIV_ROUND_UP(p->bytes, PAGE_SIZE);
			p->origin_sector = origin;
			p->store_sector = store;
			page += p->nr_pages;
			origin += p->bytes >> SECTOR_SHIFT;
			store += p->bytes >> SECTOR_SHIFT;
			bytes -= p->bytes;
		}
	}
	return n;
}

static void hsnap_cow_piece_io(struct hsnap_snapshot *s, struct hsnap_io_batch *io,
			       struct hsnap_cow_piece *p, struct block_device *bdev,
			       blk_opf_t opf, sector_t sector)
{
	struct bio *bio = bio_alloc_bioset(bdev, p->nr_pages, opf, GFP_NOIO,
					   &hsnap_bioset);
	unsigned int bytes = p->bytes;
	unsigned int i;

	bio->bi_iter.bi_sector = sector;
	for (i = 0; i < p->nr_pages; i++) {
		unsigned int len = min_t(unsigned int, bytes, PAGE_SIZE);

		__bio_add_page(bio, s->cow_buffer[p->page + i], len, 0);
		bytes -= len;
	}
	hsnap_io_batch_submit(io, bio);
}

static int hsnap_cow_wait(struct hsnap_snapshot *s, struct hsnap_io_batch *io)
{
	return hsnap_io_batch_wait_timeout(io, msecs_to_jiffies(hsnap_cow_timeout_ms) ?: 1);
}

/*
 * Reads every piece from the origin, and writes each piece to the store as
 * soon as its read is done, so reads and writes overlap; then one flush
 * makes the whole batch durable. A device that does not answer in time
 * invalidates the snapshot: the batch is abandoned (its bios finish on
 * their own), and the writes waiting for it are released.
 */
static int hsnap_cow_batch_copy(struct hsnap_cow_batch *b, u64 slot)
{
	struct hsnap_snapshot *s = b->s;
	struct hsnap_io_batch *writes = &s->cow_writes;
	unsigned int i, nr = hsnap_cow_batch_pieces(b, slot);
	int ret, read_error = 0;

	/* The origin cannot change under these reads: its writers wait here. */
	for (i = 0; i < nr; i++) {
		hsnap_io_batch_init_tracked(&s->cow_pieces[i].read,
					    &s->cow_inflight, &s->cow_idle);
		hsnap_cow_piece_io(s, &s->cow_pieces[i].read, &s->cow_pieces[i],
				   s->tracker->bdev, REQ_OP_READ,
				   s->cow_pieces[i].origin_sector);
	}
	hsnap_io_batch_init_tracked(writes, &s->cow_inflight, &s->cow_idle);
	for (i = 0; i < nr; i++) {
		ret = hsnap_cow_wait(s, &s->cow_pieces[i].read);
		if (ret == -ETIMEDOUT) {
			hsnap_snapshot_invalidate(s, ret, "origin read timed out while copying");
			return ret;
		}
		if (ret && !read_error)
			read_error = ret;
		if (!read_error)
			hsnap_cow_piece_io(s, writes, &s->cow_pieces[i], s->store,
					   REQ_OP_WRITE,
					   s->cow_pieces[i].store_sector);
	}
	ret = hsnap_cow_wait(s, writes);
	if (read_error && ret != -ETIMEDOUT) {
		hsnap_snapshot_invalidate(s, read_error,
					  "origin read failed while copying");
		return read_error;
	}
	if (!ret) {
		hsnap_io_batch_init_tracked(writes, &s->cow_inflight, &s->cow_idle);
		hsnap_io_batch_submit(writes, bio_alloc_bioset(s->store, 0,
							       REQ_OP_WRITE | REQ_PREFLUSH,
							       GFP_NOIO, &hsnap_bioset));
		ret = hsnap_cow_wait(s, writes);
	}
	if (ret == -ETIMEDOUT)
		hsnap_snapshot_invalidate(s, ret, "COW store did not answer in time");
	else if (ret)
		hsnap_snapshot_invalidate(s, ret, "COW store write failed");
	return ret;
}

/*
 * Publishes chunk -> slot. Each group's lock is taken for writing, so a
 * snapshot read that found a chunk unsaved finishes its origin read before
 * the write that overwrites the chunk can be released.
 */
static void hsnap_cow_batch_publish(struct hsnap_cow_batch *b, u64 slot)
{
	struct hsnap_snapshot *s = b->s;
	struct rw_semaphore *locked = NULL;
	unsigned int i, k;
	int ret = 0;

	for (i = 0; i < b->nr_runs && !ret; i++) {
		for (k = 0; k < s->cow_runs[i].count && !ret; k++, slot++) {
			u64 chunk = s->cow_runs[i].first + k;
			struct rw_semaphore *lock = hsnap_group_lock(s, chunk);

			if (lock != locked) {
				if (locked)
					up_write(locked);
				down_write(lock);
				locked = lock;
			}
			ret = hsnap_chunk_map_set(&s->map, chunk, slot);
		}
	}
	if (locked)
		up_write(locked);
	if (ret)
		hsnap_snapshot_invalidate(s, ret, "out of memory for the COW map");
}

/* Copies what the batch holds, then releases its writes, in order. */
static void hsnap_cow_batch_run(struct hsnap_cow_batch *b)
{
	struct hsnap_snapshot *s = b->s;
	struct bio *bio;
	u64 slot;

	if (b->chunks && !READ_ONCE(s->error)) {
		slot = atomic64_fetch_add(b->chunks, &s->next_slot);
		if (slot + b->chunks > s->store_chunks)
			hsnap_snapshot_invalidate(s, -ENOSPC, "COW store full");
		else if (!hsnap_cow_batch_copy(b, slot))
			hsnap_cow_batch_publish(b, slot);
	}
	while ((bio = bio_list_pop(&b->writes)))
		hsnap_submit_own_bio(bio);
	hsnap_cow_batch_init(b, s);
}

/* Adds the unsaved chunks of `bio` to the batch, running it when full. */
static void hsnap_cow_batch_add_bio(struct hsnap_cow_batch *b, struct bio *bio)
{
	struct hsnap_snapshot *s = b->s;
	struct hsnap_tracker *t = s->tracker;
	sector_t start = bio->bi_bdev->bd_start_sect + bio->bi_iter.bi_sector;
	sector_t end = start + bio_sectors(bio);
	u64 c, last, slot;

	start = max(start, t->start_sect) - t->start_sect;
	end = min(end, t->start_sect + t->nr_sects) - t->start_sect;
	if (start < end) {
		c = start >> t->chunk_sect_shift;
		last = (end - 1) >> t->chunk_sect_shift;
		while (c <= last && !READ_ONCE(s->error)) {
			if (hsnap_chunk_map_lookup(&s->map, c, &slot) ||
			    hsnap_cow_batch_has(b, c)) {
				c++;
				continue;
			}
			if (!hsnap_cow_batch_add(b, c)) {
				hsnap_cow_batch_run(b);
				continue;
			}
			c++;
		}
	}
	bio_list_add(&b->writes, bio);
}

static void hsnap_cow_work(struct work_struct *work)
{
	struct hsnap_snapshot *s = container_of(work, struct hsnap_snapshot,
						cow_work);
	unsigned int noio = memalloc_noio_save();
	struct hsnap_cow_batch batch;
	struct bio_list bios;
	struct bio *bio;

	wait_for_completion(&s->installed);
	hsnap_cow_batch_init(&batch, s);
	for (;;) {
		spin_lock(&s->pending_lock);
		bios = s->pending_writes;
		bio_list_init(&s->pending_writes);
		spin_unlock(&s->pending_lock);
		if (bio_list_empty(&bios))
			break;
		while ((bio = bio_list_pop(&bios)))
			hsnap_cow_batch_add_bio(&batch, bio);
		hsnap_cow_batch_run(&batch);
	}
	memalloc_noio_restore(noio);
}
