/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hydrate-snap: in-place snapshots and changed-block tracking of live block
 * devices. Internal types shared by the module's files.
 */
#ifndef HSNAP_H
#define HSNAP_H

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/workqueue.h>

#include "include/uapi/linux/hydrate_snap.h"

#define HSNAP_VERSION_MAJOR 0
#define HSNAP_VERSION_MINOR 1
#define HSNAP_VERSION_PATCH 0

/* The unit of chunk locking and of snapshot reads: one group of chunks. */
#define HSNAP_GROUP_SHIFT HSNAP_MAX_CHUNK_SHIFT
#define HSNAP_LOCK_BITS 10
/*
 * Copiers per snapshot: each copies one batch at a time, so a write that
 * arrives while a batch is being copied starts its own copy at once.
 */
#define HSNAP_COPIERS 4
/* What one copier's batch can copy (4 MiB), and in how many runs of chunks. */
#define HSNAP_COW_PAGES 1024
#define HSNAP_COW_RUNS 256
/* Largest physically contiguous block of a copy buffer (1 MiB), if available. */
#define HSNAP_COW_BLOCK_ORDER 8
/* Queued writes one copier holds at a time. */
#define HSNAP_COPIER_BIOS 64
/* Queued writes a copier looks past when the oldest ones must wait. */
#define HSNAP_TAKE_SCAN 16
/*
 * Copy-ahead of sequential writers: streams followed per snapshot, the write
 * size (pages) from which a write counts, how far ahead chunks are copied,
 * and how many batch-sized ranges may wait to be copied.
 */
#define HSNAP_STREAMS 4
#define HSNAP_AHEAD_MIN_PAGES 16
#define HSNAP_AHEAD_PAGES (4 * HSNAP_COW_PAGES)
#define HSNAP_AHEAD_RANGES 8
/* Waiting writes (in pages of chunks) that make a second copier start. */
#define HSNAP_COPIER_SPLIT_PAGES (HSNAP_COW_PAGES / 4)

/*
 * Origin reads are cut into pieces of at most 1 MiB; the store write of a
 * piece starts when its read is done. Smaller pieces overlap reads and
 * writes within one batch better, but copiers and copy-ahead already keep
 * the devices busy, and every bio costs CPU (256 KiB pieces: 0.23 -> 1 MiB:
 * 0.33 of the untracked write rate on a RAM-backed guest disk).
 */
#define HSNAP_COW_PIECE_PAGES 256
#define HSNAP_COW_PIECES (HSNAP_COW_RUNS + HSNAP_COW_PAGES / HSNAP_COW_PIECE_PAGES)

/* Consecutive chunks copied together, through consecutive buffer pages. */
struct hsnap_cow_run {
	u64 first;
	u32 count;
	u32 page;
};

struct hsnap_tracker;

/* Bios submitted together and waited for together (io.c). */
struct hsnap_io_batch {
	atomic_t pending;
	struct completion done;
	blk_status_t status;
	/* Optional: counts bios that may outlive a timed-out wait. */
	atomic_t *inflight;
	wait_queue_head_t *idle;
};

/* Up to HSNAP_COW_PIECE_PAGES pages of a run, read from the origin by one bio. */
struct hsnap_cow_piece {
	unsigned int page;
	unsigned int nr_pages;
	unsigned int bytes;
	sector_t origin_sector;
	struct hsnap_io_batch read;
};

struct hsnap_chunk_range {
	u64 first;
	u64 last;
};

/* A sequential writer: where its next write should start, how far ahead is copied. */
struct hsnap_stream {
	u64 next;  /* chunk after its last write */
	u64 front; /* first chunk not yet queued for copy-ahead */
	u64 used;  /* stream_clock when last written, to replace the oldest */
};

struct hsnap_snapshot;

/*
 * One COW copier: a work item with its own copy buffer. It takes queued
 * writes from the head of the snapshot's list, copies their unsaved chunks
 * and releases them. `claims` are the chunk ranges of the writes it holds:
 * a write that overlaps another copier's claim waits at the head of the
 * list, so its chunks are never copied twice and it is released after the
 * earlier write to the same chunk.
 */
