// SPDX-License-Identifier: GPL-2.0
/*
 * Trackers: which devices are tracked, their changed-block tracking, and
 * taking and dropping their snapshots. Every state change happens under
 * hsnap_ctl_mutex; the I/O path reads the state under hsnap_srcu only.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>

#include "hsnap.h"

static struct hsnap_tracker *hsnap_tracker_by_id(u32 id)
{
	if (id >= HSNAP_MAX_TRACKERS)
		return NULL;
	return rcu_dereference_protected(hsnap_trackers[id],
					 lockdep_is_held(&hsnap_ctl_mutex));
}

static struct hsnap_snapshot *hsnap_tracker_snap(struct hsnap_tracker *t)
{
	return rcu_dereference_protected(t->snap,
					 lockdep_is_held(&hsnap_ctl_mutex));
}

static unsigned long *hsnap_tracker_cbt(struct hsnap_tracker *t)
{
	return rcu_dereference_protected(t->cbt,
					 lockdep_is_held(&hsnap_ctl_mutex));
}

static bool hsnap_ranges_overlap(struct block_device *a, struct block_device *b)
{
	return a->bd_disk == b->bd_disk &&
	       a->bd_start_sect < b->bd_start_sect + bdev_nr_sectors(b) &&
	       b->bd_start_sect < a->bd_start_sect + bdev_nr_sectors(a);
}

/*
 * The hook's view: marks the CBT of the tracker the write lands on and, if
 * that tracker has a snapshot whose chunks still need copying, hands the bio
 * to the snapshot's COW worker. Runs inside an SRCU read section.
 */
bool hsnap_intercept_write(struct bio *bio)
{
	struct block_device *bdev = bio->bi_bdev;
	sector_t start, end;
	unsigned int i;

	if (!atomic_read(&hsnap_nr_trackers))
		return false;
	start = bdev->bd_start_sect + bio->bi_iter.bi_sector;
	end = start + bio_sectors(bio);

	for (i = 0; i < HSNAP_MAX_TRACKERS; i++) {
		struct hsnap_tracker *t = srcu_dereference(hsnap_trackers[i],
							   &hsnap_srcu);
		struct hsnap_snapshot *s;
		sector_t rel_start, rel_end;
		u64 first, last;

		if (!t || t->disk != bdev->bd_disk ||
		    end <= t->start_sect || start >= t->start_sect + t->nr_sects)
			continue;
		rel_start = max(start, t->start_sect) - t->start_sect;
		rel_end = min(end, t->start_sect + t->nr_sects) - t->start_sect;
		first = rel_start >> t->chunk_sect_shift;
		last = (rel_end - 1) >> t->chunk_sect_shift;

		hsnap_cbt_mark(srcu_dereference(t->cbt, &hsnap_srcu), first, last);
		s = srcu_dereference(t->snap, &hsnap_srcu);
		return s && hsnap_snapshot_queue_write(s, bio, first, last);
	}
	return false;
}

static struct hsnap_tracker *hsnap_tracker_alloc(struct block_device *bdev,
						 const char *path,
						 unsigned int chunk_shift)
{
	struct hsnap_tracker *t;
	unsigned int id;

	for (id = 0; id < HSNAP_MAX_TRACKERS; id++)
		if (!hsnap_tracker_by_id(id))
			break;
	if (id == HSNAP_MAX_TRACKERS)
		return ERR_PTR(-EMFILE);

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return ERR_PTR(-ENOMEM);
	t->id = id;
	t->bdev = bdev;
	t->disk = bdev->bd_disk;
	t->start_sect = bdev->bd_start_sect;
	t->nr_sects = bdev_nr_sectors(bdev);
	strscpy(t->origin_path, path, sizeof(t->origin_path));
	t->chunk_shift = chunk_shift;
	t->chunk_sect_shift = chunk_shift - SECTOR_SHIFT;
	t->nr_chunks = DIV_ROUND_UP_ULL(t->nr_sects, 1ULL << t->chunk_sect_shift);
	RCU_INIT_POINTER(t->cbt, hsnap_cbt_alloc(t->nr_chunks));
	if (!rcu_access_pointer(t->cbt)) {
		kfree(t);
		return ERR_PTR(-ENOMEM);
	}
	return t;
}

