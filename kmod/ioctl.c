// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The control node /dev/gmem_pfn (0600: only the user gmemd runs as opens it) and its ioctls.
 * Every struct is read with copy_struct_from_user (a size first, >= the version-1 size; unknown
 * trailing bytes must be zero), every field is checked, and output goes back for at most the
 * caller's size. Nothing here trusts the caller beyond the file permission.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "gmem_pfn.h"

/* Reads a size-prefixed struct of at least `ver1` bytes into `k` (ksize bytes). */
static int gmem_copy_in(void *k, size_t ksize, size_t ver1, void __user *uarg, u32 *usize)
{
	if (get_user(*usize, (u32 __user *)uarg))
		return -EFAULT;
	if (*usize < ver1 || *usize > PAGE_SIZE)
		return -EINVAL;
	return copy_struct_from_user(k, ksize, uarg, *usize);
}

static int gmem_copy_out(void __user *uarg, const void *k, size_t ksize, u32 usize)
{
	return copy_to_user(uarg, k, min_t(size_t, ksize, usize)) ? -EFAULT : 0;
}

/* Writes n elements of ksize bytes to a user array of entry_size-byte elements (zero-extended). */
int gmem_copy_array_out(u64 uptr, u32 entry_size, u32 ver1, const void *src, size_t ksize, u32 n)
{
	char __user *dst = u64_to_user_ptr(uptr);
	u32 i;

	if (entry_size < ver1 || entry_size > PAGE_SIZE)
		return -EINVAL;
	for (i = 0; i < n; i++, dst += entry_size) {
		size_t c = min_t(size_t, ksize, entry_size);

		if (copy_to_user(dst, (const char *)src + (size_t)i * ksize, c))
			return -EFAULT;
		if (entry_size > c && clear_user(dst + c, entry_size - c))
			return -EFAULT;
	}
	return 0;
}

/* Checks an array description before anything is done with it. */
static int gmem_check_array(u64 uptr, u32 entry_size, u32 ver1, u32 capacity)
{
	if (capacity > GMEM_PFN_MAX_ENTRIES)
		return -ERANGE;
	if (!uptr)
		return capacity ? -EINVAL : 0;
	if (entry_size < ver1 || entry_size > PAGE_SIZE)
		return -EINVAL;
	if (!access_ok(u64_to_user_ptr(uptr), (u64)entry_size * capacity))
		return -EFAULT;
	return 0;
}

static long gmem_ioc_caps(void __user *uarg)
{
	struct gmem_pfn_caps c = {};
	u32 usize;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_CAPS_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	if (c.reserved)
		return -EINVAL;
	c.size = sizeof(c);
#ifdef GMEM_PFN_TEST_ABI
	c.abi_version = GMEM_PFN_TEST_ABI;
#else
	c.abi_version = GMEM_PFN_ABI_VERSION;
#endif
	c.features = GMEM_PFN_FEAT_GENL | GMEM_PFN_FEAT_PREFAULT | GMEM_PFN_FEAT_ZERO_ON_CONVERT |
		     GMEM_PFN_FEAT_LIST_GUESTS;
	if (GMEM_PFN_HAVE_PMD)
		c.features |= GMEM_PFN_FEAT_PMD_MAPPINGS;
	if (GMEM_PFN_TEST_BUILD)
		c.features |= GMEM_PFN_FEAT_TEST_BUILD;
	c.granule_shifts = (1ULL << GMEM_PFN_GRANULE_4K_SHIFT) | (1ULL << GMEM_PFN_GRANULE_2M_SHIFT);
	c.max_guests = GMEM_PFN_MAX_GUESTS;
	c.max_holders = GMEM_PFN_MAX_HOLDERS;
	mutex_lock(&gmem_lock);
	c.nr_ranges = gmem_pool_nr_ranges();
	mutex_unlock(&gmem_lock);
	return gmem_copy_out(uarg, &c, sizeof(c), usize);
}

static long gmem_ioc_create(void __user *uarg)
{
	struct gmem_pfn_create_guest c;
	u32 usize;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_CREATE_GUEST_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	r = gmem_guest_create(&c, &c.guest_id);
	if (r)
		return r;
	r = gmem_copy_out(uarg, &c, sizeof(c), usize);
	if (r)
		gmem_guest_destroy(c.guest_id); /* nobody learnt the id: nobody could destroy it */
	return r;
}