struct hsnap_copier {
	struct hsnap_snapshot *s;
	struct work_struct work;
	struct page **buffer;
	struct hsnap_cow_run *runs;
	struct hsnap_cow_piece *pieces;
	struct hsnap_io_batch writes;
	/* Under the snapshot's pending_lock. */
	bool busy; /* queued or copying: it will look at the queue again */
	unsigned int nr_claims;
	struct hsnap_chunk_range claims[HSNAP_COPIER_BIOS];
	bool has_ahead;
	struct hsnap_chunk_range ahead; /* copy-ahead of a sequential stream */
};

/* Chunk -> store slot + 1 (0: not saved), in leaves of one page. */
#define HSNAP_MAP_LEAF_ENTRIES (PAGE_SIZE / sizeof(u32))
#define HSNAP_MAX_STORE_CHUNKS (U32_MAX - 1)

struct hsnap_chunk_map {
	u32 **leaves;
	u64 nr_leaves;
};

/*
 * A point-in-time view of one tracked device. Chunks overwritten since the
 * snapshot was taken have their old contents in the COW store; `map` says
 * where (chunk -> store slot). A chunk is in `map` only once its copy is
 * durable in the store.
 */
struct hsnap_snapshot {
	struct hsnap_tracker *tracker;
	struct block_device *store;
	char store_path[HSNAP_PATH_MAX];
	u64 store_chunks;
	atomic64_t next_slot;
	struct hsnap_chunk_map map;

	/*
	 * Writers copying a group take its lock for writing; snapshot reads
	 * that go to the origin take it for reading, so an origin read can
	 * never see a write that overtook the copy of its chunk.
	 */
	struct rw_semaphore *group_locks;

	int error; /* 0 while valid; the errno that invalidated it */
	spinlock_t reason_lock;
	char reason[HSNAP_REASON_MAX];

	/* Writes waiting for their chunks to be copied, in arrival order. */
	spinlock_t pending_lock;
	struct bio_list pending_writes;
	u64 pending_pages; /* chunk pages the queued writes touch */
	/* Copy-ahead: sequential streams and the ranges waiting for a copier. */
	struct hsnap_stream streams[HSNAP_STREAMS];
	u64 stream_clock;
	struct hsnap_chunk_range ahead[HSNAP_AHEAD_RANGES];
	unsigned int nr_ahead;
	struct workqueue_struct *cow_wq;
	struct hsnap_copier copiers[HSNAP_COPIERS];
	/*
	 * Store flushes are shared: a copier whose writes completed before a
	 * flush was started needs no flush of its own once that one is done.
	 */
	struct mutex flush_mutex;
	u64 flush_started; /* generation of the last flush begun */
	u64 flush_done;    /* generation of the last flush that succeeded */
	struct hsnap_io_batch flush_io;
	/*
	 * COW bios still in flight. A store that stops answering invalidates
	 * the snapshot after hsnap_cow_timeout_ms instead of holding writes;
	 * its bios may complete later, and freeing waits for them.
	 */
	atomic_t cow_inflight;
	wait_queue_head_t cow_idle;
	/* The copiers start only once earlier writes have drained. */
	struct completion installed;

	/* Reads of the snapshot device, served by a worker (they may block). */
	spinlock_t read_lock;
	struct bio_list pending_reads;
	struct work_struct read_work;
	struct workqueue_struct *read_wq;

	struct gendisk *disk;
	bool disk_added;

	/* The live CBT as it was when the snapshot was taken. */
	unsigned long *cbt;
	u64 cbt_generation;
};

/* One tracked origin device (a whole disk or a partition). */
struct hsnap_tracker {
	u32 id;
	struct block_device *bdev;
	struct gendisk *disk;
	sector_t start_sect; /* of bdev on disk */
	sector_t nr_sects;
	char origin_path[HSNAP_PATH_MAX];

	unsigned int chunk_shift;      /* log2 of the chunk size in bytes */
	unsigned int chunk_sect_shift; /* log2 of the chunk size in sectors */
	u64 nr_chunks;

	/* Live CBT: swapped under hsnap_srcu so a reset loses no write. */
	unsigned long __rcu *cbt;
	u64 cbt_generation;

	struct hsnap_snapshot __rcu *snap;
};

