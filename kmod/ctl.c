// SPDX-License-Identifier: GPL-2.0
/*
 * The control device /dev/hydrate-snap-ctl and its ioctls (see
 * include/uapi/linux/hydrate_snap.h).
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "hsnap.h"

static long hsnap_ioctl_create(void __user *arg)
{
	struct hsnap_create req;
	int ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	req.origin[sizeof(req.origin) - 1] = '\0';
	req.store[sizeof(req.store) - 1] = '\0';
	if (!req.origin[0] || req.flags & ~(HSNAP_CREATE_RESET_CBT |
					    HSNAP_CREATE_NO_FREEZE))
		return -EINVAL;
	ret = hsnap_tracker_create(&req);
	if (ret)
		return ret;
	return copy_to_user(arg, &req, sizeof(req)) ? -EFAULT : 0;
}

static long hsnap_ioctl_list(void __user *arg)
{
	struct hsnap_list list = {};
	unsigned int id;

	mutex_lock(&hsnap_ctl_mutex);
	for (id = 0; id < HSNAP_MAX_TRACKERS; id++)
		if (rcu_access_pointer(hsnap_trackers[id]))
			list.ids[list.count++] = id;
	mutex_unlock(&hsnap_ctl_mutex);
	return copy_to_user(arg, &list, sizeof(list)) ? -EFAULT : 0;
}

static long hsnap_ctl_ioctl(struct file *file, unsigned int cmd,
			    unsigned long uarg)
{
	void __user *arg = (void __user *)uarg;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	switch (cmd) {
	case HSNAP_IOC_VERSION: {
		struct hsnap_version v = {
			.api_version = HYDRATE_SNAP_API_VERSION,
			.major = HSNAP_VERSION_MAJOR,
			.minor = HSNAP_VERSION_MINOR,
			.patch = HSNAP_VERSION_PATCH,
		};

		return copy_to_user(arg, &v, sizeof(v)) ? -EFAULT : 0;
	}
	case HSNAP_IOC_CREATE:
		return hsnap_ioctl_create(arg);
	case HSNAP_IOC_DESTROY: {
		struct hsnap_destroy req;

		if (copy_from_user(&req, arg, sizeof(req)))
			return -EFAULT;
		if (req.flags & ~(HSNAP_DESTROY_KEEP_TRACKING | HSNAP_DESTROY_FORCE))
			return -EINVAL;
		return hsnap_tracker_destroy(req.id, req.flags);
	}
	case HSNAP_IOC_LIST:
		return hsnap_ioctl_list(arg);
	case HSNAP_IOC_INFO: {
		struct hsnap_info info;
		int ret;

		if (copy_from_user(&info.id, arg, sizeof(info.id)))
			return -EFAULT;
		ret = hsnap_tracker_info(&info);
		if (ret)
			return ret;
		return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
	}
	case HSNAP_IOC_CBT_READ: {
		struct hsnap_cbt_read req;
		int ret;

		if (copy_from_user(&req, arg, sizeof(req)))
			return -EFAULT;
		ret = hsnap_tracker_cbt_read(&req);
		if (ret)
			return ret;
		return copy_to_user(arg, &req, sizeof(req)) ? -EFAULT : 0;
	}
	case HSNAP_IOC_CBT_RESET: {
		struct hsnap_cbt_reset req;

		if (copy_from_user(&req, arg, sizeof(req)))
			return -EFAULT;
		return hsnap_tracker_cbt_reset(req.id);
	}
	default:
		return -ENOTTY;
	}
}

static const struct file_operations hsnap_ctl_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = hsnap_ctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice hsnap_ctl_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = HYDRATE_SNAP_CTL_NAME,
	.fops = &hsnap_ctl_fops,
	.mode = 0600,
};

int hsnap_ctl_register(void)
{
	return misc_register(&hsnap_ctl_dev);
}

void hsnap_ctl_unregister(void)
{
	misc_deregister(&hsnap_ctl_dev);
}
