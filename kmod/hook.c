// SPDX-License-Identifier: GPL-2.0
/*
 * Interception of every bio at submit_bio_noacct() with an ftrace IPMODIFY
 * hook: the kernel is never patched, only the entry of that function is
 * redirected to hsnap_submit_bio_hooked() while some device is tracked.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ftrace.h>
#include <linux/module.h>
#include <linux/sched.h>

#include "hsnap.h"

static const char hsnap_hooked_symbol[] = "submit_bio_noacct";
static unsigned int hsnap_hook_users;
static bool hsnap_filter_set;

static void notrace hsnap_submit_bio_hooked(struct bio *bio)
{
	int idx = srcu_read_lock(&hsnap_srcu);

	/*
	 * A set bio_list means a driver's ->submit_bio is running on this
	 * task (a split remainder or a stacked driver's bio): the bio that
	 * entered at the top was already seen.
	 */
	if (current->bio_list || !hsnap_bio_changes_data(bio) ||
	    !hsnap_intercept_write(bio))
		submit_bio_noacct(bio);
	/* The unlock also keeps the call above from being a tail jump. */
	srcu_read_unlock(&hsnap_srcu, idx);
}

/*
 * Calls made from this module (pass-through, COW and snapshot I/O) must not
 * be redirected again: their return address lies inside the module. That
 * only holds if the call is a real call, not a tail jump, hence the barrier.
 */
void hsnap_submit_own_bio(struct bio *bio)
{
	submit_bio_noacct(bio);
	barrier();
}

static void notrace hsnap_ftrace_handler(unsigned long ip,
					 unsigned long parent_ip,
					 struct ftrace_ops *ops,
					 struct ftrace_regs *fregs)
{
	if (!within_module(parent_ip, THIS_MODULE))
		ftrace_instruction_pointer_set(fregs,
					       (unsigned long)hsnap_submit_bio_hooked);
}

static struct ftrace_ops hsnap_ftrace_ops = {
	.func = hsnap_ftrace_handler,
	.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY,
};

/* Called with hsnap_ctl_mutex held: install the hook for the first tracker. */
int hsnap_hook_get(void)
{
	int ret;

	lockdep_assert_held(&hsnap_ctl_mutex);
	if (hsnap_hook_users++)
		return 0;

	if (!hsnap_filter_set) {
		ret = ftrace_set_filter(&hsnap_ftrace_ops,
					(unsigned char *)hsnap_hooked_symbol,
					strlen(hsnap_hooked_symbol), 0);
		if (ret) {
			pr_err("cannot trace %s: %d\n", hsnap_hooked_symbol, ret);
			goto fail;
		}
		hsnap_filter_set = true;
	}
	ret = register_ftrace_function(&hsnap_ftrace_ops);
	if (ret) {
		/* EBUSY: another IPMODIFY user (livepatch, bdevfilter) owns it. */
		pr_err("cannot hook %s: %d\n", hsnap_hooked_symbol, ret);
		goto fail;
	}
	pr_info("hooked %s\n", hsnap_hooked_symbol);
	return 0;

fail:
	hsnap_hook_users--;
	return ret;
}

/*
 * Called with hsnap_ctl_mutex held when the last tracker is gone. Returns
 * only when no task is left inside hsnap_submit_bio_hooked(): unregistering
 * waits (RCU-tasks) for tasks still in the trampoline, and the SRCU grace
 * period for those that already entered the wrapper.
 */
void hsnap_hook_put(void)
{
	lockdep_assert_held(&hsnap_ctl_mutex);
	if (WARN_ON(!hsnap_hook_users) || --hsnap_hook_users)
		return;

	unregister_ftrace_function(&hsnap_ftrace_ops);
	synchronize_srcu(&hsnap_srcu);
	pr_info("unhooked %s\n", hsnap_hooked_symbol);
}

/*
 * The filter lives as long as the module: ftrace_free_filter() leaves the
 * ops' hash pointers dangling, so it must not be followed by another
 * ftrace_set_filter() on the same ops.
 */
void hsnap_hook_exit(void)
{
	if (hsnap_filter_set)
		ftrace_free_filter(&hsnap_ftrace_ops);
	hsnap_filter_set = false;
}
