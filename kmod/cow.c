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

static void hsnap_copier_work(struct work_struct *work);
static struct hsnap_copier *hsnap_copier_wake(struct hsnap_snapshot *s);

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

/*
 * A physically contiguous block of up to 1 << *order pages, split so that
 * every page is freed alone; *order drops while memory is too fragmented.
 */
static struct page *hsnap_alloc_block(unsigned int *order)
{
	struct page *block;

	for (; *order; (*order)--) {
		block = alloc_pages(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN, *order);
		if (block) {
			split_page(block, *order);
			return block;
		}
	}
	return alloc_page(GFP_KERNEL);
}

static int hsnap_copier_init(struct hsnap_copier *c, struct hsnap_snapshot *s)
{
	unsigned int i, k;

	c->s = s;
	INIT_WORK(&c->work, hsnap_copier_work);
	c->runs = kvmalloc_array(HSNAP_COW_RUNS, sizeof(*c->runs), GFP_KERNEL);
	c->pieces = kvmalloc_array(HSNAP_COW_PIECES, sizeof(*c->pieces),
				   GFP_KERNEL);
	c->buffer = kvcalloc(HSNAP_COW_PAGES, sizeof(*c->buffer), GFP_KERNEL);
	if (!c->runs || !c->pieces || !c->buffer)
		return -ENOMEM;
	/*
	 * Contiguous blocks where memory allows: a bio over them is a few
	 * large segments instead of one per page, so a 1 MiB bio stays within
	 * a virtio queue's segment limit and costs one request, not two.
	 */
	for (i = 0; i < HSNAP_COW_PAGES;) {
		unsigned int order = min_t(unsigned int, HSNAP_COW_BLOCK_ORDER,
					   ilog2(HSNAP_COW_PAGES - i));
		struct page *block = hsnap_alloc_block(&order);

		if (!block)
			return -ENOMEM;
		for (k = 0; k < (1U << order); k++)
			c->buffer[i++] = block + k;
	}
	return 0;
}

static void hsnap_copier_free(struct hsnap_copier *c)
{
	unsigned int i;

	for (i = 0; c->buffer && i < HSNAP_COW_PAGES; i++)
		if (c->buffer[i])
			__free_page(c->buffer[i]);
	kvfree(c->buffer);
	kvfree(c->runs);
	kvfree(c->pieces);
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
	atomic_set(&s->cow_inflight, 0);
	init_waitqueue_head(&s->cow_idle);
	mutex_init(&s->flush_mutex);
	for (i = 0; i < HSNAP_STREAMS; i++)
		s->streams[i].next = U64_MAX;

	s->group_locks = kvmalloc_array(1U << HSNAP_LOCK_BITS,
					sizeof(*s->group_locks), GFP_KERNEL);
	if (!s->group_locks)
		goto fail;
	for (i = 0; i < (1U << HSNAP_LOCK_BITS); i++)
		init_rwsem(&s->group_locks[i]);

	for (i = 0; i < HSNAP_COPIERS; i++)
		if (hsnap_copier_init(&s->copiers[i], s))
			goto fail;

	s->cbt = hsnap_cbt_alloc(t->nr_chunks);
	if (!s->cbt || hsnap_chunk_map_init(&s->map, t->nr_chunks))
		goto fail;

	/* WQ_MEM_RECLAIM: a rescuer guarantees progress under memory pressure. */
	s->cow_wq = alloc_workqueue("hsnap-cow%u", WQ_MEM_RECLAIM | WQ_UNBOUND,
				    HSNAP_COPIERS, t->id);
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

	/* COW bios of a timed-out batch still use a copier's buffer. */
	wait_event(s->cow_idle, !atomic_read(&s->cow_inflight));
	if (s->cow_wq)
		destroy_workqueue(s->cow_wq);
	if (s->read_wq)
		destroy_workqueue(s->read_wq);
	if (s->store)
		blkdev_put(s->store, FMODE_READ | FMODE_WRITE | FMODE_EXCL);
	for (i = 0; i < HSNAP_COPIERS; i++)
		hsnap_copier_free(&s->copiers[i]);
	hsnap_cbt_free(s->cbt);
	kvfree(s->group_locks);
	hsnap_chunk_map_free(&s->map);
	kfree(s);
}

