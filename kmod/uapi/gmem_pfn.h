/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * gmem_pfn: the userspace ABI of the gmem_pfn kernel module.
 *
 * The module claims physical ranges reserved at boot (memmap=SIZE$ADDR, module parameter ranges=),
 * allocates them to guests itself, and hands out one file per holder of a guest. A holder maps its
 * file (MAP_SHARED only); shared granules are inserted at fault time, private granules raise SIGBUS.
 *
 * Two interfaces:
 *  - ioctls on the control node /dev/gmem_pfn (0600, owned by the user gmemd runs as): create and
 *    destroy guests, set ranges shared/private (private = zap + audit), read the audit, create and
 *    revoke holder files, query the pool and a guest; plus one ioctl on a holder file (prefault);
 *  - a generic-netlink family (read-only queries, every op needs CAP_NET_ADMIN) and an events
 *    multicast group (joining it needs CAP_NET_ADMIN).
 *
 * Conventions for every ioctl struct below:
 *  - The first field is `size`: the caller sets it to sizeof() the struct as its header knows it.
 *    The kernel accepts any size >= the version-1 size (GMEM_PFN_*_SIZE_VER1), up to one page:
 *    a smaller size fails with -EINVAL, a larger one whose bytes beyond the kernel's struct are not
 *    all zero fails with -E2BIG (copy_struct_from_user semantics), so a program built against a
 *    newer header runs on an older module as long as it leaves new fields zero. Output fields are
 *    written back for min(size, kernel's size) bytes.
 *  - The ioctl numbers carry the version-1 struct size; the kernel matches on type, number and
 *    direction and ignores the size bits, so a grown struct keeps its ioctl number.
 *  - Fields named `flags` must have only defined bits set (-EINVAL otherwise); `reserved` and pad
 *    fields must be zero (-EINVAL otherwise), so they can be given a meaning later.
 *    Fields marked "out" are ignored on input and overwritten.
 *  - Offsets and lengths are in bytes within a guest and must be multiples of the guest's granule
 *    (-EINVAL); a range that wraps around or ends past the guest's size fails with -ERANGE.
 *  - Pointers to user arrays are __u64 (u64_to_user_ptr); each array names its element size
 *    (`entry_size`, >= the version-1 element size, same extension rule as structs) and capacity
 *    (`capacity`, entries). The kernel fills at most `capacity` entries and always sets `count` to
 *    the total that exists, so a caller seeing count > capacity retries with a bigger array.
 *    Capacities above GMEM_PFN_MAX_ENTRIES fail with -ERANGE.
 *  - Unknown ioctl numbers fail with -ENOTTY. No ioctl WARNs or oopses on any input.
 *  - Identifiers (guest ids, holder ids) are never 0 and are never reused while the module is loaded.
 */
#ifndef _UAPI_LINUX_GMEM_PFN_H
#define _UAPI_LINUX_GMEM_PFN_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define GMEM_PFN_DEVICE_NAME "gmem_pfn" /* the control node: /dev/gmem_pfn */

/*
 * The ABI version. A daemon refuses a module whose abi_version it does not know (DKMS rebuilds cause
 * version skew between the daemon and the module). Additive changes (new fields at the end of a
 * struct, new ioctls, new attributes, new feature bits) do not change it; anything else does.
 */
#define GMEM_PFN_ABI_VERSION 1

#define GMEM_PFN_IOC_MAGIC 0xB9

/* Upper bound on `capacity` of every returned array (audit entries, extents, pool ranges). */
#define GMEM_PFN_MAX_ENTRIES 65536

/* Granule sizes, as shifts: 4 KiB and 2 MiB. */
#define GMEM_PFN_GRANULE_4K_SHIFT 12
#define GMEM_PFN_GRANULE_2M_SHIFT 21

/* ---- capability query: GMEM_PFN_IOC_QUERY_CAPS on /dev/gmem_pfn ---- */

/* Feature bits in gmem_pfn_caps.features. */
/* 2 MiB granules are mapped as PMDs (Linux >= 6.12 with PMD PFN mappings); else as 4 KiB PTEs. */
#define GMEM_PFN_FEAT_PMD_MAPPINGS (1ULL << 0)
/* The generic-netlink family GMEM_PFN_GENL_NAME and its events group exist. */
#define GMEM_PFN_FEAT_GENL (1ULL << 1)
/* GMEM_PFN_IOC_PREFAULT exists on holder files. */
#define GMEM_PFN_FEAT_PREFAULT (1ULL << 2)
/* GMEM_PFN_SET_RANGE_ZERO exists (scrub a range while converting it). */
#define GMEM_PFN_FEAT_ZERO_ON_CONVERT (1ULL << 3)
/*
 * GMEM_PFN_IOC_LIST_GUESTS and GMEM_PFN_IOC_QUERY_STATE exist: a restarted daemon can enumerate the
 * guests the module holds and read back which ranges are private.
 */
#define GMEM_PFN_FEAT_LIST_GUESTS (1ULL << 4)
/*
 * A test-only build in which a safety property is switched off on purpose (the vm suite's negative
 * controls: no zap, no audit or no scrub). A daemon must refuse to run on such a module.
 */
#define GMEM_PFN_FEAT_TEST_BUILD (1ULL << 63)

struct gmem_pfn_caps {
	__u32 size;          /* in: sizeof(struct gmem_pfn_caps) */
	__u32 abi_version;   /* out: GMEM_PFN_ABI_VERSION of the module */
	__u64 features;      /* out: GMEM_PFN_FEAT_* */
	__u64 granule_shifts; /* out: bit n set = granule of 1 << n bytes supported (bits 12 and 21) */
	__u32 max_guests;    /* out: guests that may exist at once */
	__u32 max_holders;   /* out: holder files a guest may have at once (revoked ones count until closed) */
	__u32 nr_ranges;     /* out: PFN ranges the pool was given (module parameter ranges=) */
	__u32 reserved;      /* must be zero */
};
#define GMEM_PFN_CAPS_SIZE_VER1 40

/* ---- guests ---- */

/* gmem_pfn_create_guest.flags */
/* Every granule starts private (default: every granule starts shared). */
#define GMEM_PFN_CREATE_PRIVATE (1U << 0)

struct gmem_pfn_create_guest {
	__u32 size;          /* in: sizeof(struct gmem_pfn_create_guest) */
	__u32 flags;         /* in: GMEM_PFN_CREATE_* */
	__u64 bytes;         /* in: guest size in bytes; > 0, a multiple of the granule (-EINVAL) */
	__u32 granule_shift; /* in: GMEM_PFN_GRANULE_4K_SHIFT or _2M_SHIFT (-EINVAL otherwise) */
	__s32 node;          /* in: NUMA node whose ranges to take memory from, or -1 for any (-EINVAL if
	                      * no range is on that node) */
	__u64 cookie;        /* in: opaque value kept with the guest and reported by queries and events
	                      * (gmemd stores its own guest id here to find its guests after a restart) */
	__u64 guest_id;      /* out: the new guest's id */
};
#define GMEM_PFN_CREATE_GUEST_SIZE_VER1 40
/*
 * Errors: -ENOSPC when the pool (or the node's ranges) has not enough free granules, -EMFILE when
 * max_guests exist. The memory a guest gets was scrubbed (zeroed) when the module claimed it and
 * again when its previous guest was destroyed. Physical extents are 2 MiB-aligned for 2 MiB granules.
 * A guest lives until GMEM_PFN_IOC_DESTROY_GUEST, whatever happens to the file descriptors: gmemd can
 * restart and find its guests again (GMEM_PFN_IOC_LIST_GUESTS, genl GUEST_GET dump, or QUERY_GUEST).
 * The module cannot be unloaded while guests exist.
 */

struct gmem_pfn_guest_ref {
	__u32 size;     /* in: sizeof(struct gmem_pfn_guest_ref) */
	__u32 flags;    /* in: must be 0 */
	__u64 guest_id; /* in: the guest (-ENOENT if there is none with that id) */
};
#define GMEM_PFN_GUEST_REF_SIZE_VER1 16
/*
 * GMEM_PFN_IOC_DESTROY_GUEST: revokes every holder file of the guest (their mappings are zapped;
 * later faults raise SIGBUS, mmap fails with -ENODEV), scrubs all the guest's memory, returns it
 * to the pool and sends the GUEST_RELEASED event. Holder files stay open until their owners close
 * them; they reach nothing.
 */

/* ---- set a range shared or private: GMEM_PFN_IOC_SET_RANGE ---- */

#define GMEM_PFN_STATE_SHARED 0
#define GMEM_PFN_STATE_PRIVATE 1

/* gmem_pfn_set_range.flags */
/* Zero the range's memory (after the zap, before returning): a conversion that asked for `zero`. */
#define GMEM_PFN_SET_RANGE_ZERO (1U << 0)

/*
 * One audit entry: one mapping (VMA) of a holder file of the guest that overlaps the audited range.
 * A holder with several such mappings gets several entries. Entries come sorted by holder_id.
 */
struct gmem_pfn_audit_entry {
	__u64 holder_id;  /* the holder file (GMEM_PFN_IOC_NEW_HOLDER's holder_id) */
	__u64 holder_tag; /* the tag given at GMEM_PFN_IOC_NEW_HOLDER */
	__s32 owner_pid;  /* the pid the holder was created for (new_holder.owner_pid) */
	__s32 mapper_pid; /* tgid of the process that created this mapping (may differ from owner_pid:
	                   * a file passed over SCM_RIGHTS and mapped by the receiver) */
	__u64 offset;     /* guest offset where the overlap of this mapping with the range starts */
	__u64 length;     /* bytes of the overlap */
	__u64 vm_start;   /* user address in the mapper's address space where the overlap starts */
};
#define GMEM_PFN_AUDIT_ENTRY_SIZE_VER1 48

/* A user array of audit entries, embedded in set_range and audit. */
struct gmem_pfn_audit_buf {
	__u64 entries;    /* in: user pointer to an array of struct gmem_pfn_audit_entry, or 0 to only
	                   * count (then capacity must be 0) */
	__u32 entry_size; /* in: sizeof(struct gmem_pfn_audit_entry) as the caller knows it (>= VER1),
	                   * ignored when entries is 0 */
	__u32 capacity;   /* in: entries the array holds (<= GMEM_PFN_MAX_ENTRIES, -ERANGE) */
	__u32 count;      /* out: mappings found (may exceed capacity: only capacity were written) */
	__u32 nr_holders; /* out: distinct holder files among them */
};

struct gmem_pfn_set_range {
	__u32 size;     /* in: sizeof(struct gmem_pfn_set_range) */
	__u32 flags;    /* in: GMEM_PFN_SET_RANGE_* */
	__u64 guest_id; /* in: the guest */
	__u64 offset;   /* in: granule-aligned guest offset */
	__u64 length;   /* in: granule-aligned length, > 0 */
	__u32 state;    /* in: GMEM_PFN_STATE_SHARED or _PRIVATE (-EINVAL otherwise) */
	__u32 reserved; /* must be zero */
	struct gmem_pfn_audit_buf audit; /* in/out: filled when state is PRIVATE (count 0 for SHARED) */
};
#define GMEM_PFN_SET_RANGE_SIZE_VER1 64
/*
 * To private: under the guest's invalidate lock (which every fault takes shared), the range is
 * marked private, every CPU mapping of it in every holder file is zapped, and the guest's mappings
 * (i_mmap) are walked: each mapping that still overlaps the range is reported in `audit` — a
 * holder that kept its mapping after voting yes. The module exempts nobody (the daemon decides who
 * may keep a mapping: the vmm lease holder) and revokes nobody (GMEM_PFN_IOC_REVOKE_HOLDER).
 * A later touch of the range through any mapping raises SIGBUS at that address and sends a
 * PRIVATE_FAULT event. Pages outside the range keep their PTEs (they are not refaulted).
 * To shared: the range is marked shared; the next touch faults it in. Idempotent both ways.
 */

/* ---- read the audit at any time: GMEM_PFN_IOC_AUDIT ---- */
struct gmem_pfn_audit {
	__u32 size;     /* in: sizeof(struct gmem_pfn_audit) */
	__u32 flags;    /* in: must be 0 */
	__u64 guest_id; /* in: the guest */
	__u64 offset;   /* in: granule-aligned guest offset */
	__u64 length;   /* in: granule-aligned length, > 0 */
	struct gmem_pfn_audit_buf audit; /* in/out: every mapping overlapping [offset, offset+length) */
};
#define GMEM_PFN_AUDIT_SIZE_VER1 56

/* ---- holder files ---- */

/* gmem_pfn_new_holder.flags */
/* The file is opened read-only: PROT_WRITE mappings of it fail with -EACCES. */
#define GMEM_PFN_HOLDER_READONLY (1U << 0)

struct gmem_pfn_new_holder {
	__u32 size;      /* in: sizeof(struct gmem_pfn_new_holder) */
	__u32 flags;     /* in: GMEM_PFN_HOLDER_* */
	__u64 guest_id;  /* in: the guest */
	__u64 tag;       /* in: opaque value reported with this holder (gmemd: its client/attachment id) */
	__s32 owner_pid; /* in: pid this file is made for (reported by the audit and genl), or 0 for the
	                  * caller's tgid; < 0 fails with -EINVAL */
	__s32 fd;        /* out: the new file's descriptor in the caller, O_CLOEXEC */
	__u64 holder_id; /* out: the new holder's id */
};
#define GMEM_PFN_NEW_HOLDER_SIZE_VER1 40
/*
 * GMEM_PFN_IOC_NEW_HOLDER: a new file for the guest (a new struct file on the guest's own inode;
 * every holder gets its own, so one can be revoked alone). The file supports mmap (MAP_SHARED only,
 * offsets granule-aligned; the mapping is VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP |
 * VM_DONTCOPY: fork does not carry it, mremap fails, splits must be granule-aligned, ptrace
 * cannot read it), GMEM_PFN_IOC_PREFAULT and nothing else (read/write fail). It cannot be reopened
 * through /proc/PID/fd (-ENXIO). Errors: -EMFILE (max_holders), -ENODEV (guest being destroyed).
 */

struct gmem_pfn_holder_ref {
	__u32 size;      /* in: sizeof(struct gmem_pfn_holder_ref) */
	__u32 flags;     /* in: must be 0 */
	__u64 guest_id;  /* in: the guest */
	__u64 holder_id; /* in: the holder (-ENOENT if the guest has no such open holder) */
};
#define GMEM_PFN_HOLDER_REF_SIZE_VER1 24
/*
 * GMEM_PFN_IOC_REVOKE_HOLDER: for good, under the invalidate lock: every mapping of that file is
 * zapped, its later faults raise SIGBUS, mmap and prefault on it fail with -ENODEV. Other holders of
 * the guest are untouched. Idempotent.
 */

/* ---- queries ---- */

struct gmem_pfn_pool_range {
	__u64 base;       /* physical address (page-aligned) */
	__u64 bytes;      /* size */
	__u64 free_bytes; /* bytes not allocated to a guest */
	__s32 node;       /* NUMA node given in ranges= (@node), -1 if none */
	__u32 reserved;
};
#define GMEM_PFN_POOL_RANGE_SIZE_VER1 32

struct gmem_pfn_query_pool {
	__u32 size;        /* in: sizeof(struct gmem_pfn_query_pool) */
	__u32 flags;       /* in: must be 0 */
	__u64 total_bytes; /* out: bytes of all ranges */
	__u64 free_bytes;  /* out: bytes not allocated to any guest */
	__u32 nr_guests;   /* out: guests alive */
	__u32 entry_size;  /* in: sizeof(struct gmem_pfn_pool_range) as the caller knows it */
	__u64 ranges;      /* in: user pointer to an array of struct gmem_pfn_pool_range, or 0 */
	__u32 capacity;    /* in: entries the array holds */
	__u32 count;       /* out: ranges that exist */
};
#define GMEM_PFN_QUERY_POOL_SIZE_VER1 48

/* One physically contiguous piece of a guest. */
struct gmem_pfn_extent {
	__u64 offset; /* guest offset */
	__u64 phys;   /* physical address */
	__u64 bytes;  /* length, a multiple of the granule */
};
#define GMEM_PFN_EXTENT_SIZE_VER1 24

struct gmem_pfn_query_guest {
	__u32 size;          /* in: sizeof(struct gmem_pfn_query_guest) */
	__u32 flags;         /* in: must be 0 */
	__u64 guest_id;      /* in: the guest */
	__u64 bytes;         /* out: guest size */
	__u64 cookie;        /* out: the cookie given at creation */
	__u32 granule_shift; /* out: 12 or 21 */
	__s32 node;          /* out: node asked for at creation (-1: any) */
	__u64 private_bytes; /* out: bytes currently private */
	__u32 nr_holders;    /* out: holder files open (revoked ones included) */
	__u32 nr_mappings;   /* out: mappings (VMAs) of the guest's files alive now */
	__u64 nr_faults;     /* out: faults handled since creation (prefault included, SIGBUS included) */
	__u64 nr_pte_maps;   /* out: 4 KiB PTEs inserted since creation */
	__u64 nr_pmd_maps;   /* out: 2 MiB PMDs inserted since creation */
	__u64 nr_sigbus;     /* out: faults answered with SIGBUS (private or revoked) */
	__u64 extents;       /* in: user pointer to an array of struct gmem_pfn_extent, or 0 */
	__u32 entry_size;    /* in: sizeof(struct gmem_pfn_extent) as the caller knows it */
	__u32 capacity;      /* in: entries the array holds */
	__u32 count;         /* out: extents the guest has, in offset order */
	__u32 reserved;      /* must be zero */
};
#define GMEM_PFN_QUERY_GUEST_SIZE_VER1 112

/* ---- every guest, in id order: GMEM_PFN_IOC_LIST_GUESTS (GMEM_PFN_FEAT_LIST_GUESTS) ---- */

/* One guest of a listing. */
struct gmem_pfn_guest_info {
	__u64 guest_id;      /* the module's id */
	__u64 cookie;        /* the cookie given at creation */
	__u64 bytes;         /* guest size */
	__u64 private_bytes; /* bytes currently private */
	__u64 base;          /* physical address of guest offset 0 (its first extent) */
	__u32 granule_shift; /* 12 or 21 */
	__s32 node;          /* node asked for at creation (-1: any) */
	__u32 nr_holders;    /* holder files open (revoked ones included) */
	__u32 reserved;
};
#define GMEM_PFN_GUEST_INFO_SIZE_VER1 56

struct gmem_pfn_list_guests {
	__u32 size;       /* in: sizeof(struct gmem_pfn_list_guests) */
	__u32 flags;      /* in: must be 0 */
	__u64 after;      /* in: list the guests whose id is greater (0: from the first) */
	__u64 guests;     /* in: user pointer to an array of struct gmem_pfn_guest_info, or 0 to count */
	__u32 entry_size; /* in: sizeof(struct gmem_pfn_guest_info) as the caller knows it */
	__u32 capacity;   /* in: entries the array holds */
	__u32 count;      /* out: guests with an id greater than `after` (may exceed capacity) */
	__u32 reserved;   /* must be zero */
};
#define GMEM_PFN_LIST_GUESTS_SIZE_VER1 40
/*
 * The first min(capacity, count) guests with id > after, in id order: a caller pages on with `after`
 * set to the last id it got. This is how a daemon whose state was lost finds the guests it can no
 * longer name (guests live until GMEM_PFN_IOC_DESTROY_GUEST, whatever happens to the daemon).
 */

/* ---- the private ranges of a guest: GMEM_PFN_IOC_QUERY_STATE (GMEM_PFN_FEAT_LIST_GUESTS) ---- */

/* One run of private granules. */
struct gmem_pfn_range {
	__u64 offset; /* guest offset */
	__u64 length; /* bytes, a multiple of the granule */
};
#define GMEM_PFN_RANGE_SIZE_VER1 16

struct gmem_pfn_query_state {
	__u32 size;       /* in: sizeof(struct gmem_pfn_query_state) */
	__u32 flags;      /* in: must be 0 */
	__u64 guest_id;   /* in: the guest */
	__u64 offset;     /* in: granule-aligned guest offset */
	__u64 length;     /* in: granule-aligned length, > 0 */
	__u64 runs;       /* in: user pointer to an array of struct gmem_pfn_range, or 0 to count */
	__u32 entry_size; /* in: sizeof(struct gmem_pfn_range) as the caller knows it */
	__u32 capacity;   /* in: entries the array holds */
	__u32 count;      /* out: maximal runs of private granules in [offset, offset+length) */
	__u32 reserved;   /* must be zero */
};
#define GMEM_PFN_QUERY_STATE_SIZE_VER1 48
/*
 * Runs are clipped to the queried range and come in offset order; granules outside every run are
 * shared. A caller with count > capacity queries again from the end of the last run it got. Read
 * under the guest's invalidate lock: a run never shows half of a concurrent GMEM_PFN_IOC_SET_RANGE.
 */

/* ---- on a holder file: prefault a range of the caller's own mapping ---- */
struct gmem_pfn_prefault {
	__u32 size;         /* in: sizeof(struct gmem_pfn_prefault) */
	__u32 flags;        /* in: must be 0 */
	__u64 addr;         /* in: user address in the caller's own mapping of THIS file, granule-aligned */
	__u64 length;       /* in: bytes, granule-aligned, > 0; [addr, addr+length) must lie in mappings
	                     * of this file (-EFAULT otherwise) */
	__u64 mapped_bytes; /* out: bytes now mapped (shared granules) */
	__u64 skipped_bytes; /* out: bytes left unmapped because they are private */
};
#define GMEM_PFN_PREFAULT_SIZE_VER1 40
/*
 * MAP_POPULATE and MADV_POPULATE_* do not work on PFN mappings: this is how a VMM avoids one fault
 * per page. Errors: -ENODEV (holder revoked or guest destroyed), -EINTR (fatal signal).
 */

/* ---- ioctl numbers ---- */
/* On /dev/gmem_pfn: */
#define GMEM_PFN_IOC_QUERY_CAPS     _IOWR(GMEM_PFN_IOC_MAGIC, 0x00, struct gmem_pfn_caps)
#define GMEM_PFN_IOC_CREATE_GUEST   _IOWR(GMEM_PFN_IOC_MAGIC, 0x01, struct gmem_pfn_create_guest)
#define GMEM_PFN_IOC_DESTROY_GUEST  _IOW(GMEM_PFN_IOC_MAGIC, 0x02, struct gmem_pfn_guest_ref)
#define GMEM_PFN_IOC_SET_RANGE      _IOWR(GMEM_PFN_IOC_MAGIC, 0x03, struct gmem_pfn_set_range)
#define GMEM_PFN_IOC_AUDIT          _IOWR(GMEM_PFN_IOC_MAGIC, 0x04, struct gmem_pfn_audit)
#define GMEM_PFN_IOC_NEW_HOLDER     _IOWR(GMEM_PFN_IOC_MAGIC, 0x05, struct gmem_pfn_new_holder)
#define GMEM_PFN_IOC_REVOKE_HOLDER  _IOW(GMEM_PFN_IOC_MAGIC, 0x06, struct gmem_pfn_holder_ref)
#define GMEM_PFN_IOC_QUERY_POOL     _IOWR(GMEM_PFN_IOC_MAGIC, 0x07, struct gmem_pfn_query_pool)
#define GMEM_PFN_IOC_QUERY_GUEST    _IOWR(GMEM_PFN_IOC_MAGIC, 0x08, struct gmem_pfn_query_guest)
#define GMEM_PFN_IOC_LIST_GUESTS    _IOWR(GMEM_PFN_IOC_MAGIC, 0x09, struct gmem_pfn_list_guests)
#define GMEM_PFN_IOC_QUERY_STATE    _IOWR(GMEM_PFN_IOC_MAGIC, 0x0a, struct gmem_pfn_query_state)
/* On a holder file: */
#define GMEM_PFN_IOC_PREFAULT       _IOWR(GMEM_PFN_IOC_MAGIC, 0x40, struct gmem_pfn_prefault)

/*
 * ---- generic netlink ----
 * Family GMEM_PFN_GENL_NAME, version GMEM_PFN_GENL_VERSION, in the initial network namespace only.
 * Every command needs CAP_NET_ADMIN (GENL_ADMIN_PERM: -EPERM otherwise); joining the events group
 * needs CAP_NET_ADMIN too (-EPERM). Attributes start at 1; u64 attributes are padded with
 * GMEM_PFN_A_PAD. Unknown attributes are rejected (strict validation: -EINVAL).
 */
#define GMEM_PFN_GENL_NAME "gmem_pfn"
#define GMEM_PFN_GENL_VERSION 1
#define GMEM_PFN_GENL_MCGRP_EVENTS "events"

enum gmem_pfn_genl_cmd {
	GMEM_PFN_CMD_UNSPEC,
	/* request: no attributes. reply: POOL_TOTAL, POOL_FREE, POOL_NR_GUESTS, POOL_NR_RANGES. */
	GMEM_PFN_CMD_POOL_GET,
	/*
	 * doit with GUEST_ID: one guest; dump (NLM_F_DUMP, no attributes): every guest. Each reply:
	 * GUEST_ID, GUEST_COOKIE, GUEST_BYTES, GUEST_GRANULE_SHIFT, GUEST_NODE, GUEST_PRIVATE_BYTES,
	 * GUEST_NR_HOLDERS. -ENOENT for an unknown id.
	 */
	GMEM_PFN_CMD_GUEST_GET,
	/*
	 * dump with GUEST_ID (mandatory, -EINVAL without): one message per holder file of that guest:
	 * GUEST_ID, HOLDER_ID, HOLDER_TAG, HOLDER_OWNER_PID, HOLDER_OPENER_PID, HOLDER_REVOKED (flag,
	 * present if revoked), HOLDER_NR_MAPPINGS.
	 */
	GMEM_PFN_CMD_HOLDER_GET,
	/*
	 * Event (never a request, -EOPNOTSUPP): a process touched a private granule (or a revoked
	 * holder's mapping) and got SIGBUS: GUEST_ID, GUEST_COOKIE, EVENT_PID, EVENT_OFFSET,
	 * HOLDER_ID, EVENT_DROPPED, and HOLDER_REVOKED (flag) when the file was revoked (the fault is
	 * the revocation's, whatever the granule's state).
	 */
	GMEM_PFN_CMD_EVENT_PRIVATE_FAULT,
	/* Event: a destroyed guest's memory was scrubbed and returned: GUEST_ID, GUEST_COOKIE, EVENT_DROPPED. */
	GMEM_PFN_CMD_EVENT_GUEST_RELEASED,
	__GMEM_PFN_CMD_MAX,
};
#define GMEM_PFN_CMD_MAX (__GMEM_PFN_CMD_MAX - 1)

/*
 * Events are rate-limited per guest (GMEM_PFN_EVENT_BURST per second); EVENT_DROPPED, in every
 * event, counts the events of that guest dropped since the previous one was sent.
 */
#define GMEM_PFN_EVENT_BURST 32

enum gmem_pfn_genl_attr {
	GMEM_PFN_A_UNSPEC,
	GMEM_PFN_A_PAD,                 /* padding for u64 attributes */
	GMEM_PFN_A_POOL_TOTAL,          /* u64: bytes in all ranges */
	GMEM_PFN_A_POOL_FREE,           /* u64: bytes not allocated */
	GMEM_PFN_A_POOL_NR_GUESTS,      /* u32 */
	GMEM_PFN_A_POOL_NR_RANGES,      /* u32 */
	GMEM_PFN_A_GUEST_ID,            /* u64, != 0 */
	GMEM_PFN_A_GUEST_COOKIE,        /* u64 */
	GMEM_PFN_A_GUEST_BYTES,         /* u64 */
	GMEM_PFN_A_GUEST_GRANULE_SHIFT, /* u32: 12 or 21 */
	GMEM_PFN_A_GUEST_NODE,          /* s32: -1 = any */
	GMEM_PFN_A_GUEST_PRIVATE_BYTES, /* u64 */
	GMEM_PFN_A_GUEST_NR_HOLDERS,    /* u32 */
	GMEM_PFN_A_HOLDER_ID,           /* u64 */
	GMEM_PFN_A_HOLDER_TAG,          /* u64 */
	GMEM_PFN_A_HOLDER_OWNER_PID,    /* s32: new_holder.owner_pid */
	GMEM_PFN_A_HOLDER_OPENER_PID,   /* s32: tgid that called GMEM_PFN_IOC_NEW_HOLDER */
	GMEM_PFN_A_HOLDER_REVOKED,      /* flag */
	GMEM_PFN_A_HOLDER_NR_MAPPINGS,  /* u32: mappings (VMAs) of this file alive now */
	GMEM_PFN_A_EVENT_PID,           /* s32: tgid of the faulting process */
	GMEM_PFN_A_EVENT_OFFSET,        /* u64: guest offset of the faulting page */
	GMEM_PFN_A_EVENT_DROPPED,       /* u32: events of this guest dropped since the previous one */
	__GMEM_PFN_A_MAX,
};
#define GMEM_PFN_A_MAX (__GMEM_PFN_A_MAX - 1)

#endif /* _UAPI_LINUX_GMEM_PFN_H */
