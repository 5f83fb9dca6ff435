/* SPDX-License-Identifier: MIT */
/*
 * policy: who may do what to a guest. A guest's owner (the uid that created it), root, gmemd's own uid
 * and admin connections may do everything; others only what a grant recorded on the guest gives them:
 *   device grant: see the guest, open it, attach mmap/iommu ranges (and so take part in conversions);
 *   vmm grant:    that, plus take the vmm lease, attach kvm, and request conversions.
 * Destroying a guest and changing its grants stay with its owner. Grants name a uid or a gid; a gid
 * matches a connection's primary or supplementary groups as captured at connect. Checked at every
 * request, so a revoke takes effect on the next one.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct manager;
struct client;
struct guest;

enum {
	PERM_SEE = 1 << 0,
	PERM_USE = 1 << 1, /* open, attach mmap/iommu */
	PERM_VMM = 1 << 2, /* lease, attach kvm, convert */
	PERM_OWN = 1 << 3, /* destroy, grant, revoke */
	PERM_ALL = PERM_SEE | PERM_USE | PERM_VMM | PERM_OWN,
};

enum grant_kind { GRANT_UID, GRANT_GID };

struct grant {
	enum grant_kind kind;
	uint32_t id;
	int role; /* GMEM_ROLE_DEVICE or GMEM_ROLE_VMM */
};

#define GUEST_GRANTS_MAX 64

unsigned policy_perms(const struct manager *m, const struct client *c, const struct guest *g);
/* Whether a connection of this identity may take the admin role. */
bool policy_may_admin(const struct manager *m, const struct client *c);
/* Whether the connection is the identity a grant of this kind and id names. */
bool policy_is(const struct client *c, enum grant_kind kind, uint32_t id);
/* "uid:N" or "gid:N". Return: 0 or -EINVAL. */
int policy_parse_who(const char *s, enum grant_kind *kind, uint32_t *id);
/* What a set of permissions lacks for need, in words ("a vmm grant"), for an EPERM message. */
const char *policy_missing(unsigned have, unsigned need);