static void hsnap_tracker_free(struct hsnap_tracker *t)
{
	hsnap_cbt_free(rcu_dereference_protected(t->cbt, true));
	blkdev_put(t->bdev, FMODE_READ);
	kfree(t);
}

/* Drops the snapshot of `t`; pending writes go down uncopied. */
static int hsnap_snapshot_destroy(struct hsnap_tracker *t, bool force)
{
	struct hsnap_snapshot *s = hsnap_tracker_snap(t);

	if (!s)
		return -ENOENT;
	if (!force && hsnap_snapdev_busy(s))
		return -EBUSY;

	hsnap_snapshot_invalidate(s, -ESHUTDOWN, "snapshot destroyed");
	rcu_assign_pointer(t->snap, NULL);
	synchronize_srcu(&hsnap_srcu);
	complete_all(&s->installed);
	flush_workqueue(s->cow_wq);
	hsnap_snapdev_remove(s);
	hsnap_snapshot_free(s);
	pr_info("snapshot %u destroyed\n", t->id);
	return 0;
}

static int hsnap_check_store(struct hsnap_tracker *t, struct hsnap_snapshot *s)
{
	unsigned int i;

	if (hsnap_ranges_overlap(s->store, t->bdev) ||
	    hsnap_snapdev_is_ours(s->store))
		return -EINVAL;
	for (i = 0; i < HSNAP_MAX_TRACKERS; i++) {
		struct hsnap_tracker *other = hsnap_tracker_by_id(i);

		if (other && hsnap_ranges_overlap(s->store, other->bdev))
			return -EBUSY;
	}
	return 0;
}

static int hsnap_check_origin(struct block_device *bdev)
{
	unsigned int i;

	if (hsnap_snapdev_is_ours(bdev))
		return -EINVAL;
	if (bdev_is_zoned(bdev))
		return -EOPNOTSUPP;
	for (i = 0; i < HSNAP_MAX_TRACKERS; i++) {
		struct hsnap_tracker *t = hsnap_tracker_by_id(i);
		struct hsnap_snapshot *s;

		if (!t)
			continue;
		if (hsnap_ranges_overlap(bdev, t->bdev))
			return -EBUSY;
		s = hsnap_tracker_snap(t);
		if (s && hsnap_ranges_overlap(bdev, s->store))
			return -EBUSY;
	}
	return 0;
}

static struct hsnap_tracker *hsnap_tracker_find(struct block_device *bdev)
{
	unsigned int i;

	for (i = 0; i < HSNAP_MAX_TRACKERS; i++) {
		struct hsnap_tracker *t = hsnap_tracker_by_id(i);

		if (t && t->bdev == bdev)
			return t;
	}
	return NULL;
}

