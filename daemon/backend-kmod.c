/* SPDX-License-Identifier: MIT */
/*
 * backend-kmod: guest memory from the gmem_pfn module (kmod/uapi/gmem_pfn.h). The module owns the
 * PFN ranges and allocates them to guests itself, so no bug here can give two guests the same memory;
 * this file only drives its ioctls on /dev/gmem_pfn. Private is enforced by the kernel: setting a range
 * private zaps every CPU mapping of it and returns the audit (the mappings that are still there).
 *
 * The module's guests outlive gmemd; each carries gmemd's guest id as its cookie so that a restarted
 * gmemd can find them again (the journal names them).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backend.h"
#include "conversion.h"
#include "gmem_pfn.h"
#include "gmem-proto.h"
#include "kmod-events.h"
#include "log.h"
#include "util.h"

/* Ranges a pool query reads (the module takes at most 16 today). */
#define GMEM_PFN_MAX_RANGES_QUERY 64

/* First audit buffer: grows to what the module reports (it always says how many there are). */
#define AUDIT_INITIAL 16

struct backend {
	int fd; /* /dev/gmem_pfn */
	struct gmem_pfn_caps caps;
	struct kmod_events *events; /* NULL when the module's events cannot be heard */
	struct backend_guest *guests; /* ours, so that an event's module id gets a name */
};

struct backend_guest {
	uint64_t module_id; /* the module's guest id */
	uint64_t size;
	char name[GMEM_NAME_MAX_LEN + 1];
	struct backend_guest *next;
};

static const char *guest_name(void *ctx, uint64_t module_id)
{
	struct backend *b = ctx;
	for (struct backend_guest *g = b->guests; g; g = g->next)
		if (g->module_id == module_id)
			return g->name;
	return NULL;
}

static void unlink_guest(struct backend *b, struct backend_guest *g)
{
	for (struct backend_guest **p = &b->guests; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			return;
		}
}

static int kioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? negative_errno() : 0;
}

static int kmod_open(const struct backend_config *cfg, struct backend **ret)
{
	const char *path = cfg->device ? cfg->device : "/dev/" GMEM_PFN_DEVICE_NAME;
	struct backend *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;
	b->fd = open(path, O_RDWR | O_CLOEXEC);
	if (b->fd < 0) {
		r = log_errno(LOG_ERR, -errno, "kmod backend: cannot open %s (is gmem_pfn loaded, and is gmemd "
				  "running as the node's owner?)", path);
		goto out_free;
	}
	b->caps.size = sizeof(b->caps);
	r = kioctl(b->fd, GMEM_PFN_IOC_QUERY_CAPS, &b->caps);
	if (r < 0) {
		r = log_errno(LOG_ERR, r, "kmod backend: %s does not answer the capability query: not a gmem_pfn "
			      "module this gmemd understands", path);
		goto out_close;
	}
	/* DKMS rebuilds the module on its own schedule: a module of another ABI is refused, never guessed. */
	if (b->caps.abi_version != GMEM_PFN_ABI_VERSION) {
		r = log_errno(LOG_ERR, -EPROTONOSUPPORT, "kmod backend: gmem_pfn speaks ABI version %u, this gmemd "
			      "speaks %u: install matching versions of gmem and gmem-pfn-dkms",
			      b->caps.abi_version, GMEM_PFN_ABI_VERSION);
		goto out_close;
	}
	if (b->caps.features & GMEM_PFN_FEAT_TEST_BUILD) {
		const char *allow = getenv("GMEM_TEST_ALLOW_TEST_MODULE");
		if (!allow || strcmp(allow, "1") != 0) {
			r = log_errno(LOG_ERR, -EPERM, "kmod backend: gmem_pfn is a test-only build with a safety "
				      "check switched off; refusing it");
			goto out_close;
		}
		log_warning("kmod backend: running on a TEST-ONLY gmem_pfn build (GMEM_TEST_ALLOW_TEST_MODULE=1)");
	}
	if (cfg->pool_size)
		log_notice("kmod backend: --pool-size is ignored: the pool is the ranges the module was given");
	/* Without the events gmemd still enforces; it only cannot name who touched private memory. */
	if (cfg->base && (b->caps.features & GMEM_PFN_FEAT_GENL) &&
	    kmod_events_open(cfg->base, guest_name, b, &b->events) < 0)
		log_warning("kmod backend: running without the module's events");
	log_info("kmod backend: %s, ABI %u, features %#llx, %u ranges", path, b->caps.abi_version,
		 (unsigned long long)b->caps.features, b->caps.nr_ranges);
	*ret = b;
	return 0;

out_close:
	close(b->fd);
out_free:
	free(b);
	return r;
}

