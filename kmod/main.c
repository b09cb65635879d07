// SPDX-License-Identifier: GPL-2.0
/*
 * hydrate-snap module entry: shared state, load and unload.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

#include "hsnap.h"

/* Serialises every state change: create, destroy, CBT reset, hook refcount. */
DEFINE_MUTEX(hsnap_ctl_mutex);
DEFINE_SRCU(hsnap_srcu);
struct hsnap_tracker __rcu *hsnap_trackers[HSNAP_MAX_TRACKERS];
atomic_t hsnap_nr_trackers = ATOMIC_INIT(0);
struct bio_set hsnap_bioset;
int hsnap_major;

unsigned int hsnap_cow_timeout_ms = 30000;
module_param_named(cow_timeout_ms, hsnap_cow_timeout_ms, uint, 0644);
MODULE_PARM_DESC(cow_timeout_ms,
		 "Invalidate a snapshot whose COW I/O takes longer than this (ms), so origin writes go on");

static int __init hsnap_init(void)
{
	int ret;

	/* Enough bios for every copier's reads and writes to make progress. */
	ret = bioset_init(&hsnap_bioset, 2 * HSNAP_COPIERS * HSNAP_COW_PIECES, 0,
			  BIOSET_NEED_BVECS);
	if (ret)
		return ret;

	hsnap_major = register_blkdev(0, HYDRATE_SNAP_DISK_PREFIX);
	if (hsnap_major < 0) {
		ret = hsnap_major;
		goto out_bioset;
	}

	ret = hsnap_ctl_register();
	if (ret)
		goto out_blkdev;

	pr_info("loaded, api %d, version %d.%d.%d\n", HYDRATE_SNAP_API_VERSION,
		HSNAP_VERSION_MAJOR, HSNAP_VERSION_MINOR, HSNAP_VERSION_PATCH);
	return 0;

out_blkdev:
	unregister_blkdev(hsnap_major, HYDRATE_SNAP_DISK_PREFIX);
out_bioset:
	bioset_exit(&hsnap_bioset);
	return ret;
}

static void __exit hsnap_exit(void)
{
	/* No new ioctl can start: the misc device holds a module reference. */
	hsnap_ctl_unregister();
	hsnap_tracker_destroy_all();
	hsnap_hook_exit();
	unregister_blkdev(hsnap_major, HYDRATE_SNAP_DISK_PREFIX);
	bioset_exit(&hsnap_bioset);
	pr_info("unloaded\n");
}

module_init(hsnap_init);
module_exit(hsnap_exit);

MODULE_DESCRIPTION("hydrate-snap: in-place block device snapshots and changed-block tracking");
MODULE_AUTHOR("hydrate project");
MODULE_LICENSE("GPL");
MODULE_VERSION(__stringify(HSNAP_VERSION_MAJOR) "." __stringify(HSNAP_VERSION_MINOR)
	       "." __stringify(HSNAP_VERSION_PATCH));
