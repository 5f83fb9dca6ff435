// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Guests: each one gets its own inode on the module's pseudo filesystem, so its i_mapping holds
 * exactly this guest's mappings: a zap (unmap_mapping_range) hits them and nothing else, and the
 * audit walks them (i_mmap). Faults and zaps are serialised by that mapping's invalidate_lock:
 * faults take it shared, conversions, revocations and destroy take it exclusive, so a fault can
 * never insert a PFN of a granule that has just gone private.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/numa.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "gmem_pfn.h"

#define GMEM_PFN_FS_MAGIC 0x676d656d /* "gmem" */

DEFINE_MUTEX(gmem_lock);
LIST_HEAD(gmem_guests);
unsigned int gmem_nr_guests;

static struct vfsmount *gmem_mnt;
static atomic64_t gmem_next_guest_id = ATOMIC64_INIT(0);

static int gmem_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, GMEM_PFN_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type gmem_fs_type = {
	.name = "gmem_pfn",
	.init_fs_context = gmem_init_fs_context,
	.kill_sb = kill_anon_super,
};

int gmem_fs_init(void)
{
	gmem_mnt = kern_mount(&gmem_fs_type);
	return PTR_ERR_OR_ZERO(gmem_mnt);
}

void gmem_fs_exit(void)
{
	kern_unmount(gmem_mnt);
}

struct vfsmount *gmem_fs_mnt(void);
struct vfsmount *gmem_fs_mnt(void)
{
	return gmem_mnt;
}

static void gmem_guest_free(struct kref *ref)
{
	struct gmem_guest *g = container_of(ref, struct gmem_guest, ref);

	iput(g->inode);
	kvfree(g->extents);
	bitmap_free(g->private);
	kfree(g);
	/* The reference gmem_guest_create took for this guest: unload waits for every guest. */
	module_put(THIS_MODULE);
}

void gmem_guest_put(struct gmem_guest *g)
{
	if (g)
		kref_put(&g->ref, gmem_guest_free);
}

struct gmem_guest *gmem_guest_get(u64 id)
{
	struct gmem_guest *g;

	mutex_lock(&gmem_lock);
	list_for_each_entry(g, &gmem_guests, node) {
		if (g->id == id) {
			kref_get(&g->ref);
			mutex_unlock(&gmem_lock);
			return g;
		}
	}
	mutex_unlock(&gmem_lock);
	return NULL;
}

int gmem_guest_create(const struct gmem_pfn_create_guest *req, u64 *ret_id)
{
	u64 nr_granules, total, free;
	struct gmem_guest *g;
	int r;

	if (req->flags & ~GMEM_PFN_CREATE_PRIVATE)
		return -EINVAL;
	if (req->granule_shift != GMEM_PFN_GRANULE_4K_SHIFT &&
	    req->granule_shift != GMEM_PFN_GRANULE_2M_SHIFT)
		return -EINVAL;
	if (!req->bytes || req->bytes & ((1ULL << req->granule_shift) - 1))
		return -EINVAL;
	if (req->node < NUMA_NO_NODE)
		return -EINVAL;
	nr_granules = req->bytes >> req->granule_shift;
	/*
	 * Before allocating anything sized by the request: a guest cannot be bigger than the free pool
	 * (the allocation below checks again, under the lock), and the bitmap API counts in unsigned int.
	 */
	mutex_lock(&gmem_lock);
	gmem_pool_stats(&total, &free);
	mutex_unlock(&gmem_lock);
	if (req->bytes > free || nr_granules > UINT_MAX)
		return -ENOSPC;

	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g)
		return -ENOMEM;
	kref_init(&g->ref);
	mutex_init(&g->lock);
	INIT_LIST_HEAD(&g->holders);
	spin_lock_init(&g->ev_lock);
	g->cookie = req->cookie;
	g->bytes = req->bytes;
	g->granule_shift = req->granule_shift;
	g->nid = req->node;
	g->private = bitmap_zalloc(nr_granules, GFP_KERNEL);
	if (!g->private) {
		r = -ENOMEM;
		goto out_free;
	}
	if (req->flags & GMEM_PFN_CREATE_PRIVATE)
		bitmap_fill(g->private, nr_granules);

	g->inode = alloc_anon_inode(gmem_mnt->mnt_sb);
	if (IS_ERR(g->inode)) {
		r = PTR_ERR(g->inode);
		g->inode = NULL;
		goto out_free;
	}
	g->inode->i_size = req->bytes;
	g->mapping = g->inode->i_mapping;

	mutex_lock(&gmem_lock);
	if (gmem_nr_guests >= GMEM_PFN_MAX_GUESTS) {
		r = -EMFILE;
		goto out_unlock;
	}
	if (req->node != NUMA_NO_NODE && !gmem_pool_has_node(req->node)) {
		r = -EINVAL;
		goto out_unlock;
	}
	r = gmem_pool_alloc(req->bytes, req->granule_shift, req->node, &g->extents, &g->nr_extents);
	if (r)
		goto out_unlock;
	__module_get(THIS_MODULE);
	g->id = atomic64_inc_return(&gmem_next_guest_id);
	list_add_tail(&g->node, &gmem_guests);
	gmem_nr_guests++;
	*ret_id = g->id;
	mutex_unlock(&gmem_lock);
	return 0;