static void kmod_close(struct backend *b)
{
	if (!b)
		return;
	kmod_events_close(b->events);
	close(b->fd);
	free(b);
}

static int granule_shift(uint64_t granule)
{
	if (granule == 1ULL << GMEM_PFN_GRANULE_4K_SHIFT)
		return GMEM_PFN_GRANULE_4K_SHIFT;
	if (granule == 1ULL << GMEM_PFN_GRANULE_2M_SHIFT)
		return GMEM_PFN_GRANULE_2M_SHIFT;
	return -EINVAL;
}

static int kmod_guest_create(struct backend *b, uint64_t id, const char *name, uint64_t size, uint64_t granule,
			     int node, struct backend_guest **ret)
{
	struct gmem_pfn_create_guest c = { .size = sizeof(c), .bytes = size, .node = node, .cookie = id };
	int shift = granule_shift(granule);
	int r;

	if (shift < 0)
		return shift;
	c.granule_shift = (uint32_t)shift;
	struct backend_guest *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	r = kioctl(b->fd, GMEM_PFN_IOC_CREATE_GUEST, &c);
	if (r < 0) {
		free(g);
		return r;
	}
	g->module_id = c.guest_id;
	g->size = size;
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->next = b->guests;
	b->guests = g;
	*ret = g;
	return 0;
}

static void kmod_guest_destroy(struct backend *b, struct backend_guest *g)
{
	struct gmem_pfn_guest_ref ref = { .size = sizeof(ref), .guest_id = g->module_id };
	/* The module revokes every holder file and scrubs the memory before it returns it to the pool. */
	int r = kioctl(b->fd, GMEM_PFN_IOC_DESTROY_GUEST, &ref);
	if (r < 0)
		log_errno(LOG_ERR, r, "kmod backend: destroying module guest %llu", (unsigned long long)g->module_id);
	unlink_guest(b, g);
	free(g);
}

static void kmod_guest_release(struct backend *b, struct backend_guest *g)
{
	unlink_guest(b, g);
	free(g); /* the module keeps the guest: a restarted gmemd finds it by its cookie */
}

static int kmod_guest_open(struct backend *b, struct backend_guest *g, const struct backend_holder *who,
			   int *ret_fd, uint64_t *ret_holder_id)
{
	struct gmem_pfn_new_holder h = {
		.size = sizeof(h), .guest_id = g->module_id, .tag = who->tag, .owner_pid = (int32_t)who->pid,
	};
	int r = kioctl(b->fd, GMEM_PFN_IOC_NEW_HOLDER, &h);
	if (r < 0)
		return r;
	*ret_fd = h.fd;
	*ret_holder_id = h.holder_id;
	return 0;
}

static int kmod_holder_revoke(struct backend *b, struct backend_guest *g, uint64_t holder_id)
{
	struct gmem_pfn_holder_ref ref = { .size = sizeof(ref), .guest_id = g->module_id, .holder_id = holder_id };
	return kioctl(b->fd, GMEM_PFN_IOC_REVOKE_HOLDER, &ref);
}

/* Appends the module's audit entries to the caller's list (deduplicated by holder and range later). */
static int audit_append(struct backend_audit *out, const struct gmem_pfn_audit_entry *e, size_t n)
{
	if (!out || n == 0)
		return 0;
	if (out->n + n > out->cap) {
		size_t cap = out->cap ? out->cap : AUDIT_INITIAL;
		while (cap < out->n + n)
			cap *= 2;
		struct backend_audit_hit *h = reallocarray(out->hits, cap, sizeof(*h));
		if (!h)
			return -ENOMEM;
		out->hits = h;
		out->cap = cap;
	}
	for (size_t i = 0; i < n; i++)
		out->hits[out->n++] = (struct backend_audit_hit){
			.holder_id = e[i].holder_id, .tag = e[i].holder_tag, .owner_pid = e[i].owner_pid,
			.mapper_pid = e[i].mapper_pid, .offset = e[i].offset, .length = e[i].length,
		};
	return 0;
}

