// SPDX-License-Identifier: GPL-2.0
/*
 * The module's own I/O: groups of bios submitted together and waited for
 * together. Only called from workers and ioctls, never from a submitter's
 * context, where bios would only be queued on current->bio_list.
 */
#include <linux/blk-mq.h>

#include "hsnap.h"

void hsnap_io_batch_init(struct hsnap_io_batch *batch)
{
	hsnap_io_batch_init_tracked(batch, NULL, NULL);
}

void hsnap_io_batch_init_tracked(struct hsnap_io_batch *batch, atomic_t *inflight,
				 wait_queue_head_t *idle)
{
	/* One reference for the waiter, so completion cannot race the setup. */
	atomic_set(&batch->pending, 1);
	init_completion(&batch->done);
	batch->status = BLK_STS_OK;
	batch->inflight = inflight;
	batch->idle = idle;
}

static void hsnap_io_batch_end_io(struct bio *bio)
{
	struct hsnap_io_batch *batch = bio->bi_private;
	atomic_t *inflight = batch->inflight;
	wait_queue_head_t *idle = batch->idle;

	if (bio->bi_status)
		WRITE_ONCE(batch->status, bio->bi_status);
	bio_put(bio);
	if (atomic_dec_and_test(&batch->pending))
		complete(&batch->done);
	if (inflight && atomic_dec_and_test(inflight))
		wake_up(idle);
}

void hsnap_io_batch_submit(struct hsnap_io_batch *batch, struct bio *bio)
{
	bio->bi_private = batch;
	bio->bi_end_io = hsnap_io_batch_end_io;
	atomic_inc(&batch->pending);
	if (batch->inflight)
		atomic_inc(batch->inflight);
	hsnap_submit_own_bio(bio);
}

int hsnap_io_batch_wait(struct hsnap_io_batch *batch)
{
	if (!atomic_dec_and_test(&batch->pending))
		wait_for_completion_io(&batch->done);
	return blk_status_to_errno(READ_ONCE(batch->status));
}

/*
 * As hsnap_io_batch_wait(), but gives up after `timeout` jiffies with
 * -ETIMEDOUT; the batch must then stay allocated until its bios complete
 * (track them with hsnap_io_batch_init_tracked()).
 */
int hsnap_io_batch_wait_timeout(struct hsnap_io_batch *batch,
				unsigned long timeout)
{
	if (!atomic_dec_and_test(&batch->pending) &&
	    !wait_for_completion_io_timeout(&batch->done, timeout))
		return -ETIMEDOUT;
	return blk_status_to_errno(READ_ONCE(batch->status));
}

/*
 * Waits until every bio already submitted to the origin's queue has
 * completed. Together with an SRCU grace period this makes a state change
 * (new snapshot, CBT reset) apply to every write that completes after it.
 */
void hsnap_drain_origin(struct hsnap_tracker *t)
{
	struct request_queue *q = bdev_get_queue(t->bdev);

	blk_mq_freeze_queue(q);
	blk_mq_unfreeze_queue(q);
}