/*
 * Sequential writers: a large write that continues one of the recent
 * streams moves it on, and the chunks up to HSNAP_AHEAD_PAGES past it are
 * queued for copying (in batch-sized ranges), so the writer's next writes
 * find them saved instead of waiting for their own read, save and flush.
 * Returns whether a range was queued. Under pending_lock.
 */
static bool hsnap_stream_note(struct hsnap_snapshot *s, u64 first, u64 last)
{
	struct hsnap_tracker *t = s->tracker;
	unsigned int page_shift = t->chunk_shift - PAGE_SHIFT;
	u64 unit = HSNAP_COW_PAGES >> page_shift;
	u64 distance = HSNAP_AHEAD_PAGES >> page_shift;
	struct hsnap_stream *st = NULL, *oldest = &s->streams[0];
	bool queued = false;
	unsigned int i;

	for (i = 0; i < HSNAP_STREAMS && !st; i++) {
		struct hsnap_stream *x = &s->streams[i];

		if (first == x->next || first + 1 == x->next)
			st = x;
		else if (x->used < oldest->used)
			oldest = x;
	}
	s->stream_clock++;
	if (!st) {
		oldest->next = last + 1;
		oldest->front = last + 1;
		oldest->used = s->stream_clock;
		return false;
	}
	st->next = last + 1;
	st->used = s->stream_clock;
	st->front = max(st->front, st->next);
	while (st->front < t->nr_chunks && st->front < st->next + distance &&
	       s->nr_ahead < HSNAP_AHEAD_RANGES) {
		struct hsnap_chunk_range r = {
			.first = st->front,
			.last = min(st->front + unit, t->nr_chunks) - 1,
		};

		st->front = r.last + 1;
		if (hsnap_chunk_map_range_saved(&s->map, r.first, r.last))
			continue;
		s->ahead[s->nr_ahead++] = r;
		s->pending_pages += (r.last - r.first + 1) << page_shift;
		queued = true;
	}
	return queued;
}

/*
 * Called from the hook inside an SRCU read section. Returns true when the
 * copiers took the bio; false when it can go down at once (chunks already
 * saved, or the snapshot is invalid).
 */
bool hsnap_snapshot_queue_write(struct hsnap_snapshot *s, struct bio *bio,
				u64 first, u64 last)
{
	u64 pages = (last - first + 1) << (s->tracker->chunk_shift - PAGE_SHIFT);
	bool large = pages >= HSNAP_AHEAD_MIN_PAGES;
	struct hsnap_copier *idle = NULL;
	bool queue, ahead = false;

	if (READ_ONCE(s->error))
		return false;
	queue = !hsnap_chunk_map_range_saved(&s->map, first, last);
	if (!queue && !large)
		return false;

	spin_lock(&s->pending_lock);
	if (large)
		ahead = hsnap_stream_note(s, first, last);
	if (queue) {
		bio_list_add(&s->pending_writes, bio);
		s->pending_pages += pages;
	}
	if (queue || ahead)
		idle = hsnap_copier_wake(s);
	spin_unlock(&s->pending_lock);
	if (idle)
		queue_work(s->cow_wq, &idle->work);
	return queue;
}

/*
 * One round of copying: the unsaved chunks of several queued writes, read
 * together, written together, made durable by one flush, then published,
 * and only then are the writes released.
 */
struct hsnap_cow_batch {
	struct hsnap_copier *c;
	unsigned int nr_runs;
	unsigned int pages;
	u64 chunks;
	struct bio_list writes; /* released when the batch is done */
};

static void hsnap_cow_batch_init(struct hsnap_cow_batch *b,
				 struct hsnap_copier *c)
{
	b->c = c;
	b->nr_runs = 0;
	b->pages = 0;
	b->chunks = 0;
	bio_list_init(&b->writes);
}

static bool hsnap_cow_batch_has(struct hsnap_cow_batch *b, u64 chunk)
{
	struct hsnap_cow_run *runs = b->c->runs;
	unsigned int i;

	for (i = 0; i < b->nr_runs; i++)
		if (chunk >= runs[i].first && chunk < runs[i].first + runs[i].count)
			return true;
	return false;
}

