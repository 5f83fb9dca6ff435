/* SPDX-License-Identifier: MIT */
/*
 * audit: what gmemd does with an enforcing backend's findings after a to-private commit. The backend
 * reports every mapping of the guest's files that survived its zap; the vmm lease holder's files are
 * exempt (they fault, which is how KVM learns), every other one is revoked for good and named. A
 * participant that voted yes and then left cannot be asked any more: all its files of the guest go.
 */
#pragma once

#include <stddef.h>

#include "backend.h"
#include "gmem-proto.h"

struct manager;
struct guest;
struct client;

/* Revokes the files the audit found, but the lease holder's. Fills out[0..max) with whom (the client
 * as it was when it opened the file; pid = the process that mapped it); returns how many were written. */
size_t audit_enforce(struct manager *m, struct guest *g, uint64_t seq, const struct backend_audit *a,
		     struct gmem_wire_party *out, size_t max);

/* The backend ids of every file of g that client c was handed, copied (*ids owned by the caller), so
 * they outlive the client: a yes-voter that left is revoked only once the commit is carried out. */
int audit_client_files(struct client *c, struct guest *g, uint64_t **ids, size_t *n);
/* Revokes those files (no-op on a backend that cannot revoke), logging whose they were. */
void audit_revoke_files(struct manager *m, struct guest *g, uint64_t seq, uint64_t client_id, pid_t pid,
			const uint64_t *ids, size_t n);
