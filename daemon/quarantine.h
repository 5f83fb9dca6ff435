/* SPDX-License-Identifier: MIT */
/*
 * quarantine: memory an IOMMU holder may still reach, kept from everyone until that holder lets go.
 *
 * The module cannot see IOMMU mappings (DESIGN.md, "What the kernel can and cannot audit"), so a device
 * participant with an `iommu` attachment that did not ack a to-private commit may still DMA into the
 * range: the range stays private whatever is asked (a to-shared of it is refused). A guest destroyed while
 * an `iommu` holder of it lives keeps its memory allocated in the backend (never scrubbed into the pool,
 * never handed to another guest). Each record names one holder and is released when that holder acks the
 * conversion it did not ack, or when its process is gone (a pidfd, never the socket: a device manager
 * that lost its connection may still have its IOMMU mappings). A destroyed guest's memory goes back to
 * the pool (the backend scrubs it) once its last record is released.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gmem-proto.h"
#include "list.h"

struct manager;
struct client;
struct guest;
struct conv_range;

/* A test-only build (gmemd-no-quarantine) never quarantines: the control that shows the tests catch it. */
#ifdef GMEM_TEST_NO_QUARANTINE
#define QUARANTINE_ENABLED 0
#else
#define QUARANTINE_ENABLED 1
#endif

struct quarantine_set {
	struct list_node records; /* struct quarantine_rec.node */
	struct list_node mems;    /* struct quarantine_mem.node: destroyed guests' memory */
};

/* Who a record is held for. pidfd is borrowed (duplicated inside). */
struct quarantine_holder {
	uint64_t client_id;
	pid_t pid;
	int pidfd;
	const char *name;
};

void quarantine_init(struct quarantine_set *q);
/* gmemd stops: records go, destroyed guests' memory is released without a destroy (kept, as guests are). */
void quarantine_deinit(struct manager *m);
/* Releases every record as if its holder had exited (destroyed guests' memory back to the pool). The
 * fuzzer's return to its baseline between inputs: its holders are itself and never exit. */
void quarantine_release_all(struct manager *m);

/*
 * A to-private commit of g ended without h's ack (conversion epoch/seq): ranges stay quarantined.
 * Return: 0 or -errno (logged: the range is then not protected).
 */
int quarantine_unacked(struct manager *m, struct guest *g, uint64_t epoch, uint64_t seq,
		       const struct quarantine_holder *h, const struct conv_range *ranges, size_t n);
/* A late ack of conversion (epoch, seq) by client c. Return: 1 when it released records, else 0. */
int quarantine_ack(struct manager *m, const struct client *c, uint64_t epoch, uint64_t seq);
/*
 * g is being destroyed. Return: true when its memory is now held by quarantine (the caller must not
 * destroy it in the backend; g->mem then belongs to the quarantine), false when nobody with an IOMMU
 * view of it lives.
 */
bool quarantine_guest_destroy(struct manager *m, struct guest *g);
/* Whether [off, off+len) of g is quarantined; *who (if not NULL) names a holder, for the error text. */
bool quarantine_overlaps(const struct manager *m, const struct guest *g, uint64_t off, uint64_t len,
			 char *who, size_t wholen);
/* Bytes quarantined: of g (NULL: over the pool, destroyed guests counted once each). */
uint64_t quarantine_bytes(const struct manager *m, const struct guest *g);
/*
 * The records a client may see (of g, or every record when g is NULL), up to max in out.
 * Return: how many were filled in.
 */
size_t quarantine_list(const struct manager *m, const struct client *who, const struct guest *g,
		       struct gmem_wire_quarantine *out, size_t max);