/* Adds `chunk` to the batch; false when the batch is full. */
static bool hsnap_cow_batch_add(struct hsnap_cow_batch *b, u64 chunk)
{
	struct hsnap_copier *c = b->c;
	unsigned int chunk_pages = 1U << (c->s->tracker->chunk_shift - PAGE_SHIFT);
	struct hsnap_cow_run *last = b->nr_runs ? &c->runs[b->nr_runs - 1] : NULL;

	if (b->pages + chunk_pages > HSNAP_COW_PAGES)
		return false;
	if (last && last->first + last->count == chunk) {
		last->count++;
	} else {
		if (b->nr_runs == HSNAP_COW_RUNS)
			return false;
		last = &c->runs[b->nr_runs++];
		last->first = chunk;
		last->count = 1;
		last->page = b->pages;
	}
	b->pages += chunk_pages;
	b->chunks++;
	return true;
}

/* Cuts the batch's runs into bio-sized origin reads; returns how many. */
static unsigned int hsnap_cow_batch_pieces(struct hsnap_cow_batch *b)
{
	struct hsnap_copier *c = b->c;
	struct hsnap_tracker *t = c->s->tracker;
	unsigned int i, n = 0;

	for (i = 0; i < b->nr_runs; i++) {
		struct hsnap_cow_run *run = &c->runs[i];
		sector_t origin = run->first << t->chunk_sect_shift;
		/* The last chunk of an origin whose size is not a chunk multiple. */
		u64 bytes = min_t(u64, (u64)run->count << t->chunk_shift,
				  (t->nr_sects - origin) << SECTOR_SHIFT);
		unsigned int page = run->page;

		while (bytes) {
			struct hsnap_cow_piece *p = &c->pieces[n++];

			p->page = page;
			p->bytes = min_t(u64, bytes, HSNAP_COW_PIECE_PAGES * PAGE_SIZE);
			p->nr_pages = DIV_ROUND_UP(p->bytes, PAGE_SIZE);
			p->origin_sector = origin;
			page += p->nr_pages;
			origin += p->bytes >> SECTOR_SHIFT;
			bytes -= p->bytes;
		}
	}
	return n;
}

/* Submits one bio over `nr_pages` pages of the copier's buffer. */
static void hsnap_cow_buffer_io(struct hsnap_copier *c, struct hsnap_io_batch *io,
				unsigned int page, unsigned int nr_pages,
				unsigned int bytes, struct block_device *bdev,
				blk_opf_t opf, sector_t sector)
{
	struct bio *bio = bio_alloc_bioset(bdev, nr_pages, opf, GFP_NOIO,
					   &hsnap_bioset);
	unsigned int i;

	bio->bi_iter.bi_sector = sector;
	for (i = 0; i < nr_pages; i++) {
		unsigned int len = min_t(unsigned int, bytes, PAGE_SIZE);

		/*
		 * Merges physically contiguous buffer pages into one segment.
		 * The bio has a vector for every page, so this cannot fail; if
		 * it did, the batch fails and the snapshot is invalidated.
		 */
		if (WARN_ON_ONCE(bio_add_page(bio, c->buffer[page + i], len, 0) != len)) {
			WRITE_ONCE(io->status, BLK_STS_RESOURCE);
			break;
		}
		bytes -= len;
	}
	hsnap_io_batch_submit(io, bio);
}

/* Writes buffer pages [from, to) to their slots, in bios as large as allowed. */
static void hsnap_cow_store_write(struct hsnap_copier *c, u64 slot,
				  unsigned int from, unsigned int to)
{
	struct hsnap_snapshot *s = c->s;
	sector_t base = slot << s->tracker->chunk_sect_shift;

	while (from < to) {
		unsigned int n = min_t(unsigned int, to - from, BIO_MAX_VECS);

		hsnap_cow_buffer_io(c, &c->writes, from, n, n << PAGE_SHIFT,
				    s->store, REQ_OP_WRITE,
				    base + ((sector_t)from << (PAGE_SHIFT - SECTOR_SHIFT)));
		from += n;
	}
}

static int hsnap_cow_wait(struct hsnap_io_batch *io)
{
	return hsnap_io_batch_wait_timeout(io, msecs_to_jiffies(hsnap_cow_timeout_ms) ?: 1);
}

