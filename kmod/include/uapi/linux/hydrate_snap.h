/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * hydrate-snap user-space API: ioctls on /dev/hydrate-snap-ctl.
 *
 * Shared verbatim by the kernel module and the `hydrate snap` CLI. Every
 * structure has a fixed size and layout; the ioctl numbers encode the size,
 * so a layout change gets new numbers and HYDRATE_SNAP_API_VERSION is bumped.
 */
#ifndef _UAPI_LINUX_HYDRATE_SNAP_H
#define _UAPI_LINUX_HYDRATE_SNAP_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <linux/ioctl.h>
#include <linux/types.h>
#endif

#define HYDRATE_SNAP_API_VERSION 1

#define HYDRATE_SNAP_CTL_NAME "hydrate-snap-ctl"
#define HYDRATE_SNAP_DISK_PREFIX "hydrate-snap"

/* Limits. */
#define HSNAP_PATH_MAX 256
#define HSNAP_MAX_TRACKERS 32
#define HSNAP_MIN_CHUNK_SHIFT 12 /* 4 KiB */
#define HSNAP_MAX_CHUNK_SHIFT 18 /* 256 KiB: one COW group buffer */
#define HSNAP_DEFAULT_CHUNK_SHIFT 12
#define HSNAP_REASON_MAX 64

struct hsnap_version {
	__u32 api_version; /* out: HYDRATE_SNAP_API_VERSION of the module */
	__u32 major;	   /* out: module version */
	__u32 minor;
	__u32 patch;
};

/* hsnap_create.flags */
#define HSNAP_CREATE_RESET_CBT (1U << 0) /* snapshot keeps the old CBT, live CBT restarts */
#define HSNAP_CREATE_NO_FREEZE (1U << 1) /* do not freeze the origin's filesystem */

/*
 * Start tracking `origin` (a block device path) and, unless `store` is empty,
 * take a snapshot whose copy-on-write data goes to the block device `store`.
 * On a device that is already tracked without a snapshot, takes a new
 * snapshot on the existing tracker (its CBT keeps running).
 */
struct hsnap_create {
	char origin[HSNAP_PATH_MAX];
	char store[HSNAP_PATH_MAX];
	__u32 chunk_shift; /* 0 = default (4 KiB); 12..18, ignored for a tracked device */
	__u32 flags;
	__u32 id;	   /* out: tracker id N; the snapshot is /dev/hydrate-snapN */
	__u32 reserved;
};

/* hsnap_destroy.flags */
#define HSNAP_DESTROY_KEEP_TRACKING (1U << 0) /* drop only the snapshot; CBT keeps running */
#define HSNAP_DESTROY_FORCE (1U << 1)	      /* even if the snapshot device is open */

struct hsnap_destroy {
	__u32 id;
	__u32 flags;
};

/* hsnap_info.state bits */
#define HSNAP_STATE_SNAPSHOT (1U << 0) /* a snapshot device exists */
#define HSNAP_STATE_INVALID (1U << 1)  /* the snapshot failed; its reads return EIO */

struct hsnap_info {
	__u32 id;	/* in */
	__u32 state;	/* out: HSNAP_STATE_* */
	__u32 origin_dev; /* out: dev_t of the origin, new_encode_dev() form */
	__u32 snap_dev;	  /* out: dev_t of /dev/hydrate-snapN, 0 without a snapshot */
	__u32 store_dev;  /* out: dev_t of the COW store, 0 without a snapshot */
	__u32 chunk_shift;
	__s32 error;	  /* out: errno that invalidated the snapshot, 0 if valid */
	__u32 reserved;
	__u64 origin_sectors;	/* out: size of the origin in 512-byte sectors */
	__u64 nr_chunks;
	__u64 cbt_dirty_chunks; /* out: chunks set in the live CBT */
	__u64 snap_cbt_chunks;	/* out: chunks set in the snapshot's frozen CBT */
	__u64 store_chunks;	/* out: capacity of the COW store in chunks */
	__u64 store_used_chunks;
	__u64 cbt_generation; /* out: bumped at every CBT reset */
	char origin[HSNAP_PATH_MAX];
	char store[HSNAP_PATH_MAX];
	char reason[HSNAP_REASON_MAX]; /* out: why the snapshot is invalid */
};

struct hsnap_list {
	__u32 count; /* out: number of trackers */
	__u32 reserved;
	__u32 ids[HSNAP_MAX_TRACKERS];
};

/* hsnap_cbt_read.source */
#define HSNAP_CBT_LIVE 0     /* chunks written since tracking started or the last reset */
#define HSNAP_CBT_SNAPSHOT 1 /* the live CBT as it was when the snapshot was taken */

/*
 * Copies the bits of chunks [first_chunk, first_chunk + nr_chunks) to `buffer`:
 * chunk first_chunk + i is bit (i % 8) of byte (i / 8). first_chunk must be a
 * multiple of 8. nr_chunks is clipped to the end of the device; the clipped
 * count is written back.
 */
struct hsnap_cbt_read {
	__u32 id;
	__u32 source;
	__u64 first_chunk;
	__u64 nr_chunks;  /* in: wanted; out: copied */
	__u64 buffer;	  /* user pointer to (nr_chunks + 7) / 8 bytes */
	__u64 generation; /* out: CBT generation the bits belong to */
};

struct hsnap_cbt_reset {
	__u32 id;
	__u32 reserved;
};

#define HSNAP_IOC_MAGIC 0xB5

#define HSNAP_IOC_VERSION _IOR(HSNAP_IOC_MAGIC, 0, struct hsnap_version)
#define HSNAP_IOC_CREATE _IOWR(HSNAP_IOC_MAGIC, 1, struct hsnap_create)
#define HSNAP_IOC_DESTROY _IOW(HSNAP_IOC_MAGIC, 2, struct hsnap_destroy)
#define HSNAP_IOC_LIST _IOR(HSNAP_IOC_MAGIC, 3, struct hsnap_list)
#define HSNAP_IOC_INFO _IOWR(HSNAP_IOC_MAGIC, 4, struct hsnap_info)
#define HSNAP_IOC_CBT_READ _IOWR(HSNAP_IOC_MAGIC, 5, struct hsnap_cbt_read)
#define HSNAP_IOC_CBT_RESET _IOW(HSNAP_IOC_MAGIC, 6, struct hsnap_cbt_reset)

#endif /* _UAPI_LINUX_HYDRATE_SNAP_H */
