/* SPDX-License-Identifier: MIT */
/*
 * policy: the access rules of policy.h, in one place so every request checks them the same way.
 */
#include "policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "gmem-proto.h"
#include "guest.h"
#include "manager.h"

static bool in_group(const struct client *c, uint32_t gid)
{
	if (c->gid == gid)
		return true;
	for (size_t i = 0; i < c->n_groups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

bool policy_is(const struct client *c, enum grant_kind kind, uint32_t id)
{
	return kind == GRANT_UID ? c->uid == id : in_group(c, id);
}

bool policy_may_admin(const struct manager *m, const struct client *c)
{
	return c->uid == 0 || c->uid == m->self_uid || (m->cfg.admin_gid != (gid_t)-1 && in_group(c, m->cfg.admin_gid));
}

unsigned policy_perms(const struct manager *m, const struct client *c, const struct guest *g)
{
	if (c->uid == 0 || c->uid == m->self_uid || c->uid == g->owner || (c->hello && c->role == GMEM_ROLE_ADMIN))
		return PERM_ALL;
	unsigned p = 0;
	for (size_t i = 0; i < g->n_grants; i++) {
		const struct grant *gr = &g->grants[i];
		if (policy_is(c, gr->kind, gr->id))
			p |= PERM_SEE | PERM_USE | (gr->role == GMEM_ROLE_VMM ? PERM_VMM : 0);
	}
	return p;
}

int policy_parse_who(const char *s, enum grant_kind *kind, uint32_t *id)
{
	char *end;
	if (strncmp(s, "uid:", 4) == 0)
		*kind = GRANT_UID;
	else if (strncmp(s, "gid:", 4) == 0)
		*kind = GRANT_GID;
	else
		return -EINVAL;
	if (s[4] < '0' || s[4] > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s + 4, &end, 10);
	/* (uid_t)-1 means "no change" to the kernel: never a real identity. */
	if (errno || *end || v >= UINT32_MAX)
		return -EINVAL;
	*id = (uint32_t)v;
	return 0;
}

const char *policy_missing(unsigned have, unsigned need)
{
	unsigned lack = need & ~have;
	if (lack & PERM_OWN)
		return "ownership of the guest (or root)";
	if (lack & PERM_VMM)
		return have & PERM_USE ? "a vmm grant (this identity has a device grant)" : "a vmm grant";
	if (lack & PERM_USE)
		return "a device or vmm grant";
	return "nothing";
}
