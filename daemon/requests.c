/* SPDX-License-Identifier: MIT */
/*
 * requests: what each op does. client_handle_datagram() parses and validates a datagram through the
 * codec (so a handler only ever sees values inside the bounds of its field table), checks the hello
 * state, runs the handler and sends its reply or error. Handlers return 0 with the reply filled in,
 * or -errno with a message for the client.
 */
#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adopt.h"
#include "backend.h"
#include "client.h"
#include "conversion.h"
#include "delegation.h"
#include "fdstore.h"
#include "journal-state.h"
#include "sharemap.h"
#include "sharemap-publish.h"
#include "stats.h"
#include "envelope.h"
#include "guest.h"
#include "lifetime.h"
#include "log.h"
#include "manager.h"
#include "pid-attach.h"
#include "operator.h"
#include "policy.h"
#include "quarantine.h"
#include "util.h"

#ifndef GMEM_VERSION
#define GMEM_VERSION "0"
#endif

struct req {
	struct client *c;
	uint64_t id;   /* the request's id, for ops answered later */
	const void *args;
	void *reply;
	int fd;        /* GMEM_OP_FD_REPLY: the fd to send (owned until sent) */
	char err[GMEM_TEXT_MAX];
};

_printf_(3, 4) static int req_fail(struct req *q, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
	return err;
}

/* Looks a guest up for the caller, who needs the permissions in need (policy.h). Invisible and missing
 * guests look the same, so names cannot be probed. */
static int find_guest(struct req *q, const char *name, unsigned need, struct guest **ret)
{
	struct manager *m = q->c->m;
	struct guest *g = guest_table_find(&m->guests, name);
	unsigned have = g ? policy_perms(m, q->c, g) : 0;
	if (!(have & PERM_SEE))
		return req_fail(q, -ENOENT, "no guest named '%s'", name);
	if ((have & need) != need)
		return req_fail(q, -EPERM, "guest '%s': uid %u lacks %s", name, q->c->uid, policy_missing(have, need));
	*ret = g;
	return 0;
}

static void fill_info(struct manager *m, const struct guest *g, struct gmem_wire_guest *i)
{
	i->id = g->id;
	snprintf(i->name, sizeof(i->name), "%s", g->name);
	i->size = g->size;
	i->granule = g->granule;
	i->owner = g->owner;
	i->touched = m->bops->guest_touched(m->backend, g->mem);
	i->holders = g->n_files;
	i->attachments = g->n_attachments;
	i->leased = g->lease != NULL;
	i->delegations = delegation_count_guest(m, g);
	i->ephemeral = g->ephemeral;
}

static int op_hello(struct req *q)
{
	const struct gmem_hello_args *a = q->args;
	struct gmem_hello_reply *r = q->reply;
	struct client *c = q->c;
	struct manager *m = c->m;

	if (c->hello)
		return req_fail(q, -EALREADY, "hello was already sent on this connection");
	if (a->version != GMEM_PROTOCOL_VERSION)
		return req_fail(q, -EPROTONOSUPPORT, "protocol version %llu not supported (this gmemd speaks %d)",
				(unsigned long long)a->version, GMEM_PROTOCOL_VERSION);
	if (a->role == GMEM_ROLE_ADMIN && !policy_may_admin(m, c))
		return req_fail(q, -EPERM, "role admin needs uid 0 or the admin group (connected as uid %u)", c->uid);
	if (a->client_name[0] && !gmem_name_valid(a->client_name))
		return req_fail(q, -EINVAL, "client_name must be [A-Za-z0-9._-], 1..%d bytes", GMEM_NAME_MAX);

	c->hello = true;
	c->role = a->role;
	c->features = a->features & m->features;
	memcpy(c->name, a->client_name, sizeof(c->name));
	r->version = GMEM_PROTOCOL_VERSION;
	r->features = m->features;
	snprintf(r->server, sizeof(r->server), "gmemd %s", GMEM_VERSION);
	snprintf(r->backend, sizeof(r->backend), "%s", m->bops->name);
	r->enforcing = m->bops->enforcing;
	r->client_id = c->id;
	return 0;
}