/*
 * Makes every store write that completed before the call durable. Copiers
 * that finish together share one flush: a flush started after their writes
 * completed covers them, so each waits for the one in flight and starts
 * another only if that one began too early.
 */
static int hsnap_cow_store_flush(struct hsnap_snapshot *s)
{
	/* Flushes started from now on cover the writes already completed. */
	u64 needed = READ_ONCE(s->flush_started) + 1;
	int ret = 0;

	mutex_lock(&s->flush_mutex);
	if (READ_ONCE(s->error)) {
		ret = -EIO;
	} else if (s->flush_done < needed) {
		WRITE_ONCE(s->flush_started, s->flush_started + 1);
		hsnap_io_batch_init_tracked(&s->flush_io, &s->cow_inflight, &s->cow_idle);
		hsnap_io_batch_submit(&s->flush_io, bio_alloc_bioset(s->store, 0,
								     REQ_OP_WRITE | REQ_PREFLUSH,
								     GFP_NOIO, &hsnap_bioset));
		ret = hsnap_cow_wait(&s->flush_io);
		if (!ret)
			s->flush_done = s->flush_started;
		else if (ret == -ETIMEDOUT)
			hsnap_snapshot_invalidate(s, ret, "COW store did not answer in time");
		else
			hsnap_snapshot_invalidate(s, ret, "COW store flush failed");
	}
	mutex_unlock(&s->flush_mutex);
	return ret;
}

/*
 * Reads every piece from the origin. The buffer holds the batch in slot
 * order, so the store side is one contiguous range: it is written in large
 * bios as soon as the reads covering them are done, so reads and writes
 * overlap and scattered chunks cost one store write, not one each. Then a
 * flush (shared with other copiers) makes the batch durable. A device that does not answer in
 * time invalidates the snapshot: the batch is abandoned (its bios finish on
 * their own), and the writes waiting for it are released.
 */
