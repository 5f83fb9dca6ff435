/* SPDX-License-Identifier: MIT */
/*
 * backend-kmod: guest memory from the gmem_pfn module (kmod/uapi/gmem_pfn.h). The module owns the
 * PFN ranges and allocates them to guests itself, so no bug here can give two guests the same memory;
 * this file only drives its ioctls on /dev/gmem_pfn. Private is enforced by the kernel: setting a range
 * private zaps every CPU mapping of it and returns the audit (the mappings that are still there).
 *
 * The module's guests outlive gmemd; each carries gmemd's guest id as its cookie, and the journal
 * records its module id and PFN base, so that a restarted gmemd takes back exactly that memory
 * (guest_adopt) with the shared/private state the module enforces (guest_private). Module guests no
 * journal names (the state dir was wiped) are listed (module_list) for an operator to adopt or destroy.
 *
 * Holder files outlive gmemd too: each carries a tag made of this run's random prefix and the client id,
 * so that the audit can tell a file of this gmemd's clients from one an earlier gmemd made (client ids
 * start again at 1 after a restart: a bare id would name a stranger).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
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

/* Private runs read per QUERY_STATE call. */
#define STATE_RUNS_PAGE 256

/* A holder tag: this run's prefix in the high half, the client id in the low half. */
#define TAG_CLIENT_MASK UINT64_C(0xffffffff)

struct backend {
	int fd; /* /dev/gmem_pfn */
	struct gmem_pfn_caps caps;
	struct kmod_events *events; /* NULL when the module's events cannot be heard */
	struct backend_guest *guests; /* ours, so that an event's module id gets a name */
	uint64_t run_tag; /* this run's holder tag prefix: random, never 0, low half clear */
};