static long gmem_ioc_destroy(void __user *uarg)
{
	struct gmem_pfn_guest_ref c;
	u32 usize;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_GUEST_REF_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	if (c.flags)
		return -EINVAL;
	return gmem_guest_destroy(c.guest_id);
}

/* Runs a set-range (to_state valid) or a plain audit (to_state < 0) and copies the entries out. */
static int gmem_audit_common(u64 guest_id, u64 offset, u64 length, int to_state, bool zero,
			     struct gmem_pfn_audit_buf *buf)
{
	struct gmem_pfn_audit_entry *ents = NULL;
	struct gmem_guest *g;
	u32 cap = buf->entries ? buf->capacity : 0;
	int r;

	r = gmem_check_array(buf->entries, buf->entry_size, GMEM_PFN_AUDIT_ENTRY_SIZE_VER1, buf->capacity);
	if (r)
		return r;
	g = gmem_guest_get(guest_id);
	if (!g)
		return -ENOENT;
	if (cap) {
		ents = kvcalloc(cap, sizeof(*ents), GFP_KERNEL);
		if (!ents) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (to_state >= 0)
		r = gmem_guest_set_range(g, offset, length, to_state, zero, ents, cap, &buf->count,
					 &buf->nr_holders);
	else
		r = gmem_guest_audit(g, offset, length, ents, cap, &buf->count, &buf->nr_holders);
	if (!r && cap)
		r = gmem_copy_array_out(buf->entries, buf->entry_size, GMEM_PFN_AUDIT_ENTRY_SIZE_VER1, ents,
					sizeof(*ents), min(cap, buf->count));
out:
	kvfree(ents);
	gmem_guest_put(g);
	return r;
}

static long gmem_ioc_set_range(void __user *uarg)
{
	struct gmem_pfn_set_range c;
	u32 usize;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_SET_RANGE_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	if ((c.flags & ~GMEM_PFN_SET_RANGE_ZERO) || c.reserved ||
	    (c.state != GMEM_PFN_STATE_SHARED && c.state != GMEM_PFN_STATE_PRIVATE))
		return -EINVAL;
	r = gmem_audit_common(c.guest_id, c.offset, c.length, c.state, c.flags & GMEM_PFN_SET_RANGE_ZERO,
			      &c.audit);
	if (r)
		return r;
	return gmem_copy_out(uarg, &c, sizeof(c), usize);
}

static long gmem_ioc_audit(void __user *uarg)
{
	struct gmem_pfn_audit c;
	u32 usize;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_AUDIT_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	if (c.flags)
		return -EINVAL;
	r = gmem_audit_common(c.guest_id, c.offset, c.length, -1, false, &c.audit);
	if (r)
		return r;
	return gmem_copy_out(uarg, &c, sizeof(c), usize);
}

static long gmem_ioc_new_holder(void __user *uarg)
{
	struct gmem_pfn_new_holder c;
	struct gmem_guest *g;
	u32 usize;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_NEW_HOLDER_SIZE_VER1, uarg, &usize);
	int fd;

	if (r)
		return r;
	g = gmem_guest_get(c.guest_id);
	if (!g)
		return -ENOENT;
	/*
	 * The fd is installed before the reply is written: if that copy faults, the caller still has
	 * the fd (as with any fd-returning call that fails late) and closing it drops the holder.
	 */
	fd = gmem_holder_new(g, c.flags, c.tag, c.owner_pid, &c.holder_id);
	gmem_guest_put(g);
	if (fd < 0)
		return fd;
	c.fd = fd;
	return gmem_copy_out(uarg, &c, sizeof(c), usize);
}

static long gmem_ioc_revoke_holder(void __user *uarg)
{
	struct gmem_pfn_holder_ref c;
	struct gmem_guest *g;
	u32 usize;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_HOLDER_REF_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	if (c.flags)
		return -EINVAL;
	g = gmem_guest_get(c.guest_id);
	if (!g)
		return -ENOENT;
	r = gmem_holder_revoke(g, c.holder_id);
	gmem_guest_put(g);
	return r;
}