static int hsnap_tracker_create_locked(struct hsnap_create *req)
{
	unsigned int chunk_shift = req->chunk_shift ? req->chunk_shift :
						      HSNAP_DEFAULT_CHUNK_SHIFT;
	bool reset = req->flags & HSNAP_CREATE_RESET_CBT;
	struct hsnap_snapshot *s = NULL;
	struct block_device *bdev;
	struct hsnap_tracker *t;
	bool new_tracker, frozen = false;
	int ret;

	if (chunk_shift < HSNAP_MIN_CHUNK_SHIFT ||
	    chunk_shift > HSNAP_MAX_CHUNK_SHIFT || chunk_shift < PAGE_SHIFT)
		return -EINVAL;

	bdev = blkdev_get_by_path(req->origin, FMODE_READ, NULL);
	if (IS_ERR(bdev))
		return PTR_ERR(bdev);

	t = hsnap_tracker_find(bdev);
	new_tracker = !t;
	if (t) {
		blkdev_put(bdev, FMODE_READ);
		if (hsnap_tracker_snap(t))
			return -EBUSY;
		if (!req->store[0])
			return -EEXIST;
	} else {
		ret = hsnap_check_origin(bdev);
		if (!ret && bdev_logical_block_size(bdev) > (1U << chunk_shift))
			ret = -EINVAL;
		if (ret) {
			blkdev_put(bdev, FMODE_READ);
			return ret;
		}
		t = hsnap_tracker_alloc(bdev, req->origin, chunk_shift);
		if (IS_ERR(t)) {
			blkdev_put(bdev, FMODE_READ);
			return PTR_ERR(t);
		}
	}

	if (req->store[0]) {
		s = hsnap_snapshot_alloc(t, req->store);
		if (IS_ERR(s)) {
			ret = PTR_ERR(s);
			s = NULL;
			goto fail;
		}
		ret = hsnap_check_store(t, s);
		if (!ret)
			ret = hsnap_snapdev_create(s);
		if (ret)
			goto fail;
	}

	if (new_tracker) {
		ret = hsnap_hook_get();
		if (ret)
			goto fail;
	}

	/* The filesystem is clean and quiet while the snapshot is taken. */
	if (s && !(req->flags & HSNAP_CREATE_NO_FREEZE)) {
		ret = freeze_bdev(t->bdev);
		if (ret) {
			pr_err("cannot freeze %s: %d\n", req->origin, ret);
			if (new_tracker)
				hsnap_hook_put();
			goto fail;
		}
		frozen = true;
	}

	if (new_tracker) {
		rcu_assign_pointer(hsnap_trackers[t->id], t);
		atomic_inc(&hsnap_nr_trackers);
	}
	if (s) {
		s->cbt_generation = t->cbt_generation;
		if (reset) {
			/* s->cbt is zeroed: it becomes the new live map. */
			unsigned long *old = hsnap_tracker_cbt(t);

			rcu_assign_pointer(t->cbt, s->cbt);
			s->cbt = old;
			t->cbt_generation++;
		}
		rcu_assign_pointer(t->snap, s);
	}
	/* Writes that saw the old state are submitted, then completed. */
	synchronize_srcu(&hsnap_srcu);
	hsnap_drain_origin(t);
	if (s) {
		if (!reset)
			bitmap_copy(s->cbt, hsnap_tracker_cbt(t), t->nr_chunks);
		complete_all(&s->installed);
	}
	if (frozen)
		thaw_bdev(t->bdev);

	if (s) {
		ret = hsnap_snapdev_add(s);
		if (ret) {
			hsnap_snapshot_destroy(t, true);
			if (new_tracker)
				goto untrack;
			return ret;
		}
		pr_info("snapshot %u of %s taken, COW store %s\n", t->id,
			req->origin, req->store);
	} else {
		pr_info("tracking %s as %u\n", req->origin, t->id);
	}
	req->id = t->id;
	return 0;

untrack:
	rcu_assign_pointer(hsnap_trackers[t->id], NULL);
	atomic_dec(&hsnap_nr_trackers);
	synchronize_srcu(&hsnap_srcu);
	hsnap_hook_put();
	hsnap_tracker_free(t);
	return ret;

fail:
	if (s) {
		hsnap_snapdev_remove(s);
		hsnap_snapshot_free(s);
	}
	if (new_tracker)
		hsnap_tracker_free(t);
	return ret;
}

int hsnap_tracker_create(struct hsnap_create *req)
{
	int ret;

	mutex_lock(&hsnap_ctl_mutex);
	ret = hsnap_tracker_create_locked(req);
	mutex_unlock(&hsnap_ctl_mutex);
	return ret;
}

static int hsnap_tracker_destroy_locked(u32 id, u32 flags)
{
	struct hsnap_tracker *t = hsnap_tracker_by_id(id);
	int ret;

	if (!t)
		return -ENOENT;
	if (hsnap_tracker_snap(t)) {
		ret = hsnap_snapshot_destroy(t, flags & HSNAP_DESTROY_FORCE);
		if (ret)
			return ret;
	} else if (flags & HSNAP_DESTROY_KEEP_TRACKING) {
		return -ENOENT;
	}
	if (flags & HSNAP_DESTROY_KEEP_TRACKING)
		return 0;

	rcu_assign_pointer(hsnap_trackers[id], NULL);
	atomic_dec(&hsnap_nr_trackers);
	synchronize_srcu(&hsnap_srcu);
	hsnap_hook_put();
	pr_info("stopped tracking %s (%u)\n", t->origin_path, id);
	hsnap_tracker_free(t);
	return 0;
}

int hsnap_tracker_destroy(u32 id, u32 flags)
{
	int ret;

	mutex_lock(&hsnap_ctl_mutex);
	ret = hsnap_tracker_destroy_locked(id, flags);
	mutex_unlock(&hsnap_ctl_mutex);
	return ret;
}