out_unlock:
	mutex_unlock(&gmem_lock);
out_free:
	if (g->inode)
		iput(g->inode);
	bitmap_free(g->private);
	kfree(g);
	return r;
}

int gmem_guest_destroy(u64 id)
{
	struct gmem_guest *g, *found = NULL;
	struct gmem_holder *h;

	mutex_lock(&gmem_lock);
	list_for_each_entry(g, &gmem_guests, node) {
		if (g->id == id) {
			found = g;
			break;
		}
	}
	if (!found) {
		mutex_unlock(&gmem_lock);
		return -ENOENT;
	}
	g = found;
	list_del_init(&g->node);
	gmem_nr_guests--;

	filemap_invalidate_lock(g->mapping);
	g->dead = true;
	mutex_lock(&g->lock);
	list_for_each_entry(h, &g->holders, node)
		h->revoked = true;
	mutex_unlock(&g->lock);
	/* Every PTE and PMD of every holder goes; later faults see `dead` and get SIGBUS. */
	unmap_mapping_range(g->mapping, 0, 0, 1);
	filemap_invalidate_unlock(g->mapping);

	gmem_pool_free(g->extents, g->nr_extents);
	mutex_unlock(&gmem_lock);

	gmem_event_guest_released(g);
	gmem_guest_put(g);
	return 0;
}

int gmem_guest_check_range(const struct gmem_guest *g, u64 offset, u64 length)
{
	u64 mask = (1ULL << g->granule_shift) - 1;

	if (!length || (offset & mask) || (length & mask))
		return -EINVAL;
	if (offset + length < offset || offset + length > g->bytes)
		return -ERANGE;
	return 0;
}

static const struct gmem_extent *gmem_guest_extent(const struct gmem_guest *g, u64 offset)
{
	unsigned int lo = 0, hi = g->nr_extents;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct gmem_extent *e = &g->extents[mid];

		if (offset < e->offset)
			hi = mid;
		else if (offset >= e->offset + e->bytes)
			lo = mid + 1;
		else
			return e;
	}
	return NULL;
}

phys_addr_t gmem_guest_phys(const struct gmem_guest *g, u64 offset)
{
	const struct gmem_extent *e = gmem_guest_extent(g, offset);

	return e ? e->phys + (offset - e->offset) : 0;
}

u64 gmem_guest_private_bytes(struct gmem_guest *g)
{
	u64 n;

	filemap_invalidate_lock_shared(g->mapping);
	n = (u64)bitmap_weight(g->private, g->bytes >> g->granule_shift) << g->granule_shift;
	filemap_invalidate_unlock_shared(g->mapping);
	return n;
}

/*
 * The maximal runs of private granules in [offset, offset+length), clipped to it: the first cap go to
 * runs, *count says how many exist. The range was checked by the caller.
 */
void gmem_guest_private_runs(struct gmem_guest *g, u64 offset, u64 length, struct gmem_pfn_range *runs,
			     u32 cap, u32 *count)
{
	unsigned int shift = g->granule_shift;
	unsigned long end = (unsigned long)((offset + length) >> shift);
	unsigned long bit = (unsigned long)(offset >> shift);
	u32 n = 0;

	filemap_invalidate_lock_shared(g->mapping);
	for (;;) {
		unsigned long first = find_next_bit(g->private, end, bit);
		unsigned long last;

		if (first >= end)
			break;
		last = find_next_zero_bit(g->private, end, first);
		if (n < cap) {
			runs[n].offset = (u64)first << shift;
			runs[n].length = (u64)(last - first) << shift;
		}
		n++;
		bit = last;
	}
	filemap_invalidate_unlock_shared(g->mapping);
	*count = n;
}