static int hsnap_cow_batch_copy(struct hsnap_cow_batch *b, u64 slot)
{
	struct hsnap_copier *c = b->c;
	struct hsnap_snapshot *s = c->s;
	unsigned int i, nr = hsnap_cow_batch_pieces(b);
	unsigned int ready, written = 0;
	int ret, read_error = 0;

	/* The origin cannot change under these reads: its writers wait here. */
	for (i = 0; i < nr; i++) {
		struct hsnap_cow_piece *p = &c->pieces[i];

		hsnap_io_batch_init_tracked(&p->read, &s->cow_inflight, &s->cow_idle);
		hsnap_cow_buffer_io(c, &p->read, p->page, p->nr_pages, p->bytes,
				    s->tracker->bdev, REQ_OP_READ, p->origin_sector);
	}
	hsnap_io_batch_init_tracked(&c->writes, &s->cow_inflight, &s->cow_idle);
	for (i = 0; i < nr; i++) {
		ret = hsnap_cow_wait(&c->pieces[i].read);
		if (ret == -ETIMEDOUT) {
			hsnap_snapshot_invalidate(s, ret, "origin read timed out while copying");
			return ret;
		}
		if (ret && !read_error)
			read_error = ret;
		if (read_error)
			continue;
		ready = i + 1 < nr ? c->pieces[i + 1].page : b->pages;
		if (ready == b->pages || ready - written >= HSNAP_COW_PIECE_PAGES) {
			hsnap_cow_store_write(c, slot, written, ready);
			written = ready;
		}
	}
	ret = hsnap_cow_wait(&c->writes);
	if (read_error && ret != -ETIMEDOUT) {
		hsnap_snapshot_invalidate(s, read_error,
					  "origin read failed while copying");
		return read_error;
	}
	if (!ret)
		return hsnap_cow_store_flush(s);
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
	struct hsnap_copier *c = b->c;
	struct hsnap_snapshot *s = c->s;
	struct rw_semaphore *locked = NULL;
	unsigned int i, k;
	int ret = 0;

	for (i = 0; i < b->nr_runs && !ret; i++) {
		for (k = 0; k < c->runs[i].count && !ret; k++, slot++) {
			u64 chunk = c->runs[i].first + k;
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
	struct hsnap_snapshot *s = b->c->s;
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
	hsnap_cow_batch_init(b, b->c);
}

/* The chunks of the origin that `bio` touches; false if none. */
static bool hsnap_bio_chunks(struct hsnap_tracker *t, struct bio *bio,
			     struct hsnap_chunk_range *range)
{
	sector_t start = bio->bi_bdev->bd_start_sect + bio->bi_iter.bi_sector;
	sector_t end = start + bio_sectors(bio);

	start = max(start, t->start_sect) - t->start_sect;
	end = min(end, t->start_sect + t->nr_sects) - t->start_sect;
	if (start >= end)
		return false;
	range->first = start >> t->chunk_sect_shift;
	range->last = (end - 1) >> t->chunk_sect_shift;
	return true;
}

/* Adds the unsaved chunks of `bio` to the batch, running it when full. */
static void hsnap_cow_batch_add_bio(struct hsnap_cow_batch *b, struct bio *bio)
{
	struct hsnap_snapshot *s = b->c->s;
	struct hsnap_chunk_range range;
	u64 c, slot;

	if (hsnap_bio_chunks(s->tracker, bio, &range)) {
		c = range.first;
		while (c <= range.last && !READ_ONCE(s->error)) {
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

/* Whether a copier other than `self` holds a write overlapping `range`. */
static bool hsnap_claimed_elsewhere(struct hsnap_snapshot *s,
				    struct hsnap_copier *self,
				    struct hsnap_chunk_range *range)
{
	unsigned int i, k;

	for (i = 0; i < HSNAP_COPIERS; i++) {
		struct hsnap_copier *c = &s->copiers[i];

		if (c == self)
			continue;
		for (k = 0; k < c->nr_claims; k++)
			if (range->first <= c->claims[k].last &&
			    c->claims[k].first <= range->last)
				return true;
	}
	return false;
}

/*
 * An idle copier to start, marked busy (the caller queues it), or NULL.
 * A busy copier takes from the queue again before it goes idle, so a second
 * one starts only for large amounts of waiting writes: small writes that
 * arrive while a batch is copied are worth more as one batch, with one
 * flush, than as many small ones. Under pending_lock.
 */
static struct hsnap_copier *hsnap_copier_wake(struct hsnap_snapshot *s)
{
	struct hsnap_copier *idle = NULL;
	unsigned int i, busy = 0;

	for (i = 0; i < HSNAP_COPIERS; i++) {
		if (s->copiers[i].busy)
			busy++;
		else if (!idle)
			idle = &s->copiers[i];
	}
	if (!idle || (busy && s->pending_pages < HSNAP_COPIER_SPLIT_PAGES))
		return NULL;
	idle->busy = true;
	return idle;
}

static bool hsnap_range_overlaps(struct hsnap_chunk_range *list, unsigned int n,
				 struct hsnap_chunk_range *range)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (range->first <= list[i].last && list[i].first <= range->last)
			return true;
	return false;
}

/*
 * Takes the oldest copy-ahead range that no copier holds and that no
 * waiting write overlaps. Under pending_lock.
 */
static void hsnap_copier_take_ahead(struct hsnap_copier *c,
				    struct hsnap_chunk_range *skipped,
				    unsigned int nr_skipped)
{
	struct hsnap_snapshot *s = c->s;
	unsigned int i;

	for (i = 0; i < s->nr_ahead; i++) {
		struct hsnap_chunk_range *r = &s->ahead[i];

		if (hsnap_claimed_elsewhere(s, c, r) ||
		    hsnap_range_overlaps(skipped, nr_skipped, r))
			continue;
		c->ahead = *r;
		c->has_ahead = true;
		c->claims[c->nr_claims++] = *r;
		s->pending_pages -= (r->last - r->first + 1) <<
				    (s->tracker->chunk_shift - PAGE_SHIFT);
		s->nr_ahead--;
		memmove(r, r + 1, (s->nr_ahead - i) * sizeof(*r));
		return;
	}
}

/*
 * Takes queued writes, oldest first, up to one batch's worth; with room to
 * spare, a copy-ahead range too. A write that overlaps a write another
 * copier holds is left waiting, and so is every later write that overlaps
 * a waiting one, so writes to the same chunk keep their order; writes
 * behind it that touch other chunks are taken. Once the snapshot is invalid
 * it takes every write and drops copy-ahead: nothing is copied.
 */
static bool hsnap_copier_take(struct hsnap_copier *c, struct bio_list *bios)
{
	struct hsnap_snapshot *s = c->s;
	unsigned int page_shift = s->tracker->chunk_shift - PAGE_SHIFT;
	struct hsnap_chunk_range skipped[HSNAP_TAKE_SCAN];
	struct hsnap_copier *helper = NULL;
	struct hsnap_chunk_range range;
	unsigned int nr_skipped = 0;
	struct bio_list waiting;
	u64 pages = 0;
	struct bio *bio;
	bool took;

	bio_list_init(bios);
	bio_list_init(&waiting);
	spin_lock(&s->pending_lock);
	c->nr_claims = 0;
	c->has_ahead = false;
	while ((bio = bio_list_pop(&s->pending_writes))) {
		u64 bio_pages = 0;

		if (hsnap_bio_chunks(s->tracker, bio, &range))
			bio_pages = (range.last - range.first + 1) << page_shift;
		if (bio_pages && !READ_ONCE(s->error)) {
			/* One claim stays free for copy-ahead. */
			if (c->nr_claims + 1 >= HSNAP_COPIER_BIOS ||
			    (c->nr_claims && pages >= HSNAP_COW_PAGES)) {
				bio_list_add_head(&s->pending_writes, bio);
				break;
			}
			if (hsnap_claimed_elsewhere(s, c, &range) ||
			    hsnap_range_overlaps(skipped, nr_skipped, &range)) {
				bio_list_add(&waiting, bio);
				skipped[nr_skipped++] = range;
				if (nr_skipped == HSNAP_TAKE_SCAN)
					break;
				continue;
			}
			c->claims[c->nr_claims++] = range;
			pages += bio_pages;
		}
		s->pending_pages -= bio_pages;
		bio_list_add(bios, bio);
	}
	bio_list_merge_head(&s->pending_writes, &waiting);
	if (READ_ONCE(s->error)) {
		while (s->nr_ahead) {
			range = s->ahead[--s->nr_ahead];
			s->pending_pages -= (range.last - range.first + 1) << page_shift;
		}
	} else if (pages < HSNAP_COW_PAGES / 2) {
		hsnap_copier_take_ahead(c, skipped, nr_skipped);
	}
	took = !bio_list_empty(bios) || c->has_ahead;
	c->busy = took;
	/* More than a batch is waiting: copy the rest in parallel. */
	if (took)
		helper = hsnap_copier_wake(s);
	spin_unlock(&s->pending_lock);
	if (helper)
		queue_work(s->cow_wq, &helper->work);
	return took;
}

/* Adds the unsaved chunks of a copy-ahead range, as far as the batch has room. */
static void hsnap_cow_batch_add_ahead(struct hsnap_cow_batch *b,
				      struct hsnap_chunk_range *ahead)
{
	struct hsnap_snapshot *s = b->c->s;
	u64 chunk, slot;

	for (chunk = ahead->first; chunk <= ahead->last && !READ_ONCE(s->error); chunk++) {
		if (hsnap_chunk_map_lookup(&s->map, chunk, &slot) ||
		    hsnap_cow_batch_has(b, chunk))
			continue;
		if (!hsnap_cow_batch_add(b, chunk))
			break;
	}
}

static void hsnap_copier_work(struct work_struct *work)
{
	struct hsnap_copier *c = container_of(work, struct hsnap_copier, work);
	unsigned int noio = memalloc_noio_save();
	struct hsnap_cow_batch batch;
	struct bio_list bios;
	struct bio *bio;

	wait_for_completion(&c->s->installed);
	hsnap_cow_batch_init(&batch, c);
	/*
	 * Taking again drops this copier's claims: a write that waited for
	 * them is now taken by whichever copier looks next, this one included.
	 */
	while (hsnap_copier_take(c, &bios)) {
		while ((bio = bio_list_pop(&bios)))
			hsnap_cow_batch_add_bio(&batch, bio);
		if (c->has_ahead)
			hsnap_cow_batch_add_ahead(&batch, &c->ahead);
		hsnap_cow_batch_run(&batch);
	}
	memalloc_noio_restore(noio);
}
