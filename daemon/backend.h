/* SPDX-License-Identifier: MIT */
/*
 * backend: the one interface between gmemd and guest memory. A backend owns the pool (the memory it
 * may hand out), creates and destroys guests in it, and opens a new file for each holder of a guest.
 * The daemon core never touches memory itself. Two implementations are planned: memfd (here, the
 * embedded default: no module, no privilege, nothing enforced) and kmod (gmem_pfn.ko, enforcing).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct conv_range;

struct backend;
struct backend_guest;
struct event_base;

struct backend_config {
	uint64_t pool_size; /* memfd: the byte budget; 0 = the backend's default */
	const char *device; /* kmod: the control node; NULL = /dev/gmem_pfn */
	struct event_base *base; /* the daemon's loop, for a backend's own events (kmod: the module's) */
};

/* Who a new file is for: reported back by the audit, so a finding can be pinned on a client. */
struct backend_holder {
	uint64_t tag; /* gmemd's client id */
	pid_t pid;    /* the client's process */
};

/* One mapping that survived a to-private zap: a file other than the vmm lease holder's is revoked. */
struct backend_audit_hit {
	uint64_t holder_id, tag;
	pid_t owner_pid, mapper_pid; /* they differ when the file was passed on and mapped by the receiver */
	uint64_t offset, length;
	/* A file made by an earlier gmemd (before a restart): tag is not one of this run's clients, and
	 * is reported as 0. */
	bool foreign;
};

struct backend_node {
	int node;
	uint64_t total, free;
};

/* Where a backend's memory lives by itself (kmod: a module guest), recorded in the journal so that a
 * restarted gmemd takes back exactly that memory. Zero fields were not recorded. */
struct backend_ident {
	uint64_t module_id; /* the module's guest id (never reused while the module is loaded) */
	uint64_t cookie;    /* what the module keeps with it: the id of the gmemd guest that created it */
	uint64_t base;      /* physical address of guest offset 0 */
};

/* A guest the backend holds, whether or not gmemd knows it (an orphan: its journal was lost). */
struct backend_module_guest {
	uint64_t module_id, cookie, size, granule, private_bytes, base;
	int node;         /* -1: any */
	uint32_t holders; /* files open on it */
};

struct backend_audit {
	struct backend_audit_hit *hits; /* owned by the caller, who frees it */
	size_t n, cap;
};

struct backend_ops {
	const char *name;
	/* Whether private is enforced by the kernel (kmod) or only declared by clients (memfd). */
	bool enforcing;
	/* Whether guest memory outlives gmemd by itself (kmod: the module keeps it until destroyed), so
	 * that replay finds it with guest_adopt and an ident, not through the fd store. */
	bool keeps_memory;
	/* Start-up: fails with -errno and a logged reason when the backend is unavailable; gmemd then
	 * refuses to start (never a fallback to another backend). */
	int (*open)(const struct backend_config *cfg, struct backend **ret);
	void (*close)(struct backend *b);

	/* -ENOSPC when the pool cannot hold size bytes at granule alignment. node: a NUMA node whose memory
	 * to use, or -1 for any (-EOPNOTSUPP where the backend cannot choose, -EINVAL when it has none there). */
	int (*guest_create)(struct backend *b, uint64_t id, const char *name, uint64_t size, uint64_t granule,
			    int node, struct backend_guest **ret);
	/* Returns the guest's memory to the pool at once; holders' existing files read zeroes. */
	void (*guest_destroy)(struct backend *b, struct backend_guest *g);
	/* Drops gmemd's own handle and leaves the memory alone: at shutdown, holders keep what they map. */
	void (*guest_release)(struct backend *b, struct backend_guest *g);
	/* A new O_CLOEXEC file for one holder, mappable MAP_SHARED from offset 0. Caller owns the fd.
	 * *ret_holder_id names the file to holder_revoke (0 where files cannot be told apart: memfd). */
	int (*guest_open)(struct backend *b, struct backend_guest *g, const struct backend_holder *who, int *ret_fd,
			  uint64_t *ret_holder_id);
	/* Takes one file's access away for good (its mappings zapped, later faults SIGBUS). NULL where an fd
	 * handed out cannot be taken back (memfd). */
	int (*holder_revoke)(struct backend *b, struct backend_guest *g, uint64_t holder_id);
	/* Applies a decided conversion of the ranges (struct conv_range: offset, length in bytes): for
	 * to-private an enforcing backend revokes every mapping; zero discards the contents. Runs after every
	 * participant of the first wave acked. Return: 0 or -errno (reported; the decision stands).
	 * For to-private an enforcing backend appends to *audit (if not NULL) every mapping still overlapping
	 * the ranges after its zap. */
	int (*guest_convert)(struct backend *b, struct backend_guest *g, const struct conv_range *ranges,
			     size_t n, bool to_private, bool zero, struct backend_audit *audit);
	/* The fd that carries the guest's memory across a gmemd restart through the service manager's fd
	 * store (borrowed), or -EOPNOTSUPP when the memory outlives gmemd by itself (kmod). */
	int (*guest_store_fd)(struct backend *b, struct backend_guest *g);
	/* Takes a guest's memory back after a restart: from what guest_store_fd gave (fd consumed; memfd),
	 * or, where the memory kept itself (keeps_memory: fd is -EBADF), the backend guest ident names
	 * (kmod; without a module_id, the one whose cookie is id). -EINVAL when it is not the memory of
	 * such a guest, -ENOENT when the backend no longer holds it, -ESTALE when what it holds under that
	 * ident differs (size, granule, cookie or base), -ENOSPC when the pool cannot account for it. */
	int (*guest_adopt)(struct backend *b, uint64_t id, const char *name, uint64_t size, uint64_t granule, int fd,
			   const struct backend_ident *ident, struct backend_guest **ret);
	/* What to record so that guest_adopt finds g again (NULL: the fd store's st_dev/st_ino do it). */
	void (*guest_ident)(struct backend *b, struct backend_guest *g, struct backend_ident *ret);
	/* Where the memory keeps its own shared/private state (kmod): its private ranges now, in offset
	 * order (*ret owned by the caller). NULL where only gmemd's map knows (memfd). */
	int (*guest_private)(struct backend *b, struct backend_guest *g, struct conv_range **ret, size_t *ret_n);
	/* Every guest the backend holds with module_id > after, known to gmemd or not, in id order: at most
	 * max into out, *ret_n written, *ret_more set when more follow. NULL: nothing outlives gmemd but
	 * through the fd store (memfd). */
	int (*module_list)(struct backend *b, uint64_t after, struct backend_module_guest *out, size_t max,
			   size_t *ret_n, bool *ret_more);
	/* Destroys a backend guest gmemd holds no handle of (an orphan): its memory returns to the pool. */
	int (*module_destroy)(struct backend *b, uint64_t module_id);
	/* Bytes of the guest actually backed by memory now. */
	uint64_t (*guest_touched)(struct backend *b, struct backend_guest *g);

	uint64_t (*pool_size)(struct backend *b);
	uint64_t (*pool_used)(struct backend *b);
	/* The pool per NUMA node, at most max entries: returns how many were written. NULL: no nodes. */
	size_t (*pool_nodes)(struct backend *b, struct backend_node *out, size_t max);
};

/* NULL when no backend of that name was built in. */
const struct backend_ops *backend_find(const char *name);
/* Comma-separated names of the built-in backends, for --help. */
const char *backend_names(void);

extern const struct backend_ops backend_memfd_ops;
extern const struct backend_ops backend_kmod_ops;