static long gmem_ioc_query_pool(void __user *uarg)
{
	struct gmem_pfn_pool_range rg[GMEM_PFN_MAX_RANGES];
	struct gmem_pfn_query_pool c;
	u32 usize, i, n;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_QUERY_POOL_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	if (c.flags)
		return -EINVAL;
	r = gmem_check_array(c.ranges, c.entry_size, GMEM_PFN_POOL_RANGE_SIZE_VER1, c.capacity);
	if (r)
		return r;
	mutex_lock(&gmem_lock);
	gmem_pool_stats(&c.total_bytes, &c.free_bytes);
	c.nr_guests = gmem_nr_guests;
	c.count = gmem_pool_nr_ranges();
	for (i = 0; i < c.count; i++)
		gmem_pool_range_info(i, &rg[i]);
	mutex_unlock(&gmem_lock);
	n = c.ranges ? min(c.capacity, c.count) : 0;
	if (n) {
		r = gmem_copy_array_out(c.ranges, c.entry_size, GMEM_PFN_POOL_RANGE_SIZE_VER1, rg,
					sizeof(rg[0]), n);
		if (r)
			return r;
	}
	return gmem_copy_out(uarg, &c, sizeof(c), usize);
}

static long gmem_ioc_query_guest(void __user *uarg)
{
	struct gmem_pfn_extent *ext = NULL;
	struct gmem_pfn_query_guest c;
	struct gmem_guest *g;
	u32 usize, i, n = 0;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_QUERY_GUEST_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	if (c.flags || c.reserved)
		return -EINVAL;
	r = gmem_check_array(c.extents, c.entry_size, GMEM_PFN_EXTENT_SIZE_VER1, c.capacity);
	if (r)
		return r;
	g = gmem_guest_get(c.guest_id);
	if (!g)
		return -ENOENT;
	c.bytes = g->bytes;
	c.cookie = g->cookie;
	c.granule_shift = g->granule_shift;
	c.node = g->nid;
	c.private_bytes = gmem_guest_private_bytes(g);
	mutex_lock(&g->lock);
	c.nr_holders = g->nr_holders;
	mutex_unlock(&g->lock);
	c.nr_mappings = gmem_guest_nr_mappings(g, NULL);
	c.nr_faults = atomic64_read(&g->nr_faults);
	c.nr_pte_maps = atomic64_read(&g->nr_pte_maps);
	c.nr_pmd_maps = atomic64_read(&g->nr_pmd_maps);
	c.nr_sigbus = atomic64_read(&g->nr_sigbus);
	c.count = g->nr_extents;
	if (c.extents)
		n = min(c.capacity, c.count);
	if (n) {
		ext = kvcalloc(n, sizeof(*ext), GFP_KERNEL);
		if (!ext) {
			r = -ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			ext[i].offset = g->extents[i].offset;
			ext[i].phys = g->extents[i].phys;
			ext[i].bytes = g->extents[i].bytes;
		}
		r = gmem_copy_array_out(c.extents, c.entry_size, GMEM_PFN_EXTENT_SIZE_VER1, ext, sizeof(*ext),
					n);
		if (r)
			goto out;
	}
	r = gmem_copy_out(uarg, &c, sizeof(c), usize);
out:
	kvfree(ext);
	gmem_guest_put(g);
	return r;
}

