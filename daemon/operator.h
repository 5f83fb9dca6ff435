/* SPDX-License-Identifier: MIT */
/*
 * operator: what the admin-only ops act on — the holders of a guest (every connection with a file, an
 * attachment or the lease of it), and evicting a connection. requests.c checks the role and logs.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "gmem-proto.h"

struct manager;
struct guest;
struct client;

/* Fills one page of g's holders with client ids above after (r->holders is malloc'd: the reply's
 * release frees it). Return: 0 or -ENOMEM. */
int operator_holders(struct manager *m, const struct guest *g, uint64_t after, struct gmem_holders_reply *r);
/* The live connection with this id, or NULL. */
struct client *operator_find_client(struct manager *m, uint64_t id);
/* Tells c why (a shutdown event with the reason), then drops it like a disconnect. */
void operator_evict(struct client *c, const char *why);
/* On a backend that can take files back (kmod), revokes every file c was handed: each of its mappings
 * faults from then on, in whatever process holds it now. Return: how many were revoked. */
size_t operator_revoke_files(struct client *c);
/* Every connection other than except that holds a file, an attachment or the lease of g. */
size_t operator_holder_clients(struct manager *m, const struct guest *g, const struct client *except,
			       struct client **out, size_t max);
