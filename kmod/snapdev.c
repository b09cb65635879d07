// SPDX-License-Identifier: GPL-2.0
/*
 * The snapshot device /dev/hydrate-snapN: a read-only, bio-based disk.
 * Saved chunks are read from the COW store, the rest from the origin. Reads
 * block on chunk locks, so a worker serves them, never the submitter.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/sched/mm.h>

#include "hsnap.h"

static void hsnap_snapdev_submit_bio(struct bio *bio);

static const struct block_device_operations hsnap_snapdev_fops = {
	.owner = THIS_MODULE,
	.submit_bio = hsnap_snapdev_submit_bio,
};

bool hsnap_snapdev_is_ours(struct block_device *bdev)
{
	return bdev->bd_disk->fops == &hsnap_snapdev_fops;
}

bool hsnap_snapdev_busy(struct hsnap_snapshot *s)
{
	return s->disk_added && atomic_read(&s->disk->part0->bd_openers) > 0;
}

/* Reads the part of `bio` at [pos, pos + len) sectors of the snapshot. */
static void hsnap_snapdev_read_run(struct hsnap_io_batch *batch, struct bio *bio,
				   sector_t bio_start, sector_t pos, sector_t len,
				   struct block_device *bdev, sector_t target)
{
	struct bio *clone;

	clone = bio_alloc_clone(bdev, bio, GFP_NOIO, &hsnap_bioset);
	bio_trim(clone, pos - bio_start, len);
	clone->bi_iter.bi_sector = target;
	hsnap_io_batch_submit(batch, clone);
}

/*
 * Serves [pos, end) of `bio`, which lies in one chunk group, with the
 * group's lock held for reading: no chunk of it can be copied (and then
 * overwritten on the origin) until these reads have completed.
 */
static int hsnap_snapdev_read_group(struct hsnap_snapshot *s, struct bio *bio,
				    sector_t bio_start, sector_t pos, sector_t end)
{
	struct hsnap_tracker *t = s->tracker;
	struct rw_semaphore *lock = hsnap_group_lock(s, pos >> t->chunk_sect_shift);
	sector_t chunk_mask = (1ULL << t->chunk_sect_shift) - 1;
	struct block_device *run_bdev = NULL;
	sector_t run_pos = 0, run_target = 0, run_len = 0;
	struct hsnap_io_batch batch;
	int ret;

	down_read(lock);
	/* Pairs with the release in hsnap_snapshot_invalidate(). */
	ret = smp_load_acquire(&s->error);
	if (ret)
		goto out;

	hsnap_io_batch_init(&batch);
	while (pos < end) {
		sector_t seg_end = min(end, (pos | chunk_mask) + 1);
		struct block_device *bdev = t->bdev;
		sector_t target = pos;
		u64 slot;

		if (hsnap_chunk_map_lookup(&s->map, pos >> t->chunk_sect_shift, &slot)) {
			bdev = s->store;
			target = (slot << t->chunk_sect_shift) + (pos & chunk_mask);
		}
		if (run_len && (bdev != run_bdev || target != run_target + run_len)) {
			hsnap_snapdev_read_run(&batch, bio, bio_start, run_pos,
					       run_len, run_bdev, run_target);
			run_len = 0;
		}
		if (!run_len) {
			run_bdev = bdev;
			run_pos = pos;
			run_target = target;
		}
		run_len += seg_end - pos;
		pos = seg_end;
	}
	if (run_len)
		hsnap_snapdev_read_run(&batch, bio, bio_start, run_pos, run_len,
				       run_bdev, run_target);
	ret = hsnap_io_batch_wait(&batch);
	/*
	 * An invalidated snapshot lets writes through uncopied; data read from
	 * the origin meanwhile may be newer than the snapshot.
	 */
	if (!ret) /* pairs with the release in hsnap_snapshot_invalidate() */
		ret = smp_load_acquire(&s->error);
out:
	up_read(lock);
	return ret;
}