unsigned int gmem_guest_nr_mappings(struct gmem_guest *g, struct file *only)
{
	struct vm_area_struct *vma;
	struct rb_node *node;
	unsigned int n = 0;

	i_mmap_lock_read(g->mapping);
	gmem_for_each_vma(vma, node, g->mapping)
		if (!only || vma->vm_file == only)
			n++;
	i_mmap_unlock_read(g->mapping);
	return n;
}

static int gmem_audit_cmp(const void *a, const void *b)
{
	const struct gmem_pfn_audit_entry *x = a, *y = b;

	if (x->holder_id != y->holder_id)
		return x->holder_id < y->holder_id ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return 0;
}

/*
 * The audit: every mapping of the guest's files that overlaps [offset, offset+length) now. It
 * walks i_mmap rather than trusting ranges recorded at mmap time: those go stale on splits and
 * mremap. Called with the invalidate_lock held exclusive (audit_gen is ours then).
 */
static void gmem_guest_walk_audit(struct gmem_guest *g, u64 offset, u64 length,
				  struct gmem_pfn_audit_entry *ents, u32 cap, u32 *count,
				  u32 *nr_holders)
{
	struct vm_area_struct *vma;
	struct rb_node *node;
	u32 n = 0, holders = 0;
	u64 gen = ++g->audit_gen;

	*count = 0;
	*nr_holders = 0;
#ifdef GMEM_PFN_TEST_NO_AUDIT
	return;
#endif
	i_mmap_lock_read(g->mapping);
	gmem_for_each_vma(vma, node, g->mapping) {
		struct gmem_holder *h = vma->vm_file->private_data;
		u64 vstart = (u64)vma->vm_pgoff << PAGE_SHIFT;
		u64 vend = vstart + (vma->vm_end - vma->vm_start);
		u64 s = max(vstart, offset), e = min(vend, offset + length);

		if (s >= e)
			continue;

		if (h->audit_gen != gen) {
			h->audit_gen = gen;
			holders++;
		}
		if (n < cap) {
			struct gmem_pfn_audit_entry *a = &ents[n];

			memset(a, 0, sizeof(*a));
			a->holder_id = h->id;
			a->holder_tag = h->tag;
			a->owner_pid = h->owner_pid;
			a->mapper_pid = (pid_t)(unsigned long)vma->vm_private_data;
			a->offset = s;
			a->length = e - s;
			a->vm_start = vma->vm_start + (s - vstart);
		}
		n++;
	}
	i_mmap_unlock_read(g->mapping);
	if (ents)
		sort(ents, min(n, cap), sizeof(*ents), gmem_audit_cmp, NULL);
	*count = n;
	*nr_holders = holders;
}

int gmem_guest_set_range(struct gmem_guest *g, u64 offset, u64 length, u32 state, bool zero,
			 struct gmem_pfn_audit_entry *ents, u32 cap, u32 *count, u32 *nr_holders)
{
	unsigned long first = offset >> g->granule_shift, n = length >> g->granule_shift;
	int r;

	r = gmem_guest_check_range(g, offset, length);
	if (r)
		return r;
	*count = 0;
	*nr_holders = 0;
	filemap_invalidate_lock(g->mapping);
	if (g->dead) {
		r = -ENODEV;
		goto out;
	}
	if (state == GMEM_PFN_STATE_SHARED) {
		bitmap_clear(g->private, first, n);
		goto out_zero;
	}
	bitmap_set(g->private, first, n);
#ifndef GMEM_PFN_TEST_NO_ZAP
	unmap_mapping_range(g->mapping, offset, length, 1);
#endif
	gmem_guest_walk_audit(g, offset, length, ents, cap, count, nr_holders);
out_zero:
	if (zero) {
		u64 off = offset, end = offset + length;

		/* Nothing maps a private range; a shared one may be mapped: that is the caller's ask. */
		while (off < end) {
			const struct gmem_extent *e = gmem_guest_extent(g, off);
			u64 in = off - e->offset, len = min(e->bytes - in, end - off);

			gmem_pool_scrub(e, in, len);
			off += len;
		}
	}
out:
	filemap_invalidate_unlock(g->mapping);
	return r;
}

int gmem_guest_audit(struct gmem_guest *g, u64 offset, u64 length, struct gmem_pfn_audit_entry *ents,
		     u32 cap, u32 *count, u32 *nr_holders)
{
	int r = gmem_guest_check_range(g, offset, length);

	if (r)
		return r;
	filemap_invalidate_lock(g->mapping);
	gmem_guest_walk_audit(g, offset, length, ents, cap, count, nr_holders);
	filemap_invalidate_unlock(g->mapping);
	return 0;
}