/* main.c: registry of trackers and the control lock. */
extern struct mutex hsnap_ctl_mutex;
extern struct srcu_struct hsnap_srcu;
extern struct hsnap_tracker __rcu *hsnap_trackers[HSNAP_MAX_TRACKERS];
extern atomic_t hsnap_nr_trackers;
extern struct bio_set hsnap_bioset;
extern int hsnap_major;
extern unsigned int hsnap_cow_timeout_ms;

/* hook.c: ftrace interception of submit_bio_noacct. */
int hsnap_hook_get(void);
void hsnap_hook_put(void);
void hsnap_hook_exit(void);
void hsnap_submit_own_bio(struct bio *bio);

/* io.c: waiting for the module's own bios outside any submission context. */
void hsnap_io_batch_init(struct hsnap_io_batch *batch);
void hsnap_io_batch_init_tracked(struct hsnap_io_batch *batch, atomic_t *inflight,
				 wait_queue_head_t *idle);
void hsnap_io_batch_submit(struct hsnap_io_batch *batch, struct bio *bio);
int hsnap_io_batch_wait(struct hsnap_io_batch *batch);
int hsnap_io_batch_wait_timeout(struct hsnap_io_batch *batch,
				unsigned long timeout);
void hsnap_drain_origin(struct hsnap_tracker *t);

/* chunk_map.c */
int hsnap_chunk_map_init(struct hsnap_chunk_map *m, u64 nr_chunks);
void hsnap_chunk_map_free(struct hsnap_chunk_map *m);
bool hsnap_chunk_map_lookup(struct hsnap_chunk_map *m, u64 chunk, u64 *slot);
bool hsnap_chunk_map_range_saved(struct hsnap_chunk_map *m, u64 first, u64 last);
int hsnap_chunk_map_set(struct hsnap_chunk_map *m, u64 chunk, u64 slot);

/* cbt.c: bitmaps of chunks. */
unsigned long *hsnap_cbt_alloc(u64 nr_chunks);
void hsnap_cbt_free(unsigned long *bits);
void hsnap_cbt_mark(unsigned long *bits, u64 first, u64 last);
u64 hsnap_cbt_weight(const unsigned long *bits, u64 nr_chunks);
int hsnap_cbt_copy_to_user(const unsigned long *bits, u64 nr_chunks,
			   struct hsnap_cbt_read *req);

/* tracker.c */
int hsnap_tracker_create(struct hsnap_create *req);
int hsnap_tracker_destroy(u32 id, u32 flags);
int hsnap_tracker_info(struct hsnap_info *info);
int hsnap_tracker_cbt_read(struct hsnap_cbt_read *req);
int hsnap_tracker_cbt_reset(u32 id);
void hsnap_tracker_destroy_all(void);
bool hsnap_intercept_write(struct bio *bio);

/* cow.c */
struct hsnap_snapshot *hsnap_snapshot_alloc(struct hsnap_tracker *t,
					    const char *store_path);
void hsnap_snapshot_free(struct hsnap_snapshot *s);
bool hsnap_snapshot_queue_write(struct hsnap_snapshot *s, struct bio *bio,
				u64 first, u64 last);
void hsnap_snapshot_invalidate(struct hsnap_snapshot *s, int error,
			       const char *reason);
struct rw_semaphore *hsnap_group_lock(struct hsnap_snapshot *s, u64 chunk);

/* snapdev.c */
int hsnap_snapdev_create(struct hsnap_snapshot *s);
int hsnap_snapdev_add(struct hsnap_snapshot *s);
void hsnap_snapdev_remove(struct hsnap_snapshot *s);
bool hsnap_snapdev_is_ours(struct block_device *bdev);
bool hsnap_snapdev_busy(struct hsnap_snapshot *s);

/* ctl.c */
int hsnap_ctl_register(void);
void hsnap_ctl_unregister(void);

static inline bool hsnap_bio_changes_data(struct bio *bio)
{
	switch (bio_op(bio)) {
	case REQ_OP_WRITE:
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
	case REQ_OP_WRITE_ZEROES:
		return bio_sectors(bio) != 0;
	default:
		return false;
	}
}

#endif /* HSNAP_H */