static int fill_quarantine(struct req *q, uint64_t *bytes, struct gmem_wire_quarantine **ret, size_t *ret_n)
{
	struct manager *m = q->c->m;
	*bytes = quarantine_bytes(m, NULL);
	if (*bytes == 0)
		return 0;
	*ret = calloc(GMEM_QUARANTINE_LIST_MAX, sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	*ret_n = quarantine_list(m, q->c, NULL, *ret, GMEM_QUARANTINE_LIST_MAX);
	return 0;
}

static int op_status(struct req *q)
{
	struct manager *m = q->c->m;
	struct gmem_status_reply *r = q->reply;

	snprintf(r->server, sizeof(r->server), "gmemd %s", GMEM_VERSION);
	snprintf(r->backend, sizeof(r->backend), "%s", m->bops->name);
	r->enforcing = m->bops->enforcing;
	r->pool_size = m->bops->pool_size(m->backend);
	r->pool_used = m->bops->pool_used(m->backend);
	list_for_each(pos, &m->guests.order) {
		struct guest *g = list_entry(pos, struct guest, order);
		if (!(policy_perms(m, q->c, g) & PERM_SEE))
			continue;
		r->guests++;
		r->touched += m->bops->guest_touched(m->backend, g->mem);
	}
	r->clients = m->n_clients;
	if (m->bops->pool_nodes) {
		struct backend_node nodes[GMEM_NODES_MAX];
		size_t n = m->bops->pool_nodes(m->backend, nodes, GMEM_NODES_MAX);
		r->nodes = n ? calloc(n, sizeof(*r->nodes)) : NULL;
		for (size_t i = 0; r->nodes && i < n; i++)
			r->nodes[i] = (struct gmem_wire_node){ .node = (uint64_t)nodes[i].node, .total = nodes[i].total,
							       .free = nodes[i].free };
		r->n_nodes = r->nodes ? n : 0;
	}
	return fill_quarantine(q, &r->quarantined, &r->quarantine, &r->n_quarantine);
}

static int op_create(struct req *q)
{
	const struct gmem_create_args *a = q->args;
	struct client *c = q->c;
	struct manager *m = c->m;
	uint64_t granule = a->granule ? a->granule : GMEM_GRANULE_4K;
	int r;

	if (!gmem_name_valid(a->name))
		return req_fail(q, -EINVAL, "guest names are 1..%d bytes of [A-Za-z0-9._-], not starting with '.' "
				"or '-'", GMEM_NAME_MAX);
	if (granule != GMEM_GRANULE_4K && granule != GMEM_GRANULE_2M)
		return req_fail(q, -EINVAL, "granule must be 4096 or 2097152");
	if (a->size % granule)
		return req_fail(q, -EINVAL, "size %llu is not a multiple of the granule %llu",
				(unsigned long long)a->size, (unsigned long long)granule);
	if (guest_table_find(&m->guests, a->name))
		return req_fail(q, -EEXIST, "a guest named '%s' exists", a->name);
	if (manager_lost_find(m, a->name))
		return req_fail(q, -EEXIST, "a lost guest is named '%s' (gmemctl forget clears it)", a->name);
	/* The quota: one uid cannot take the pool, nor every slot. */
	uint64_t mine = 0, bytes = 0;
	list_for_each(pos, &m->guests.order) {
		struct guest *x = list_entry(pos, struct guest, order);
		if (x->owner == c->uid) {
			mine++;
			bytes += x->size;
		}
	}
	if (c->uid != 0 && mine >= m->cfg.quota_guests)
		return req_fail(q, -EDQUOT, "uid %u has %llu guests, its quota", c->uid, (unsigned long long)mine);
	if (c->uid != 0 && m->cfg.quota_bytes && a->size > m->cfg.quota_bytes - MIN(bytes, m->cfg.quota_bytes))
		return req_fail(q, -EDQUOT, "uid %u holds %llu bytes; %llu more would pass its quota of %llu", c->uid,
				(unsigned long long)bytes, (unsigned long long)a->size,
				(unsigned long long)m->cfg.quota_bytes);

	struct guest *g = guest_alloc(++m->next_guest_id, a->name, a->size, granule, c->uid);
	if (!g)
		return -ENOMEM;
	g->ephemeral = a->ephemeral;

	/* A new guest is all shared (DESIGN.md, "What private means here"). */
	r = sharemap_new(g->size / g->granule, SHARE_SHARED, &g->map);
	if (r < 0) {
		free(g);
		return r;
	}
	r = m->bops->guest_create(m->backend, g->id, g->name, g->size, g->granule, a->on_node ? (int)a->node : -1,
				  &g->mem);
	if (r < 0)
		sharemap_free(g->map);
	if (r == -ENOSPC) {
		free(g);
		return req_fail(q, r, "the pool has no room for %llu bytes (%llu of %llu in use)",
				(unsigned long long)a->size, (unsigned long long)m->bops->pool_used(m->backend),
				(unsigned long long)m->bops->pool_size(m->backend));
	}
	if (r < 0 && a->on_node && (r == -EINVAL || r == -EOPNOTSUPP)) {
		free(g);
		if (r == -EOPNOTSUPP)
			return req_fail(q, r, "the %s backend cannot place a guest on a node", m->bops->name);
		return req_fail(q, r, "the pool has no range on node %llu", (unsigned long long)a->node);
	}
	if (r < 0) {
		free(g);
		return req_fail(q, r, "backend: %s", strerror(-r));
	}
	/* The memory's identity goes into the journal: what the fd store gives back after a restart must
	 * be this very file. */
	int sfd = m->bops->guest_store_fd(m->backend, g->mem);
	struct stat st;
	if (sfd >= 0 && fstat(sfd, &st) == 0) {
		g->dev = (uint64_t)st.st_dev;
		g->ino = (uint64_t)st.st_ino;
	}
	/* Or, where the memory outlives gmemd by itself, the module guest it is. */
	if (m->bops->guest_ident)
		m->bops->guest_ident(m->backend, g->mem, &g->ident);
	r = jstate_append(m, jstate_guest_record(m, g));
	if (r == 0)
		r = guest_table_add(&m->guests, g);
	if (r < 0) {
		m->bops->guest_destroy(m->backend, g->mem);
		sharemap_free(g->map);
		free(g);
		return req_fail(q, r, "gmemd cannot record the guest in its journal: %s", strerror(-r));
	}
	notify_changed(m->notify);
	if (sfd >= 0)
		(void)fdstore_push(g->id, sfd);
	log_info("guest '%s' created: %llu bytes, granule %llu, owner uid %u%s", g->name,
		 (unsigned long long)g->size, (unsigned long long)g->granule, g->owner,
		 g->ephemeral ? ", ephemeral (bound to its first lease holder's process)" : "");
	fill_info(m, g, q->reply);
	return 0;
}

static int need_admin(struct req *q, const char *op)
{
	if (q->c->role != GMEM_ROLE_ADMIN)
		return req_fail(q, -EPERM, "%s is for connections with role admin", op);
	return 0;
}

static int op_destroy(struct req *q)
{
	const struct gmem_destroy_args *a = q->args;
	struct manager *m = q->c->m;
	struct guest *g;
	int r = find_guest(q, a->name, PERM_OWN, &g);
	if (r < 0)
		return r;
	if (!a->force) {
		manager_guest_destroy(m, g);
		return 0;
	}
	r = need_admin(q, "destroy --force");
	if (r < 0)
		return r;
	/* What force adds on memfd: the holders' connections are cut, so they take part in nothing more.
	 * Their files stay open in their processes; gmemd cannot take those back (kmod revokes them). */
	struct client **cut = calloc(m->n_clients ? m->n_clients : 1, sizeof(*cut));
	if (!cut)
		return -ENOMEM;
	size_t n = operator_holder_clients(m, g, q->c, cut, m->n_clients);
	struct log_fields f = { .guest = g->name, .client_pid = q->c->pid };
	log_struct(LOG_NOTICE, &f, "guest '%s' destroyed by force by client %llu (pid %d); %zu holder connections "
		   "evicted; their files stay open in their processes (%s backend)", g->name,
		   (unsigned long long)q->c->id, q->c->pid, n, m->bops->name);
	manager_guest_destroy(m, g);
	for (size_t i = 0; i < n; i++) {
		struct log_fields fe = { .guest = a->name, .client_pid = cut[i]->pid };
		log_struct(LOG_NOTICE, &fe, "client %llu (pid %d) evicted: it held guest '%s', destroyed by force",
			   (unsigned long long)cut[i]->id, cut[i]->pid, a->name);
		operator_evict(cut[i], "evicted: a guest it held was destroyed by force by an operator");
	}
	free(cut);
	return 0;
}

static int op_holders(struct req *q)
{
	const struct gmem_holders_args *a = q->args;
	struct guest *g;
	int r = need_admin(q, "holders");
	if (r < 0 || (r = find_guest(q, a->name, PERM_SEE, &g)) < 0)
		return r;
	struct log_fields f = { .guest = g->name, .client_pid = q->c->pid };
	log_struct(LOG_NOTICE, &f, "holders of guest '%s' listed by client %llu (pid %d)", g->name,
		   (unsigned long long)q->c->id, q->c->pid);
	return operator_holders(q->c->m, g, a->after, q->reply);
}

static int op_cancel(struct req *q)
{
	const struct gmem_cancel_args *a = q->args;
	struct guest *g = NULL;
	int r = need_admin(q, "cancel");
	if (r < 0)
		return r;
	r = conversion_cancel(q->c->m, q->c, a->epoch, a->seq, &g, q->err, sizeof(q->err));
	if (r < 0)
		return r;
	struct log_fields f = { .guest = g->name, .conversion_id = a->seq, .client_pid = q->c->pid };
	log_struct(LOG_NOTICE, &f, "conversion %llu of guest '%s' cancelled by client %llu (pid %d)",
		   (unsigned long long)a->seq, g->name, (unsigned long long)q->c->id, q->c->pid);
	return 0;
}

static int op_evict(struct req *q)
{
	const struct gmem_evict_args *a = q->args;
	int r = need_admin(q, "evict");
	if (r < 0)
		return r;
	struct client *c = operator_find_client(q->c->m, a->client_id);
	if (!c)
		return req_fail(q, -ENOENT, "no client %llu is connected", (unsigned long long)a->client_id);
	if (c == q->c)
		return req_fail(q, -EINVAL, "a client cannot evict itself: disconnect instead");
	/* Its files first, while gmemd still knows them: an evicted client must not keep the memory through
	 * a mapping (the kmod backend can take it; on memfd its files stay open in its process). */
	size_t revoked = operator_revoke_files(c);
	struct log_fields f = { .client_pid = c->pid };
	log_struct(LOG_NOTICE, &f, "client %llu (pid %d, uid %u) evicted by client %llu (pid %d); %zu files revoked "
		   "(%s backend)", (unsigned long long)c->id, c->pid, c->uid, (unsigned long long)q->c->id, q->c->pid,
		   revoked, q->c->m->bops->name);
	operator_evict(c, "evicted by an operator");
	return 0;
}

static int op_list(struct req *q)
{
	const struct gmem_list_args *a = q->args;
	struct gmem_list_reply *r = q->reply;
	struct manager *m = q->c->m;

	r->guests = calloc(GMEM_LIST_PAGE, sizeof(*r->guests));
	if (!r->guests)
		return -ENOMEM;
	for (struct guest *g = guest_table_next(&m->guests, a->after); g;
	     g = g->order.next == &m->guests.order ? NULL : list_entry(g->order.next, struct guest, order)) {
		if (!(policy_perms(m, q->c, g) & PERM_SEE))
			continue;
		if (r->n_guests == GMEM_LIST_PAGE) {
			r->next = r->guests[r->n_guests - 1].id;
			break;
		}
		fill_info(m, g, &r->guests[r->n_guests++]);
	}
	return 0;
}

static struct holder *holder_get(struct client *c, struct guest *g)
{
	list_for_each(pos, &c->holders) {
		struct holder *h = list_entry(pos, struct holder, client_node);
		if (h->guest == g)
			return h;
	}
	struct holder *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->guest = g;
	h->client = c;
	list_add_tail(&c->holders, &h->client_node);
	list_add_tail(&g->holders, &h->guest_node);
	return h;
}

/* A new file of g for the requester, into q->fd (which our caller sends, or closes on failure), counted on
 * its holder record. *ret_file_id (may be NULL): the backend's id of the file, 0 where it has none. */
static int open_file(struct req *q, struct guest *g, uint64_t *ret_file_id)
{
	struct manager *m = q->c->m;
	struct holder *h = holder_get(q->c, g);
	if (!h)
		return -ENOMEM;
	struct backend_holder who = { .tag = q->c->id, .pid = q->c->pid };
	uint64_t file_id = 0;
	int ret = m->bops->guest_open(m->backend, g->mem, &who, &q->fd, &file_id);
	if (ret < 0)
		return req_fail(q, ret, "backend cannot open guest '%s': %s", g->name, strerror(-ret));
	if (file_id) {
		/* Kept so that a yes-voter that leaves mid-conversion can have every file revoked (audit.c). */
		uint64_t *ids = reallocarray(h->file_ids, h->n_file_ids + 1, sizeof(*ids));
		if (!ids) {
			(void)m->bops->holder_revoke(m->backend, g->mem, file_id);
			return -ENOMEM;
		}
		ids[h->n_file_ids++] = file_id;
		h->file_ids = ids;
	}
	h->files++;
	g->n_files++;
	if (ret_file_id)
		*ret_file_id = file_id;
	return 0;
}

static int op_open(struct req *q)
{
	const struct gmem_guest_args *a = q->args;
	struct gmem_open_reply *r = q->reply;
	struct manager *m = q->c->m;
	struct guest *g;
	int ret = find_guest(q, a->name, PERM_USE, &g);
	if (ret < 0)
		return ret;

	ret = open_file(q, g, NULL);
	if (ret < 0)
		return ret;
	fill_info(m, g, &r->guest);
	r->fd = 0;
	return 0;
}

static int op_attach(struct req *q)
{
	const struct gmem_attach_args *a = q->args;
	struct gmem_attach_reply *r = q->reply;
	struct client *c = q->c;
	struct guest *g;
	int ret = find_guest(q, a->name, a->kind == GMEM_ATTACH_KVM ? PERM_USE | PERM_VMM : PERM_USE, &g);
	if (ret < 0)
		return ret;

	ret = guest_check_range(g, a->offset, a->length);
	if (ret == -EINVAL)
		return req_fail(q, ret, "offset and length must be multiples of the granule (%llu)",
				(unsigned long long)g->granule);
	if (ret < 0)
		return req_fail(q, ret, "range ends past the guest's size (%llu)", (unsigned long long)g->size);
	if (conversion_busy(g, a->offset, a->length))
		return req_fail(q, -EBUSY, "a conversion of this range is in flight; attach after its done event");
	if (a->pid) {
		/* A process that does not speak the protocol can only map: it cannot vote or ack. */
		if (a->kind != GMEM_ATTACH_MMAP)
			return req_fail(q, -EINVAL, "an attachment held for a process is of kind mmap");
		return pid_attach_new(c, g, (pid_t)a->pid, a->offset, a->length, &r->id, q->err, sizeof(q->err));
	}
	if (a->kind == GMEM_ATTACH_KVM && g->lease != c)
		return req_fail(q, -EPERM, "a kvm attachment needs the guest's vmm lease");
	if (c->n_attachments >= GMEM_ATTACH_MAX)
		return req_fail(q, -EDQUOT, "at most %d attachments per client", GMEM_ATTACH_MAX);

	struct attachment *at = calloc(1, sizeof(*at));
	if (!at)
		return -ENOMEM;
	at->id = ++c->m->next_attach_id;
	at->guest = g;
	at->client = c;
	at->offset = a->offset;
	at->length = a->length;
	at->kind = a->kind;
	list_add_tail(&g->attachments, &at->guest_node);
	list_add_tail(&c->attachments, &at->client_node);
	g->n_attachments++;
	c->n_attachments++;
	r->id = at->id;
	return 0;
}

static int op_detach(struct req *q)
{
	const struct gmem_detach_args *a = q->args;
	struct client *c = q->c;

	list_for_each(pos, &c->attachments) {
		struct attachment *at = list_entry(pos, struct attachment, client_node);
		if (at->id == a->id) {
			attachment_free(at);
			return 0;
		}
	}
	return req_fail(q, -ENOENT, "this client has no attachment %llu", (unsigned long long)a->id);
}

static int op_lease(struct req *q)
{
	const struct gmem_guest_args *a = q->args;
	struct client *c = q->c;
	struct guest *g;
	int r = find_guest(q, a->name, PERM_VMM, &g);
	if (r < 0)
		return r;
	if (c->role != GMEM_ROLE_VMM)
		return req_fail(q, -EPERM, "the vmm lease needs role vmm");
	if (g->lease == c)
		return req_fail(q, -EALREADY, "this client holds the lease already");
	if (g->lease)
		return req_fail(q, -EBUSY, "guest '%s' is leased by pid %d", g->name, g->lease->pid);
	if (g->ephemeral) {
		r = lifetime_bind(c->m, g, c);
		if (r < 0)
			return req_fail(q, r, "cannot watch process %d for the ephemeral guest '%s'", c->pid, g->name);
	}
	g->lease = c;
	return 0;
}

static int op_release(struct req *q)
{
	const struct gmem_guest_args *a = q->args;
	struct client *c = q->c;
	struct guest *g;
	int r = find_guest(q, a->name, PERM_SEE, &g);
	if (r < 0)
		return r;
	if (g->lease != c)
		return req_fail(q, -ENOENT, "this client does not hold the lease of '%s'", g->name);
	g->lease = NULL;
	/* kvm attachments exist only under the lease. */
	list_for_each_safe(pos, &c->attachments) {
		struct attachment *at = list_entry(pos, struct attachment, client_node);
		if (at->guest == g && at->kind == GMEM_ATTACH_KVM)
			attachment_free(at);
	}
	return 0;
}

static int op_convert(struct req *q)
{
	const struct gmem_convert_args *a = q->args;
	struct guest *g;
	int r = find_guest(q, a->name, PERM_VMM, &g);
	if (r < 0)
		return r;
	r = conversion_request(q->c->m, q->c, q->id, g, a, q->err, sizeof(q->err));
#ifdef GMEM_FUZZ_PLANT
	/* The fuzzers' control (tests/fuzz/meson.build): a crash behind a valid op with valid values that
	 * the structure-aware mutator must find within its bounded run. Never in a real build. */
	if (r == 0 && a->content == 1 && a->target == GMEM_SHARED && a->n_ranges >= 2) {
		fprintf(stderr, "GMEM_FUZZ_PLANT: the planted crash was reached\n");
		abort();
	}
#endif
	return r;
}

static int op_vote(struct req *q)
{
	return conversion_vote(q->c->m, q->c, q->args, q->err, sizeof(q->err));
}

static int op_ack(struct req *q)
{
	const struct gmem_ack_args *a = q->args;
	/* An ack after the conversion ended releases what it left quarantined. */
	if (quarantine_ack(q->c->m, q->c, a->epoch, a->seq))
		return 0;
	return conversion_ack(q->c->m, q->c, q->args, q->err, sizeof(q->err));
}

struct map_walk {
	struct gmem_map_reply *r;
	uint64_t granule;
	uint64_t last_end;
};

static int collect_run(uint64_t start, uint64_t len, enum share_state st, void *arg)
{
	struct map_walk *w = arg;
	if (w->r->n_runs == GMEM_MAP_PAGE) {
		w->r->next = start * w->granule;
		return 1;
	}
	struct gmem_wire_run *run = &w->r->runs[w->r->n_runs++];
	run->offset = start * w->granule;
	run->length = len * w->granule;
	run->state = st == SHARE_PRIVATE ? GMEM_PRIVATE : GMEM_SHARED;
	return 0;
}

static int op_map(struct req *q)
{
	const struct gmem_map_args *a = q->args;
	struct gmem_map_reply *r = q->reply;
	struct guest *g;
	int ret = find_guest(q, a->name, PERM_SEE, &g);
	if (ret < 0)
		return ret;
	if (a->offset % g->granule || a->offset >= g->size)
		return req_fail(q, -EINVAL, "offset must be granule-aligned and inside the guest");

	uint64_t n = g->size / g->granule;
	r->size = g->size;
	r->granule = g->granule;
	r->private_bytes = sharemap_count_not(g->map, 0, n, SHARE_SHARED) * g->granule;
	r->shared_bytes = g->size - r->private_bytes;
	r->runs = calloc(GMEM_MAP_PAGE, sizeof(*r->runs));
	if (!r->runs)
		return -ENOMEM;
	struct map_walk w = { .r = r, .granule = g->granule };
	uint64_t first = a->offset / g->granule;
	sharemap_walk(g->map, first, n - first, collect_run, &w);
	r->quarantined_bytes = quarantine_bytes(q->c->m, g);
	return 0;
}

static int op_watch(struct req *q)
{
	q->c->watching = true;
	return 0;
}

/* What grant and revoke share: the owner's guest, and the grant the request names. */
static int grant_target(struct req *q, struct guest **ret_g, struct grant *ret_want)
{
	const struct gmem_grant_args *a = q->args;
	int r = find_guest(q, a->name, PERM_OWN, ret_g);
	if (r < 0)
		return r;
	if (policy_parse_who(a->who, &ret_want->kind, &ret_want->id) < 0)
		return req_fail(q, -EINVAL, "'who' is uid:N or gid:N");
	if (a->role != GMEM_ROLE_DEVICE && a->role != GMEM_ROLE_VMM)
		return req_fail(q, -EINVAL, "a grant's role is device or vmm");
	ret_want->role = a->role;
	return 0;
}

static int op_grant(struct req *q)
{
	const struct gmem_grant_args *a = q->args;
	struct grant want;
	struct guest *g;
	int r = grant_target(q, &g, &want);
	if (r < 0)
		return r;
	for (size_t i = 0; i < g->n_grants; i++)
		if (g->grants[i].kind == want.kind && g->grants[i].id == want.id) {
			r = jstate_grant(q->c->m, g->id, &want, true);
			if (r < 0)
				return req_fail(q, r, "gmemd cannot record the grant in its journal: %s", strerror(-r));
			g->grants[i].role = want.role; /* a second grant replaces the first */
			return 0;
		}
	if (g->n_grants >= GUEST_GRANTS_MAX)
		return req_fail(q, -EDQUOT, "at most %d grants per guest", GUEST_GRANTS_MAX);
	struct grant *grown = realloc(g->grants, (g->n_grants + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	g->grants = grown;
	r = jstate_grant(q->c->m, g->id, &want, true);
	if (r < 0)
		return req_fail(q, r, "gmemd cannot record the grant in its journal: %s", strerror(-r));
	g->grants = grown;
	g->grants[g->n_grants++] = want;
	log_info("guest '%s': %s granted %s", g->name, a->who, gmem_role_names[a->role]);
	return 0;
}

static int op_revoke(struct req *q)
{
	const struct gmem_grant_args *a = q->args;
	struct grant want;
	struct guest *g;
	int r = grant_target(q, &g, &want);
	if (r < 0)
		return r;
	for (size_t i = 0; i < g->n_grants; i++)
		if (g->grants[i].kind == want.kind && g->grants[i].id == want.id && g->grants[i].role == want.role) {
			r = jstate_grant(q->c->m, g->id, &want, false);
			if (r < 0)
				return req_fail(q, r, "gmemd cannot record the revoke in its journal: %s", strerror(-r));
			g->grants[i] = g->grants[--g->n_grants];
			/* Files handed out stay open in their processes: on memfd gmemd cannot take them back.
			 * What the grantee can no longer do is ask: every request is checked again. */
			log_info("guest '%s': %s's %s grant revoked", g->name, a->who, gmem_role_names[a->role]);
			return 0;
		}
	return req_fail(q, -ENOENT, "guest '%s' has no %s grant for %s", g->name, gmem_role_names[a->role], a->who);
}

/* Connections: an admin (as policy.c has it: the role, root, gmemd's uid) sees every one, anyone else
 * those of its own uid. */
static int op_clients(struct req *q)
{
	const struct gmem_clients_args *a = q->args;
	struct gmem_clients_reply *r = q->reply;
	struct client *me = q->c;
	struct manager *m = me->m;
	bool all = LISTING_SEES_ALL || me->role == GMEM_ROLE_ADMIN || me->uid == 0 || me->uid == m->self_uid;

	r->clients = calloc(GMEM_CLIENTS_PAGE, sizeof(*r->clients));
	if (!r->clients)
		return -ENOMEM;
	/* The list is in connection order, which is id order: ids only grow. */
	list_for_each(pos, &m->clients) {
		const struct client *c = list_entry(pos, struct client, node);
		if (c->id <= a->after || (!all && c->uid != me->uid))
			continue;
		if (r->n_clients == GMEM_CLIENTS_PAGE) {
			r->next = r->clients[r->n_clients - 1].id;
			break;
		}
		struct gmem_wire_client *w = &r->clients[r->n_clients++];
		w->id = c->id;
		w->pid = (uint64_t)c->pid;
		w->uid = c->uid;
		w->gid = c->gid;
		w->hello = c->hello;
		w->role = c->hello ? c->role : 0;
		memcpy(w->client_name, c->name, sizeof(w->client_name));
		w->attachments = c->n_attachments;
		list_for_each(p2, &c->holders)
			w->files += list_entry(p2, struct holder, client_node)->files;
		list_for_each(p2, &m->guests.order)
			w->leases += list_entry(p2, struct guest, order)->lease == c;
		w->converts = c->n_converts;
		w->self = c == me;
	}
	return 0;
}

/* Conversions in flight and the recent ones, of the guests the caller may see. */
static int op_conversions(struct req *q)
{
	struct gmem_conversions_reply *r = q->reply;
	struct manager *m = q->c->m;

	r->in_flight = calloc(GMEM_IN_FLIGHT_MAX, sizeof(*r->in_flight));
	r->recent = calloc(GMEM_RECENT_MAX, sizeof(*r->recent));
	if (!r->in_flight || !r->recent)
		return -ENOMEM; /* both are freed with the reply */
	r->n_in_flight = conversion_list(m, q->c, r->in_flight, GMEM_IN_FLIGHT_MAX, &r->omitted);
	for (size_t i = 0; i < GMEM_RECENT_MAX; i++) {
		const struct recent_entry *e = recent_get(&m->recent, i);
		if (!e)
			break;
		/* Its guest as it is now, or, once gone, as its owner left it (no grants). */
		const struct guest *g = guest_table_find(&m->guests, e->w.guest);
		struct guest gone = { .id = e->guest_id, .owner = e->owner };
		if (!g || g->id != e->guest_id)
			g = &gone;
		if (LISTING_SEES_ALL || (policy_perms(m, q->c, g) & PERM_SEE))
			r->recent[r->n_recent++] = e->w;
	}
	return 0;
}

static bool holds_file(const struct client *c, const struct guest *g)
{
	list_for_each(pos, &c->holders) {
		const struct holder *h = list_entry(pos, struct holder, client_node);
		if (h->guest == g && h->files > 0)
			return true;
	}
	return false;
}

/* A holder opens the guest for a named grantee: a token the grantee redeems (delegation.h). */
static int op_delegate(struct req *q)
{
	const struct gmem_delegate_args *a = q->args;
	struct gmem_delegate_reply *r = q->reply;
	struct client *c = q->c;
	struct manager *m = c->m;
	enum grant_kind kind;
	uint32_t who;
	struct delegation *d;
	struct guest *g;
	int ret = find_guest(q, a->name, PERM_USE, &g);
	if (ret < 0)
		return ret;
	if (!holds_file(c, g))
		return req_fail(q, -EPERM, "delegating guest '%s' needs a file of it: open it first", g->name);
	if (policy_parse_who(a->who, &kind, &who) < 0)
		return req_fail(q, -EINVAL, "'who' is uid:N or gid:N");
	if (a->kind == GMEM_ATTACH_KVM)
		return req_fail(q, -EINVAL, "a delegated attachment is mmap or iommu (kvm goes with the lease)");
	ret = guest_check_range(g, a->offset, a->length);
	if (ret == -EINVAL)
		return req_fail(q, ret, "offset and length must be multiples of the granule (%llu)",
				(unsigned long long)g->granule);
	if (ret < 0)
		return req_fail(q, ret, "range ends past the guest's size (%llu)", (unsigned long long)g->size);
	bool granted = false;
	for (size_t i = 0; i < g->n_grants; i++)
		granted |= g->grants[i].kind == kind && g->grants[i].id == who;
	if (!granted)
		return req_fail(q, -ENOENT, "guest '%s' has no grant for %s: the owner grants it first", g->name, a->who);
	if (delegation_count_pending(m, c) >= GMEM_DELEGATIONS_MAX)
		return req_fail(q, -EDQUOT, "at most %d unredeemed delegations per connection", GMEM_DELEGATIONS_MAX);
	ret = delegation_new(m, c, g, kind, who, a->offset, a->length, a->kind, m->token_timeout_ms, &d);
	if (ret < 0)
		return req_fail(q, ret, "cannot make a delegation: %s", strerror(-ret));
	r->id = d->id;
	memcpy(r->token, d->token, sizeof(r->token));
	r->expires_ms = m->token_timeout_ms;
	log_info("guest '%s': delegation %llu of [%llu, +%llu) to %s made by pid %d", g->name,
		 (unsigned long long)d->id, (unsigned long long)a->offset, (unsigned long long)a->length, a->who, c->pid);
	return 0;
}

static int op_redeem(struct req *q)
{
	const struct gmem_redeem_args *a = q->args;
	struct gmem_redeem_reply *r = q->reply;
	struct client *c = q->c;
	struct manager *m = c->m;
	struct delegation *d = delegation_find_token(m, a->token);
	int ret;

	if (!d)
		return req_fail(q, -ENOENT, "no such delegation token (used, expired, withdrawn, or never made)");
	struct guest *g = d->g;
#ifndef GMEM_TEST_ANY_REDEEMER
	if (!policy_is(c, d->who_kind, d->who_id))
		return req_fail(q, -EPERM, "this delegation of '%s' is for %s:%u, not uid %u", g->name,
				d->who_kind == GRANT_UID ? "uid" : "gid", d->who_id, c->uid);
#endif
	/* The grant could have been revoked since the delegation was made. */
	unsigned have = policy_perms(m, c, g);
	if (!(have & PERM_USE))
		return req_fail(q, -EPERM, "guest '%s': uid %u lacks %s", g->name, c->uid, policy_missing(have, PERM_USE));
	if (conversion_busy(g, d->offset, d->length))
		return req_fail(q, -EBUSY, "a conversion of this range is in flight; redeem after its done event");
	if (c->n_attachments >= GMEM_ATTACH_MAX)
		return req_fail(q, -EDQUOT, "at most %d attachments per client", GMEM_ATTACH_MAX);

	struct attachment *at = calloc(1, sizeof(*at));
	if (!at)
		return -ENOMEM;
	ret = open_file(q, g, &d->file_id);
	if (ret < 0) {
		free(at);
		return ret;
	}
	at->id = ++m->next_attach_id;
	at->guest = g;
	at->client = c;
	at->offset = d->offset;
	at->length = d->length;
	at->kind = d->kind;
	at->delegation = d;
	list_add_tail(&g->attachments, &at->guest_node);
	list_add_tail(&c->attachments, &at->client_node);
	g->n_attachments++;
	c->n_attachments++;
	/* Single use: the token is gone, the record now lives as long as the attachment. */
	d->at = at;
	explicit_bzero(d->token, sizeof(d->token));
	event_free(d->expire);
	d->expire = NULL;
	fill_info(m, g, &r->guest);
	r->fd = 0;
	r->attachment = at->id;
	r->delegation = d->id;
	log_info("guest '%s': delegation %llu redeemed by pid %d uid %u as attachment %llu", g->name,
		 (unsigned long long)d->id, c->pid, c->uid, (unsigned long long)at->id);
	return 0;
}

static int op_undelegate(struct req *q)
{
	const struct gmem_undelegate_args *a = q->args;
	struct client *c = q->c;
	struct manager *m = c->m;
	struct delegation *d = delegation_find(m, a->id);
	unsigned have = d ? policy_perms(m, c, d->g) : 0;

	if (!(have & PERM_SEE))
		return req_fail(q, -ENOENT, "no delegation %llu", (unsigned long long)a->id);
	if (d->from != c && !(have & PERM_OWN))
		return req_fail(q, -EPERM, "delegation %llu: only the connection that made it, or the guest's owner, "
				"may end it", (unsigned long long)a->id);
	log_info("guest '%s': delegation %llu withdrawn by pid %d", d->g->name, (unsigned long long)d->id, c->pid);
	if (!d->at) {
		delegation_free(d);
		return 0;
	}
	/* Only the grantee's attachment ends, and on kmod its file is revoked; on memfd that file stays open
	 * in its process (PROTOCOL.md). */
	if (d->file_id && m->bops->holder_revoke)
		(void)m->bops->holder_revoke(m->backend, d->g->mem, d->file_id);
	struct gmem_revoked_event ev = { .attachment = d->at->id, .delegation = d->id };
	struct client *grantee = d->at->client;
	snprintf(ev.name, sizeof(ev.name), "%s", d->g->name);
	attachment_free(d->at); /* and with it d */
	client_send_event(grantee, GMEM_WIRE_EVENT_REVOKED, &ev);
	return 0;
}

static int op_resolve(struct req *q)
{
	const struct gmem_ack_args *a = q->args;
	struct gmem_resolve_reply *r = q->reply;
	struct manager *m = q->c->m;

	const struct replay_outcome *o = outcome_ring_find(&m->outcomes, a->epoch, a->seq);
	if (!o && a->epoch == m->epoch)
		return req_fail(q, -EINVAL, "conversion %llu is of this gmemd: its events say how it ends",
				(unsigned long long)a->seq);
	/* The guest may be gone since; one that exists but is hidden from the caller stays hidden. */
	struct guest *g = o ? guest_table_find(&m->guests, o->guest) : NULL;
	if (!o || (g && !(policy_perms(m, q->c, g) & PERM_SEE)))
		return req_fail(q, -ENOENT, "gmemd knows no conversion %llu of epoch %llu in doubt",
				(unsigned long long)a->seq, (unsigned long long)a->epoch);
	snprintf(r->guest, sizeof(r->guest), "%s", o->guest);
	r->outcome = o->outcome;
	return 0;
}

static bool may_see_lost(const struct client *c, const struct lost_guest *l)
{
	return c->uid == l->owner || c->uid == 0 || c->uid == c->m->self_uid || c->role == GMEM_ROLE_ADMIN;
}

static int op_list_lost(struct req *q)
{
	const struct gmem_list_args *a = q->args;
	struct gmem_list_reply *r = q->reply;
	struct manager *m = q->c->m;

	r->guests = calloc(GMEM_LIST_PAGE, sizeof(*r->guests));
	if (!r->guests)
		return -ENOMEM;
	list_for_each(pos, &m->lost) {
		struct lost_guest *l = list_entry(pos, struct lost_guest, node);
		if (l->id <= a->after || !may_see_lost(q->c, l))
			continue;
		if (r->n_guests == GMEM_LIST_PAGE) {
			r->next = r->guests[r->n_guests - 1].id;
			break;
		}
		struct gmem_wire_guest *w = &r->guests[r->n_guests++];
		w->id = l->id;
		snprintf(w->name, sizeof(w->name), "%s", l->name);
		w->size = l->size;
		w->granule = l->granule;
		w->owner = l->owner;
	}
	return 0;
}

static int op_publish_map(struct req *q)
{
	const struct gmem_guest_args *a = q->args;
	struct gmem_publish_map_reply *r = q->reply;
	struct guest *g;
	int ret = find_guest(q, a->name, PERM_VMM, &g);
	if (ret < 0)
		return ret;
	/* The vmm is who must check guest addresses; anyone else asks through the lease holder. */
	if (g->lease != q->c)
		return req_fail(q, -EPERM, "the published map goes to the guest's vmm lease holder");
	if (!g->pub) {
		const struct conv_range *busy = NULL;
		size_t n_busy = 0;
		(void)conversion_inflight_ranges(g, &busy, &n_busy);
		ret = pubmap_new(g->name, g->granule, g->map, busy, n_busy, &g->pub);
		if (ret < 0)
			return req_fail(q, ret, "cannot publish the map of '%s': %s", g->name, strerror(-ret));
		log_info("guest '%s': map published (%llu bytes, sparse)", g->name,
			 (unsigned long long)pubmap_file_bytes(g->pub));
	}
	ret = pubmap_open_reader(g->pub, &q->fd);
	if (ret < 0)
		return req_fail(q, ret, "cannot open the published map: %s", strerror(-ret));
	r->fd = 0;
	r->bytes = pubmap_file_bytes(g->pub);
	r->granule = g->granule;
	r->granules = g->size / g->granule;
	return 0;
}

static int op_stats(struct req *q)
{
	const struct gmem_list_args *a = q->args;
	struct gmem_stats_reply *r = q->reply;
	struct manager *m = q->c->m;

	r->guests = calloc(GMEM_STATS_PAGE, sizeof(*r->guests));
	if (!r->guests)
		return -ENOMEM;
	list_for_each(pos, &m->guests.order) {
		struct guest *g = list_entry(pos, struct guest, order);
		if (!(policy_perms(m, q->c, g) & PERM_SEE))
			continue;
		uint64_t qb = quarantine_bytes(m, g);
		r->quarantined_bytes += qb;
		if (g->id <= a->after || r->next)
			continue;
		if (r->n_guests == GMEM_STATS_PAGE) {
			r->next = r->guests[r->n_guests - 1].id;
			continue;
		}
		struct gmem_wire_guest_stats *w = &r->guests[r->n_guests++];
		const struct guest_stats *s = g->stats;
		w->id = g->id;
		snprintf(w->name, sizeof(w->name), "%s", g->name);
		w->quarantined_bytes = qb;
		list_for_each(p2, &g->conversions)
			w->queued++;
		stats_percentiles(s, &w->p50_us, &w->p99_us, &w->window);
		if (!s)
			continue;
		w->conversions = s->conversions;
		w->committed = s->committed;
		w->aborted = s->aborted;
		w->unverified = s->unverified;
		if (s->slowest_client_id) {
			w->slowest_client_id = s->slowest_client_id;
			w->slowest_pid = (uint64_t)s->slowest_pid;
			snprintf(w->slowest_name, sizeof(w->slowest_name), "%s", s->slowest_name);
			w->slowest_vote_us = s->slowest_vote_us;
		}
	}
	return 0;
}

static int op_forget(struct req *q)
{
	const struct gmem_guest_args *a = q->args;
	struct manager *m = q->c->m;

	struct lost_guest *l = manager_lost_find(m, a->name);
	if (l && may_see_lost(q->c, l)) {
		manager_forget_lost(m, l);
		return 0;
	}
	return req_fail(q, -ENOENT, "no lost guest named '%s'", a->name);
}

/* Orphans: module guests no journal names (the state dir was wiped). Admin only, like every op that
 * reaches memory gmemd does not hold a guest for. */
static int op_list_orphans(struct req *q)
{
	const struct gmem_list_args *a = q->args;
	int r = need_admin(q, "list-orphans");
	if (r < 0)
		return r;
	return orphans_list(q->c->m, a->after, q->reply, q->err, sizeof(q->err));
}

static int op_adopt(struct req *q)
{
	const struct gmem_adopt_args *a = q->args;
	struct manager *m = q->c->m;
	struct guest *g;
	int r = need_admin(q, "adopt");
	if (r < 0 || (r = orphan_adopt(m, a, &g, q->err, sizeof(q->err))) < 0)
		return r;
	struct log_fields f = { .guest = g->name, .client_pid = q->c->pid };
	log_struct(LOG_NOTICE, &f, "guest '%s' adopted from module guest %llu by client %llu (pid %d, uid %u)", g->name,
		   (unsigned long long)a->id, (unsigned long long)q->c->id, q->c->pid, q->c->uid);
	fill_info(m, g, q->reply);
	return 0;
}

static int op_destroy_orphan(struct req *q)
{
	const struct gmem_orphan_args *a = q->args;
	int r = need_admin(q, "destroy-orphan");
	if (r < 0 || (r = orphan_destroy(q->c->m, a->id, q->err, sizeof(q->err))) < 0)
		return r;
	struct log_fields f = { .client_pid = q->c->pid };
	log_struct(LOG_NOTICE, &f, "orphan module guest %llu destroyed by client %llu (pid %d, uid %u)",
		   (unsigned long long)a->id, (unsigned long long)q->c->id, q->c->pid, q->c->uid);
	return 0;
}

/* The feature an op came with: a gmemd without it answers as one that never heard of the op. */
static const uint32_t op_feature[_GMEM_OP_MAX] = {
	[GMEM_OP_PUBLISH_MAP] = GMEM_FEATURE_PUBLISH_MAP, [GMEM_OP_HOLDERS] = GMEM_FEATURE_OPERATOR,
	[GMEM_OP_CANCEL] = GMEM_FEATURE_OPERATOR,         [GMEM_OP_EVICT] = GMEM_FEATURE_OPERATOR,
	[GMEM_OP_STATS] = GMEM_FEATURE_STATS,             [GMEM_OP_LIST_ORPHANS] = GMEM_FEATURE_ORPHANS,
	[GMEM_OP_ADOPT] = GMEM_FEATURE_ORPHANS,           [GMEM_OP_DESTROY_ORPHAN] = GMEM_FEATURE_ORPHANS,
};

/* The optional request fields that came with a feature: without it they are unknown keys. */
static const char *field_without_feature(const struct manager *m, enum gmem_op op, const void *args)
{
	if (op == GMEM_OP_CREATE && ((const struct gmem_create_args *)args)->ephemeral &&
	    !(m->features & GMEM_FEATURE_EPHEMERAL))
		return "ephemeral";
	if (op == GMEM_OP_DESTROY && ((const struct gmem_destroy_args *)args)->force &&
	    !(m->features & GMEM_FEATURE_OPERATOR))
		return "force";
	return NULL;
}

static int (*const handlers[_GMEM_OP_MAX])(struct req *q) = {
	[GMEM_OP_HELLO] = op_hello,     [GMEM_OP_STATUS] = op_status, [GMEM_OP_CREATE] = op_create,
	[GMEM_OP_DESTROY] = op_destroy, [GMEM_OP_LIST] = op_list,     [GMEM_OP_OPEN] = op_open,
	[GMEM_OP_ATTACH] = op_attach,   [GMEM_OP_DETACH] = op_detach, [GMEM_OP_LEASE] = op_lease,
	[GMEM_OP_RELEASE] = op_release, [GMEM_OP_CONVERT] = op_convert, [GMEM_OP_VOTE] = op_vote,
	[GMEM_OP_ACK] = op_ack,         [GMEM_OP_MAP] = op_map,         [GMEM_OP_WATCH] = op_watch,
	[GMEM_OP_GRANT] = op_grant,     [GMEM_OP_REVOKE] = op_revoke,   [GMEM_OP_CLIENTS] = op_clients,
	[GMEM_OP_CONVERSIONS] = op_conversions,
	[GMEM_OP_DELEGATE] = op_delegate,
	[GMEM_OP_REDEEM] = op_redeem,   [GMEM_OP_UNDELEGATE] = op_undelegate,
	[GMEM_OP_RESOLVE] = op_resolve, [GMEM_OP_LIST_LOST] = op_list_lost, [GMEM_OP_FORGET] = op_forget,
	[GMEM_OP_PUBLISH_MAP] = op_publish_map, [GMEM_OP_HOLDERS] = op_holders, [GMEM_OP_CANCEL] = op_cancel,
	[GMEM_OP_EVICT] = op_evict,     [GMEM_OP_STATS] = op_stats,
	[GMEM_OP_LIST_ORPHANS] = op_list_orphans, [GMEM_OP_ADOPT] = op_adopt,
	[GMEM_OP_DESTROY_ORPHAN] = op_destroy_orphan,
};

void client_handle_datagram(struct client *c, const char *buf, size_t len)
{
	struct gmem_codec_error cerr = { 0 };
	struct json_object *root = NULL;
	struct gmem_envelope env;
	enum gmem_op op;
	char msg[GMEM_TEXT_MAX];
	int r;

	r = gmem_json_parse(buf, len, &root, &cerr);
	if (r < 0) {
		client_send_error(c, false, 0, r, cerr.msg);
		return;
	}
	r = gmem_envelope_parse_request(root, &env, &cerr);
	if (r < 0) {
		client_send_error(c, env.has_id, env.id, r, cerr.msg);
		goto out;
	}
	op = gmem_op_from_name(env.name);
	if (op != GMEM_OP_INVALID && op_feature[op] && !(c->m->features & op_feature[op]))
		op = GMEM_OP_INVALID;
	if (op == GMEM_OP_INVALID) {
		char quoted[65]; /* cut on a character boundary: the error goes back as JSON */
		gmem_utf8_copy(quoted, sizeof(quoted), env.name);
		snprintf(msg, sizeof(msg), "unknown op '%s'", quoted);
		client_send_error(c, true, env.id, -ENOSYS, msg);
		goto out;
	}
	if (!c->hello && !(gmem_ops[op].flags & GMEM_OP_BEFORE_HELLO)) {
		client_send_error(c, true, env.id, -EPROTO, "the first request must be hello");
		goto out;
	}

	/* Both structs are small (the list reply holds a pointer), so the stack is fine. */
	_Alignas(max_align_t) char args[512], reply[512];
	_Static_assert(sizeof(struct gmem_hello_args) <= 512 && sizeof(struct gmem_open_reply) <= 512 &&
			       sizeof(struct gmem_redeem_reply) <= 512 && sizeof(struct gmem_delegate_args) <= 512 &&
			       sizeof(struct gmem_status_reply) <= 512 && sizeof(struct gmem_attach_args) <= 512 &&
			       sizeof(struct gmem_vote_args) <= 512 && sizeof(struct gmem_convert_args) <= 512 &&
			       sizeof(struct gmem_map_reply) <= 512 && sizeof(struct gmem_conversions_reply) <= 512 &&
			       sizeof(struct gmem_clients_reply) <= 512 && sizeof(struct gmem_holders_args) <= 512 &&
			       sizeof(struct gmem_stats_reply) <= 512 && sizeof(struct gmem_destroy_args) <= 512 &&
			       sizeof(struct gmem_publish_map_reply) <= 512 && sizeof(struct gmem_adopt_args) <= 512 &&
			       sizeof(struct gmem_orphans_reply) <= 512,
		       "op structs outgrew the request buffers");
	memset(args, 0, sizeof(args));
	memset(reply, 0, sizeof(reply));
	r = gmem_decode(gmem_ops[op].args, env.body, args, GMEM_DECODE_STRICT, &cerr);
	if (r < 0) {
		client_send_error(c, true, env.id, r, cerr.msg);
		goto out;
	}

	const char *unknown = field_without_feature(c->m, op, args);
	if (unknown) {
		snprintf(msg, sizeof(msg), "unknown field '%s'", unknown);
		client_send_error(c, true, env.id, -EINVAL, msg);
		gmem_fields_release(gmem_ops[op].args, args);
		goto out;
	}
	struct req q = { .c = c, .id = env.id, .args = args, .reply = reply, .fd = -EBADF };
	r = handlers[op](&q);
	gmem_fields_release(gmem_ops[op].args, args);
	if (r == 0 && (gmem_ops[op].flags & GMEM_OP_DEFERRED)) {
		/* Taken: the reply goes out when the work ends. */
	} else if (r < 0) {
		client_send_error(c, true, env.id, r, q.err[0] ? q.err : strerror(-r));
		safe_close(q.fd);
	} else {
		char *out;
		size_t outlen;
		r = gmem_build_reply(env.id, op, reply, &out, &outlen);
		if (r < 0) {
			log_errno(LOG_ERR, r, "cannot build the reply to '%s'", gmem_ops[op].name);
			client_send_error(c, true, env.id, r, "cannot build the reply");
			safe_close(q.fd);
		} else {
			client_send(c, out, outlen, q.fd);
		}
	}
	gmem_fields_release(gmem_ops[op].reply, reply);
out:
	json_object_put(root);
}