static int set_range(struct backend *b, struct backend_guest *g, const struct conv_range *rg, bool to_private,
		     bool zero, struct backend_audit *audit)
{
	struct gmem_pfn_audit_entry stack[AUDIT_INITIAL];
	struct gmem_pfn_audit_entry *entries = stack;
	uint32_t cap = AUDIT_INITIAL;
	int r;

	for (;;) {
		struct gmem_pfn_set_range s = {
			.size = sizeof(s),
			.flags = zero ? GMEM_PFN_SET_RANGE_ZERO : 0,
			.guest_id = g->module_id,
			.offset = rg->offset,
			.length = rg->length,
			.state = to_private ? GMEM_PFN_STATE_PRIVATE : GMEM_PFN_STATE_SHARED,
			.audit = { .entries = (uint64_t)(uintptr_t)entries, .entry_size = sizeof(*entries),
				   .capacity = cap },
		};
		r = kioctl(b->fd, GMEM_PFN_IOC_SET_RANGE, &s);
		if (r < 0)
			break;
		if (s.audit.count <= cap) {
			r = audit_append(audit, entries, s.audit.count);
			break;
		}
		/* More mappings than the buffer held: setting again is idempotent (the range is already
		 * private and zapped), and this time the audit fits. */
		if (s.audit.count > GMEM_PFN_MAX_ENTRIES) {
			r = -E2BIG;
			break;
		}
		if (entries != stack)
			free(entries);
		cap = s.audit.count;
		entries = calloc(cap, sizeof(*entries));
		if (!entries)
			return -ENOMEM;
		zero = false; /* already zeroed by the first call */
	}
	if (entries != stack)
		free(entries);
	return r;
}

static int kmod_guest_convert(struct backend *b, struct backend_guest *g, const struct conv_range *ranges, size_t n,
			      bool to_private, bool zero, struct backend_audit *audit)
{
	for (size_t i = 0; i < n; i++) {
		int r = set_range(b, g, &ranges[i], to_private, zero, audit);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The module keeps guests across a gmemd restart by itself: nothing goes to the fd store. */
static int kmod_guest_store_fd(struct backend *b, struct backend_guest *g)
{
	(void)b;
	(void)g;
	return -EOPNOTSUPP;
}

static uint64_t kmod_guest_touched(struct backend *b, struct backend_guest *g)
{
	(void)b;
	return g->size; /* reserved physical memory: all of it is the guest's from creation on */
}

static int query_pool(struct backend *b, struct gmem_pfn_query_pool *q)
{
	*q = (struct gmem_pfn_query_pool){ .size = sizeof(*q) };
	return kioctl(b->fd, GMEM_PFN_IOC_QUERY_POOL, q);
}

static uint64_t kmod_pool_size(struct backend *b)
{
	struct gmem_pfn_query_pool q;
	return query_pool(b, &q) == 0 ? q.total_bytes : 0;
}

static uint64_t kmod_pool_used(struct backend *b)
{
	struct gmem_pfn_query_pool q;
	return query_pool(b, &q) == 0 ? q.total_bytes - q.free_bytes : 0;
}

static size_t kmod_pool_nodes(struct backend *b, struct backend_node *out, size_t max)
{
	struct gmem_pfn_pool_range rg[GMEM_PFN_MAX_RANGES_QUERY];
	struct gmem_pfn_query_pool q = {
		.size = sizeof(q), .entry_size = sizeof(rg[0]), .ranges = (uint64_t)(uintptr_t)rg,
		.capacity = GMEM_PFN_MAX_RANGES_QUERY,
	};
	size_t n = 0;

	if (kioctl(b->fd, GMEM_PFN_IOC_QUERY_POOL, &q) < 0)
		return 0;
	for (uint32_t i = 0; i < q.count && i < GMEM_PFN_MAX_RANGES_QUERY; i++) {
		if (rg[i].node < 0)
			continue; /* given without @node: counted in the pool, not per node */
		size_t j = 0;
		while (j < n && out[j].node != rg[i].node)
			j++;
		if (j == n) {
			if (n == max)
				continue;
			out[n++] = (struct backend_node){ .node = rg[i].node };
		}
		out[j].total += rg[i].bytes;
		out[j].free += rg[i].free_bytes;
	}
	return n;
}

const struct backend_ops backend_kmod_ops = {
	.name = "kmod",
	.enforcing = true,
	.open = kmod_open,
	.close = kmod_close,
	.guest_create = kmod_guest_create,
	.guest_destroy = kmod_guest_destroy,
	.guest_release = kmod_guest_release,
	.guest_open = kmod_guest_open,
	.holder_revoke = kmod_holder_revoke,
	.guest_convert = kmod_guest_convert,
	.guest_store_fd = kmod_guest_store_fd,
	/* .guest_adopt: not yet. The module still holds a restarted gmemd's guests (by cookie), but finding
	 * them again needs the module's guest list; until then replay lists them lost, never empty. */
	.guest_touched = kmod_guest_touched,
	.pool_size = kmod_pool_size,
	.pool_used = kmod_pool_used,
	.pool_nodes = kmod_pool_nodes,
};
