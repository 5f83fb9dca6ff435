/* SPDX-License-Identifier: MIT */
/*
 * guest: a named, sized piece of the pool owned by a uid, and the table that finds guests by name and
 * lists them in creation order. A guest owns its backend memory; it also heads the lists of the
 * attachments and holders that point at it, so destroying it can find and drop them all.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "gmem-proto.h"
#include "list.h"
#include "policy.h"

struct client;

struct guest {
	uint64_t id; /* never reused within one gmemd run; listing order */
	char name[GMEM_NAME_MAX + 1];
	uint64_t size;
	uint64_t granule;
	uid_t owner;
	struct backend_guest *mem; /* owned */
	struct client *lease;      /* the vmm lease holder, borrowed; NULL if none */
	struct sharemap *map;      /* owned: shared/private per granule */
	bool ephemeral;            /* destroyed when its lease holder's process exits (lifetime.h) */
	struct lifetime *life;     /* owned: that binding, from the first lease on; NULL before */
	struct pubmap *pub;         /* owned: the map published to the vmm (sharemap-publish.h); NULL until asked */
	struct guest_stats *stats;  /* owned: from its first conversion on (stats.h) */
	struct list_node conversions; /* struct conversion.node: the head is in flight, the rest wait */
	struct list_node attachments; /* struct attachment.guest_node */
	struct list_node pid_attachments; /* struct pid_attachment.guest_node (pid-attach.h) */
	struct list_node holders;     /* struct holder.guest_node */
	uint64_t n_attachments;       /* both kinds: of connections and of processes */
	uint64_t n_files;             /* files handed out to clients still connected */
	struct grant *grants;         /* owned, GUEST_GRANTS_MAX at most (policy.h) */
	size_t n_grants;
	uint64_t dev, ino;            /* of its memory's file (memfd): checked when the fd store gives it back */
	struct backend_ident ident;   /* of its module guest (kmod): checked when a restarted gmemd adopts it */

	struct guest *hash_next;
	struct list_node order;
};

/* A client's declared use of [offset, offset+length) of a guest. On both lists below. */
struct attachment {
	uint64_t id;
	struct guest *guest;
	struct client *client;
	uint64_t offset, length;
	int kind; /* enum gmem_attach_kind */
	struct delegation *delegation; /* the redeemed delegation this attachment is, borrowed; or NULL */
	struct list_node guest_node, client_node;
};

/* That a client was handed files of a guest (one record per client and guest). */
struct holder {
	struct guest *guest;
	struct client *client;
	uint64_t files;
	uint64_t *file_ids; /* owned: the backend's ids of those files (enforcing backends only) */
	size_t n_file_ids;
	struct list_node guest_node, client_node;
};

/* A guest the journal knows whose memory did not come back at start (the fd store was emptied by a full
 * stop): listed as lost, its name kept, until an operator forgets it. Never recreated empty. */
struct lost_guest {
	uint64_t id;
	char name[GMEM_NAME_MAX + 1];
	uint64_t size, granule;
	uid_t owner;
	struct list_node node; /* manager.lost */
};

struct guest_table {
	struct guest **buckets;
	size_t n_buckets; /* a power of two */
	size_t count;
	struct list_node order; /* by id */
};

/* A zeroed guest with its lists empty; the caller fills in memory, map and grants. NULL: out of memory. */
struct guest *guest_alloc(uint64_t id, const char *name, uint64_t size, uint64_t granule, uid_t owner);

int guest_table_init(struct guest_table *t);
/* The table must be empty: guests are destroyed by their owner (manager.c), not by the table. */
void guest_table_deinit(struct guest_table *t);
struct guest *guest_table_find(const struct guest_table *t, const char *name);
/* -EEXIST when the name is taken; -ENOMEM. */
int guest_table_add(struct guest_table *t, struct guest *g);
void guest_table_remove(struct guest_table *t, struct guest *g);
/* The first guest with id > after in id order, or NULL. */
struct guest *guest_table_next(const struct guest_table *t, uint64_t after);

/* Unlinks an attachment from its guest and its client, and frees it. */
void attachment_free(struct attachment *a);

/* Whether [off, off+len) lies inside the guest on granule boundaries. */
int guest_check_range(const struct guest *g, uint64_t off, uint64_t len);