static long gmem_ioc_list_guests(void __user *uarg)
{
	struct gmem_pfn_guest_info *info = NULL;
	struct gmem_pfn_list_guests c;
	struct gmem_guest *g;
	u32 usize, cap, n = 0;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_LIST_GUESTS_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	if (c.flags || c.reserved)
		return -EINVAL;
	r = gmem_check_array(c.guests, c.entry_size, GMEM_PFN_GUEST_INFO_SIZE_VER1, c.capacity);
	if (r)
		return r;
	/* More guests than may exist cannot be listed: the buffer is sized by what can be there. */
	cap = c.guests ? min_t(u32, c.capacity, GMEM_PFN_MAX_GUESTS) : 0;
	if (cap) {
		info = kvcalloc(cap, sizeof(*info), GFP_KERNEL);
		if (!info)
			return -ENOMEM;
	}
	c.count = 0;
	/* The table is in id order (ids grow, guests are appended). Lock order: gmem_lock, then the
	 * guest's invalidate lock (private bytes), then its holder lock. */
	mutex_lock(&gmem_lock);
	list_for_each_entry(g, &gmem_guests, node) {
		struct gmem_pfn_guest_info *e;

		if (g->id <= c.after)
			continue;
		c.count++;
		if (n == cap)
			continue;
		e = &info[n++];
		e->guest_id = g->id;
		e->cookie = g->cookie;
		e->bytes = g->bytes;
		e->private_bytes = gmem_guest_private_bytes(g);
		e->base = g->nr_extents ? g->extents[0].phys : 0;
		e->granule_shift = g->granule_shift;
		e->node = g->nid;
		mutex_lock(&g->lock);
		e->nr_holders = g->nr_holders;
		mutex_unlock(&g->lock);
	}
	mutex_unlock(&gmem_lock);
	if (n)
		r = gmem_copy_array_out(c.guests, c.entry_size, GMEM_PFN_GUEST_INFO_SIZE_VER1, info,
					sizeof(*info), n);
	kvfree(info);
	if (r)
		return r;
	return gmem_copy_out(uarg, &c, sizeof(c), usize);
}

static long gmem_ioc_query_state(void __user *uarg)
{
	struct gmem_pfn_range *runs = NULL;
	struct gmem_pfn_query_state c;
	struct gmem_guest *g;
	u32 usize, cap;
	int r = gmem_copy_in(&c, sizeof(c), GMEM_PFN_QUERY_STATE_SIZE_VER1, uarg, &usize);

	if (r)
		return r;
	if (c.flags || c.reserved)
		return -EINVAL;
	r = gmem_check_array(c.runs, c.entry_size, GMEM_PFN_RANGE_SIZE_VER1, c.capacity);
	if (r)
		return r;
	g = gmem_guest_get(c.guest_id);
	if (!g)
		return -ENOENT;
	r = gmem_guest_check_range(g, c.offset, c.length);
	if (r)
		goto out;
	cap = c.runs ? c.capacity : 0;
	if (cap) {
		runs = kvcalloc(cap, sizeof(*runs), GFP_KERNEL);
		if (!runs) {
			r = -ENOMEM;
			goto out;
		}
	}
	gmem_guest_private_runs(g, c.offset, c.length, runs, cap, &c.count);
	if (cap && c.count)
		r = gmem_copy_array_out(c.runs, c.entry_size, GMEM_PFN_RANGE_SIZE_VER1, runs, sizeof(*runs),
					min(cap, c.count));
	if (!r)
		r = gmem_copy_out(uarg, &c, sizeof(c), usize);
out:
	kvfree(runs);
	gmem_guest_put(g);
	return r;
}

#define GMEM_IOC_IS(cmd, def) (((cmd) & ~IOCSIZE_MASK) == ((def) & ~IOCSIZE_MASK))

static long gmem_ctl_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_QUERY_CAPS))
		return gmem_ioc_caps(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_CREATE_GUEST))
		return gmem_ioc_create(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_DESTROY_GUEST))
		return gmem_ioc_destroy(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_SET_RANGE))
		return gmem_ioc_set_range(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_AUDIT))
		return gmem_ioc_audit(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_NEW_HOLDER))
		return gmem_ioc_new_holder(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_REVOKE_HOLDER))
		return gmem_ioc_revoke_holder(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_QUERY_POOL))
		return gmem_ioc_query_pool(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_QUERY_GUEST))
		return gmem_ioc_query_guest(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_LIST_GUESTS))
		return gmem_ioc_list_guests(uarg);
	if (GMEM_IOC_IS(cmd, GMEM_PFN_IOC_QUERY_STATE))
		return gmem_ioc_query_state(uarg);
	return -ENOTTY;
}

static const struct file_operations gmem_ctl_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = gmem_ctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice gmem_ctl_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = GMEM_PFN_DEVICE_NAME,
	.fops = &gmem_ctl_fops,
	.mode = 0600,
};

int gmem_ctl_init(void)
{
	return misc_register(&gmem_ctl_dev);
}

void gmem_ctl_exit(void)
{
	misc_deregister(&gmem_ctl_dev);
}
