/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * gmem_pfn internals shared by the module's files: the pool of claimed PFN ranges (pool.c), guests
 * with their inode, holder files, mmap and faults (guest.c, holder.c), the control device (ioctl.c)
 * and the generic-netlink family (genl.c).
 *
 * Lock order: gmem_lock (guest table, pool) -> guest->mapping invalidate_lock -> guest->lock
 * (holder list) -> i_mmap_rwsem. Faults take only the invalidate_lock, shared.
 */
#ifndef GMEM_PFN_INTERNAL_H
#define GMEM_PFN_INTERNAL_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/version.h>

#include "uapi/gmem_pfn.h"

#define GMEM_PFN_MAX_RANGES 16
#define GMEM_PFN_MAX_GUESTS 1024
#define GMEM_PFN_MAX_HOLDERS 256

#if defined(GMEM_PFN_TEST_NO_ZAP) || defined(GMEM_PFN_TEST_NO_AUDIT) || defined(GMEM_PFN_TEST_NO_SCRUB) || \
	defined(GMEM_PFN_TEST_ABI)
#define GMEM_PFN_TEST_BUILD 1
#else
#define GMEM_PFN_TEST_BUILD 0
#endif

/* 2 MiB granules go in as PMDs from 6.12 (PMD PFN mappings, .huge_fault with an order). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0) && defined(CONFIG_ARCH_SUPPORTS_PMD_PFNMAP)
#define GMEM_PFN_HAVE_PMD 1
#else
#define GMEM_PFN_HAVE_PMD 0
#endif

struct gmem_extent {
	u64 offset; /* guest offset */
	phys_addr_t phys;
	u64 bytes;
	int range; /* index in the pool's ranges */
};

struct gmem_guest {
	struct kref ref;          /* the table's (until destroyed), each holder file's, lookups' */
	struct list_head node;    /* in gmem_guests, under gmem_lock, while not destroyed */
	u64 id;
	u64 cookie;
	u64 bytes;
	unsigned int granule_shift;
	int nid;
	struct inode *inode;      /* this guest's own inode: its i_mapping is what a zap hits */
	struct address_space *mapping;

	/* Under the mapping's invalidate_lock (shared to read, exclusive to change). */
	bool dead;                /* destroyed: every fault is SIGBUS */
	unsigned long *private;   /* one bit per granule, set = private */
	struct gmem_extent *extents; /* in offset order; freed with the guest, returned to the pool on destroy */
	unsigned int nr_extents;

	struct mutex lock;        /* holders */
	struct list_head holders;
	unsigned int nr_holders;
	u64 audit_gen;            /* distinct-holder counting in an audit, under the invalidate_lock */

	atomic64_t nr_faults, nr_pte_maps, nr_pmd_maps, nr_sigbus;

	spinlock_t ev_lock;       /* event rate limit */
	unsigned long ev_window;  /* jiffies when the current one-second window began */
	unsigned int ev_sent;     /* events sent in the window */
	unsigned int ev_dropped;  /* dropped since the last event sent */
};

struct gmem_holder {
	struct list_head node;    /* in guest->holders, under guest->lock */
	struct gmem_guest *guest; /* a reference */
	struct file *file;        /* not a reference: the holder lives exactly as long as its file */
	u64 id;
	u64 tag;
	pid_t owner_pid;
	pid_t opener_pid;
	bool revoked;             /* written under the invalidate_lock (exclusive), read under it */
	u64 audit_gen;
};

/*
 * Every mapping of a guest's files, from its i_mmap tree, with the caller holding i_mmap_rwsem.
 * The interval-tree iterators are not exported to modules: walk the whole (small) tree and test
 * the overlap ourselves.
 */
#define gmem_for_each_vma(vma, node, mapping)                                               \
	for (node = rb_first_cached(&(mapping)->i_mmap);                                     \
	     node && ((vma) = rb_entry(node, struct vm_area_struct, shared.rb), true);      \
	     node = rb_next(node))

extern struct mutex gmem_lock;
extern struct list_head gmem_guests;
extern unsigned int gmem_nr_guests;

/* pool.c */
int gmem_pool_init(const char *spec);
void gmem_pool_exit(void);
unsigned int gmem_pool_nr_ranges(void);
void gmem_pool_stats(u64 *total, u64 *free);
int gmem_pool_range_info(unsigned int i, struct gmem_pfn_pool_range *out);
bool gmem_pool_has_node(int nid);
int gmem_pool_alloc(u64 bytes, unsigned int granule_shift, int nid, struct gmem_extent **ret,
		    unsigned int *ret_nr);
void gmem_pool_free(struct gmem_extent *ext, unsigned int nr);
void gmem_pool_scrub(const struct gmem_extent *ext, u64 off_in_ext, u64 bytes);

/* guest.c */
int gmem_fs_init(void);
void gmem_fs_exit(void);
int gmem_guest_create(const struct gmem_pfn_create_guest *req, u64 *ret_id);
struct gmem_guest *gmem_guest_get(u64 id);
void gmem_guest_put(struct gmem_guest *g);
int gmem_guest_destroy(u64 id);
int gmem_guest_set_range(struct gmem_guest *g, u64 offset, u64 length, u32 state, bool zero,
			 struct gmem_pfn_audit_entry *ents, u32 cap, u32 *count, u32 *nr_holders);
int gmem_guest_audit(struct gmem_guest *g, u64 offset, u64 length, struct gmem_pfn_audit_entry *ents,
		     u32 cap, u32 *count, u32 *nr_holders);
int gmem_guest_check_range(const struct gmem_guest *g, u64 offset, u64 length);
u64 gmem_guest_private_bytes(struct gmem_guest *g);
void gmem_guest_private_runs(struct gmem_guest *g, u64 offset, u64 length, struct gmem_pfn_range *runs,
			     u32 cap, u32 *count);
unsigned int gmem_guest_nr_mappings(struct gmem_guest *g, struct file *only);
phys_addr_t gmem_guest_phys(const struct gmem_guest *g, u64 offset);

/* holder.c */
int gmem_holder_new(struct gmem_guest *g, u32 flags, u64 tag, pid_t owner_pid, u64 *ret_id);
int gmem_holder_revoke(struct gmem_guest *g, u64 holder_id);
bool gmem_file_is_holder(const struct file *file);

/* ioctl.c */
int gmem_ctl_init(void);
void gmem_ctl_exit(void);
int gmem_copy_array_out(u64 uptr, u32 entry_size, u32 ver1, const void *src, size_t ksize, u32 n);

/* genl.c */
int gmem_genl_init(void);
void gmem_genl_exit(void);
void gmem_event_private_fault(struct gmem_guest *g, u64 holder_id, pid_t pid, u64 offset, bool revoked);
void gmem_event_guest_released(struct gmem_guest *g);

#endif