static void hsnap_snapdev_read(struct hsnap_snapshot *s, struct bio *bio)
{
	struct hsnap_tracker *t = s->tracker;
	sector_t start = bio->bi_iter.bi_sector;
	sector_t end = start + bio_sectors(bio);
	sector_t group_mask = (1ULL << (HSNAP_GROUP_SHIFT - SECTOR_SHIFT)) - 1;
	sector_t pos;
	int ret = 0;

	if (end > t->nr_sects) {
		bio_io_error(bio);
		return;
	}
	for (pos = start; pos < end && !ret;) {
		sector_t group_end = min(end, (pos | group_mask) + 1);

		ret = hsnap_snapdev_read_group(s, bio, start, pos, group_end);
		pos = group_end;
	}
	bio->bi_status = errno_to_blk_status(ret);
	bio_endio(bio);
}

static void hsnap_snapdev_read_work(struct work_struct *work)
{
	struct hsnap_snapshot *s = container_of(work, struct hsnap_snapshot,
						read_work);
	unsigned int noio = memalloc_noio_save();
	struct bio_list bios;
	struct bio *bio;

	for (;;) {
		spin_lock(&s->read_lock);
		bios = s->pending_reads;
		bio_list_init(&s->pending_reads);
		spin_unlock(&s->read_lock);
		if (bio_list_empty(&bios))
			break;
		while ((bio = bio_list_pop(&bios)))
			hsnap_snapdev_read(s, bio);
	}
	memalloc_noio_restore(noio);
}

static void hsnap_snapdev_submit_bio(struct bio *bio)
{
	struct hsnap_snapshot *s = bio->bi_bdev->bd_disk->private_data;

	if (bio_op(bio) != REQ_OP_READ) {
		/* Flushes have nothing to do; everything else is refused. */
		if (bio_op(bio) == REQ_OP_FLUSH ||
		    (op_is_flush(bio->bi_opf) && !bio_sectors(bio)))
			bio_endio(bio);
		else
			bio_io_error(bio);
		return;
	}
	/* Pairs with the release in hsnap_snapshot_invalidate(). */
	if (smp_load_acquire(&s->error)) {
		bio_io_error(bio);
		return;
	}
	spin_lock(&s->read_lock);
	bio_list_add(&s->pending_reads, bio);
	spin_unlock(&s->read_lock);
	queue_work(s->read_wq, &s->read_work);
}

int hsnap_snapdev_create(struct hsnap_snapshot *s)
{
	struct hsnap_tracker *t = s->tracker;
	struct gendisk *disk;

	INIT_WORK(&s->read_work, hsnap_snapdev_read_work);
	disk = blk_alloc_disk(NUMA_NO_NODE);
	if (!disk)
		return -ENOMEM;
	disk->major = hsnap_major;
	disk->first_minor = t->id;
	disk->minors = 1;
	disk->fops = &hsnap_snapdev_fops;
	disk->private_data = s;
	disk->flags |= GENHD_FL_NO_PART;
	snprintf(disk->disk_name, DISK_NAME_LEN, HYDRATE_SNAP_DISK_PREFIX "%u",
		 t->id);
	set_capacity(disk, t->nr_sects);
	set_disk_ro(disk, true);
	blk_queue_logical_block_size(disk->queue,
				     bdev_logical_block_size(t->bdev));
	blk_queue_physical_block_size(disk->queue,
				      bdev_physical_block_size(t->bdev));
	blk_queue_io_min(disk->queue, 1U << t->chunk_shift);
	blk_queue_flag_set(QUEUE_FLAG_NOMERGES, disk->queue);
	s->disk = disk;
	return 0;
}

int hsnap_snapdev_add(struct hsnap_snapshot *s)
{
	int ret = add_disk(s->disk);

	if (ret)
		pr_err("cannot add %s: %d\n", s->disk->disk_name, ret);
	else
		s->disk_added = true;
	return ret;
}

/* Removes the disk and waits for reads it already accepted. */
void hsnap_snapdev_remove(struct hsnap_snapshot *s)
{
	if (!s->disk)
		return;
	if (s->disk_added)
		del_gendisk(s->disk);
	flush_workqueue(s->read_wq);
	put_disk(s->disk);
	s->disk = NULL;
}