struct backend_guest {
	uint64_t module_id; /* the module's guest id */
	uint64_t cookie;    /* what the module keeps with it */
	uint64_t base;      /* physical address of offset 0 */
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
	if (getrandom(&b->run_tag, sizeof(b->run_tag), GRND_NONBLOCK) != sizeof(b->run_tag))
		b->run_tag = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	b->run_tag &= ~TAG_CLIENT_MASK;
	if (!b->run_tag)
		b->run_tag = TAG_CLIENT_MASK + 1;
	if (!(b->caps.features & GMEM_PFN_FEAT_LIST_GUESTS))
		log_warning("kmod backend: gmem_pfn cannot list its guests (an older module): after a restart, guests "
			    "are found by the module id the journal recorded, with the journal's map; orphans cannot be "
			    "listed");
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

/* The module's guest module_id, with its first extent in *e (zeroed when it has none). */
static int query_guest(struct backend *b, uint64_t module_id, struct gmem_pfn_query_guest *q, struct gmem_pfn_extent *e)
{
	memset(e, 0, sizeof(*e));
	*q = (struct gmem_pfn_query_guest){
		.size = sizeof(*q), .guest_id = module_id, .extents = (uint64_t)(uintptr_t)e,
		.entry_size = sizeof(*e), .capacity = 1,
	};
	return kioctl(b->fd, GMEM_PFN_IOC_QUERY_GUEST, q);
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
	g->cookie = id;
	g->size = size;
	snprintf(g->name, sizeof(g->name), "%s", name);
	/* The PFN base goes into the journal: a restarted gmemd checks it is taking back the same memory. */
	struct gmem_pfn_extent e;
	struct gmem_pfn_query_guest q;
	if (query_guest(b, g->module_id, &q, &e) == 0 && q.count > 0)
		g->base = e.phys;
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
		.size = sizeof(h), .guest_id = g->module_id, .tag = b->run_tag | (who->tag & TAG_CLIENT_MASK),
		.owner_pid = (int32_t)who->pid,
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
static int audit_append(struct backend *b, struct backend_audit *out, const struct gmem_pfn_audit_entry *e, size_t n)
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
	for (size_t i = 0; i < n; i++) {
		bool ours = (e[i].holder_tag & ~TAG_CLIENT_MASK) == b->run_tag;
		out->hits[out->n++] = (struct backend_audit_hit){
			.holder_id = e[i].holder_id, .tag = ours ? e[i].holder_tag & TAG_CLIENT_MASK : 0,
			.owner_pid = e[i].owner_pid, .mapper_pid = e[i].mapper_pid, .offset = e[i].offset,
			.length = e[i].length, .foreign = !ours,
		};
	}
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
			r = audit_append(b, audit, entries, s.audit.count);
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

static void info_of(const struct gmem_pfn_guest_info *i, struct backend_module_guest *out)
{
	*out = (struct backend_module_guest){
		.module_id = i->guest_id, .cookie = i->cookie, .size = i->bytes, .granule = 1ULL << i->granule_shift,
		.private_bytes = i->private_bytes, .base = i->base, .node = i->node, .holders = i->nr_holders,
	};
}

static int kmod_module_list(struct backend *b, uint64_t after, struct backend_module_guest *out, size_t max,
			    size_t *ret_n, bool *ret_more)
{
	struct gmem_pfn_guest_info *v = NULL;
	uint32_t cap = (uint32_t)MIN(max, (size_t)GMEM_PFN_MAX_ENTRIES);
	int r;

	if (!(b->caps.features & GMEM_PFN_FEAT_LIST_GUESTS))
		return -EOPNOTSUPP;
	if (cap && !(v = calloc(cap, sizeof(*v))))
		return -ENOMEM;
	struct gmem_pfn_list_guests l = {
		.size = sizeof(l), .after = after, .guests = (uint64_t)(uintptr_t)v, .entry_size = sizeof(*v),
		.capacity = v ? cap : 0,
	};
	r = kioctl(b->fd, GMEM_PFN_IOC_LIST_GUESTS, &l);
	if (r == 0) {
		size_t n = MIN(l.count, cap);
		for (size_t i = 0; i < n; i++)
			info_of(&v[i], &out[i]);
		*ret_n = n;
		*ret_more = l.count > cap;
	}
	free(v);
	return r;
}

static struct backend_guest *find_ours(struct backend *b, uint64_t module_id)
{
	for (struct backend_guest *g = b->guests; g; g = g->next)
		if (g->module_id == module_id)
			return g;
	return NULL;
}

/* A journal of an older gmemd recorded no module id: the one module guest whose cookie is id and
 * whose size and granule match. Several are refused: which one holds the data cannot be told. */
static int find_by_cookie(struct backend *b, uint64_t id, uint64_t size, uint64_t granule, uint64_t *ret)
{
	struct backend_module_guest v[64];
	uint64_t after = 0, found = 0;
	size_t n;
	bool more;
	int r;

	do {
		r = kmod_module_list(b, after, v, ARRAY_SIZE(v), &n, &more);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++) {
			after = v[i].module_id;
			if (v[i].cookie != id || v[i].size != size || v[i].granule != granule || find_ours(b, after))
				continue;
			if (found)
				return -ESTALE;
			found = after;
		}
	} while (more && n);
	if (!found)
		return -ENOENT;
	*ret = found;
	return 0;
}

/*
 * Takes back a module guest after a gmemd restart, or an orphan an operator adopts: only if the
 * module still has it with the recorded size, granule, cookie and PFN base, so that a guest is never
 * handed memory that is not its own. The memory is untouched (the module kept it, contents and
 * shared/private state); what is adopted is a handle.
 *
 * The holder files of the guest from before the restart stay open in their processes and keep their
 * mappings: revoking them here would take a running VM's memory away on every gmemd upgrade. Nothing
 * is lost by keeping them: private is enforced by the module for every file alike, and their tags carry
 * an earlier run's prefix, so the to-private audit never takes one for a file of this run's lease
 * holder; any such file still mapping a range going private is revoked and named (audit.c).
 */
static int kmod_guest_adopt(struct backend *b, uint64_t id, const char *name, uint64_t size, uint64_t granule,
			    int fd, const struct backend_ident *ident, struct backend_guest **ret)
{
	struct gmem_pfn_query_guest q;
	struct gmem_pfn_extent e;
	uint64_t module_id = ident ? ident->module_id : 0;
	int shift = granule_shift(granule);
	int r;

	safe_close(fd); /* nothing travels by fd: the module kept the memory */
	if (shift < 0)
		return shift;
	if (!module_id) {
		r = find_by_cookie(b, id, size, granule, &module_id);
		if (r < 0)
			return r;
	}
	if (find_ours(b, module_id))
		return -EBUSY;
	r = query_guest(b, module_id, &q, &e);
	if (r < 0)
		return r;
	uint64_t cookie = ident && ident->module_id ? ident->cookie : id;
	if (q.bytes != size || q.granule_shift != (uint32_t)shift || q.cookie != cookie ||
	    (ident && ident->base && (!q.count || e.phys != ident->base))) {
		log_warning("kmod backend: module guest %llu is not the recorded one (size %llu, granule shift %u, "
			    "cookie %llu, base %#llx; recorded %llu, %d, %llu, %#llx)", (unsigned long long)module_id,
			    (unsigned long long)q.bytes, q.granule_shift, (unsigned long long)q.cookie,
			    (unsigned long long)(q.count ? e.phys : 0), (unsigned long long)size, shift,
			    (unsigned long long)cookie, (unsigned long long)(ident ? ident->base : 0));
		return -ESTALE;
	}
	struct backend_guest *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->module_id = module_id;
	g->cookie = q.cookie;
	g->base = q.count ? e.phys : 0;
	g->size = size;
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->next = b->guests;
	b->guests = g;
	if (q.nr_holders)
		log_notice("kmod backend: guest '%s' (module guest %llu) has %u holder files from before the restart: "
			   "they stay usable and are audited at every to-private commit", name,
			   (unsigned long long)module_id, q.nr_holders);
	*ret = g;
	return 0;
}

static void kmod_guest_ident(struct backend *b, struct backend_guest *g, struct backend_ident *ret)
{
	(void)b;
	*ret = (struct backend_ident){ .module_id = g->module_id, .cookie = g->cookie, .base = g->base };
}

/* The module's private runs, read a page at a time (a query says how many there are in all). */
static int kmod_guest_private(struct backend *b, struct backend_guest *g, struct conv_range **ret, size_t *ret_n)
{
	struct gmem_pfn_range page[STATE_RUNS_PAGE];
	struct conv_range *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t off = 0;
	int r = 0;

	if (!(b->caps.features & GMEM_PFN_FEAT_LIST_GUESTS))
		return -EOPNOTSUPP;
	while (off < g->size) {
		struct gmem_pfn_query_state s = {
			.size = sizeof(s), .guest_id = g->module_id, .offset = off, .length = g->size - off,
			.runs = (uint64_t)(uintptr_t)page, .entry_size = sizeof(page[0]), .capacity = STATE_RUNS_PAGE,
		};
		r = kioctl(b->fd, GMEM_PFN_IOC_QUERY_STATE, &s);
		if (r < 0)
			break;
		uint32_t got = MIN(s.count, (uint32_t)STATE_RUNS_PAGE);
		if (n + got > cap) {
			size_t nc = MAX(cap * 2, n + got);
			struct conv_range *grown = reallocarray(v, nc ? nc : 1, sizeof(*v));
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			v = grown;
			cap = nc;
		}
		for (uint32_t i = 0; i < got; i++)
			v[n++] = (struct conv_range){ .offset = page[i].offset, .length = page[i].length };
		if (s.count <= STATE_RUNS_PAGE)
			break;
		/* A run ending at the page's end may go on: the next query starts there and the runs join
		 * in the map (setting a granule private twice is the same). */
		off = page[got - 1].offset + page[got - 1].length;
	}
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int kmod_module_destroy(struct backend *b, uint64_t module_id)
{
	if (find_ours(b, module_id))
		return -EBUSY; /* a guest of gmemd's: destroyed through its own guest */
	struct gmem_pfn_guest_ref ref = { .size = sizeof(ref), .guest_id = module_id };
	return kioctl(b->fd, GMEM_PFN_IOC_DESTROY_GUEST, &ref);
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
	.keeps_memory = true,
	.open = kmod_open,
	.close = kmod_close,
	.guest_create = kmod_guest_create,
	.guest_destroy = kmod_guest_destroy,
	.guest_release = kmod_guest_release,
	.guest_open = kmod_guest_open,
	.holder_revoke = kmod_holder_revoke,
	.guest_convert = kmod_guest_convert,
	.guest_store_fd = kmod_guest_store_fd,
	.guest_adopt = kmod_guest_adopt,
	.guest_ident = kmod_guest_ident,
	.guest_private = kmod_guest_private,
	.module_list = kmod_module_list,
	.module_destroy = kmod_module_destroy,
	.guest_touched = kmod_guest_touched,
	.pool_size = kmod_pool_size,
	.pool_used = kmod_pool_used,
	.pool_nodes = kmod_pool_nodes,
};