void hsnap_tracker_destroy_all(void)
{
	unsigned int id;

	mutex_lock(&hsnap_ctl_mutex);
	for (id = 0; id < HSNAP_MAX_TRACKERS; id++)
		if (hsnap_tracker_by_id(id))
			hsnap_tracker_destroy_locked(id, HSNAP_DESTROY_FORCE);
	mutex_unlock(&hsnap_ctl_mutex);
}

int hsnap_tracker_info(struct hsnap_info *info)
{
	struct hsnap_tracker *t;
	struct hsnap_snapshot *s;
	u32 id = info->id;

	mutex_lock(&hsnap_ctl_mutex);
	t = hsnap_tracker_by_id(id);
	if (!t) {
		mutex_unlock(&hsnap_ctl_mutex);
		return -ENOENT;
	}
	memset(info, 0, sizeof(*info));
	info->id = id;
	info->origin_dev = new_encode_dev(t->bdev->bd_dev);
	info->chunk_shift = t->chunk_shift;
	info->origin_sectors = t->nr_sects;
	info->nr_chunks = t->nr_chunks;
	info->cbt_dirty_chunks = hsnap_cbt_weight(hsnap_tracker_cbt(t), t->nr_chunks);
	info->cbt_generation = t->cbt_generation;
	strscpy(info->origin, t->origin_path, sizeof(info->origin));

	s = hsnap_tracker_snap(t);
	if (s) {
		info->state |= HSNAP_STATE_SNAPSHOT;
		info->snap_dev = new_encode_dev(disk_devt(s->disk));
		info->store_dev = new_encode_dev(s->store->bd_dev);
		info->store_chunks = s->store_chunks;
		info->store_used_chunks = min_t(u64, atomic64_read(&s->next_slot),
						s->store_chunks);
		info->snap_cbt_chunks = hsnap_cbt_weight(s->cbt, t->nr_chunks);
		strscpy(info->store, s->store_path, sizeof(info->store));
		spin_lock(&s->reason_lock);
		info->error = s->error;
		strscpy(info->reason, s->reason, sizeof(info->reason));
		spin_unlock(&s->reason_lock);
		if (info->error)
			info->state |= HSNAP_STATE_INVALID;
	}
	mutex_unlock(&hsnap_ctl_mutex);
	return 0;
}

int hsnap_tracker_cbt_read(struct hsnap_cbt_read *req)
{
	struct hsnap_tracker *t;
	struct hsnap_snapshot *s;
	int ret;

	mutex_lock(&hsnap_ctl_mutex);
	t = hsnap_tracker_by_id(req->id);
	if (!t) {
		ret = -ENOENT;
	} else if (req->source == HSNAP_CBT_LIVE) {
		req->generation = t->cbt_generation;
		ret = hsnap_cbt_copy_to_user(hsnap_tracker_cbt(t), t->nr_chunks, req);
	} else if (req->source == HSNAP_CBT_SNAPSHOT) {
		s = hsnap_tracker_snap(t);
		if (s) {
			req->generation = s->cbt_generation;
			ret = hsnap_cbt_copy_to_user(s->cbt, t->nr_chunks, req);
		} else {
			ret = -ENOENT;
		}
	} else {
		ret = -EINVAL;
	}
	mutex_unlock(&hsnap_ctl_mutex);
	return ret;
}

int hsnap_tracker_cbt_reset(u32 id)
{
	struct hsnap_tracker *t;
	unsigned long *fresh, *old;
	int ret = 0;

	mutex_lock(&hsnap_ctl_mutex);
	t = hsnap_tracker_by_id(id);
	if (!t) {
		ret = -ENOENT;
		goto out;
	}
	fresh = hsnap_cbt_alloc(t->nr_chunks);
	if (!fresh) {
		ret = -ENOMEM;
		goto out;
	}
	old = hsnap_tracker_cbt(t);
	rcu_assign_pointer(t->cbt, fresh);
	t->cbt_generation++;
	synchronize_srcu(&hsnap_srcu);
	hsnap_drain_origin(t);
	hsnap_cbt_free(old);
out:
	mutex_unlock(&hsnap_ctl_mutex);
	return ret;
}
