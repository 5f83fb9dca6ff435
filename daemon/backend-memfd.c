/* SPDX-License-Identifier: MIT */
/*
 * backend-memfd: one sealed memfd per guest, no module, no privilege — the embedded default for
 * development and tests. It enforces nothing: any holder of a guest's fd can map, write or punch any
 * range at any time and reopen it through /proc, and can refill it after destroy. The pool is a byte
 * budget: the extent allocator accounts for it, and the memfds are sparse, so an untouched guest costs
 * only its (tiny) kernel object.
 *
 * Each holder gets a new open file description (a reopen through /proc), so one holder's fcntl flags
 * never leak into another's, as with the module's file per holder.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "conversion.h"
#include "log.h"
#include "pool.h"
#include "util.h"

struct backend {
	struct pool *pool;
};

struct backend_guest {
	int fd;
	uint64_t size;
	struct pool_extent *ext; /* owned; the budget this guest holds */
	size_t n_ext;
};

static uint64_t default_pool_size(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	uint64_t v = (pages > 0 && psz > 0) ? (uint64_t)pages * (uint64_t)psz : (1ULL << 30);
	return v & ~((2ULL << 20) - 1); /* whole 2 MiB granules */
}

static int memfd_open(const struct backend_config *cfg, struct backend **ret)
{
	struct backend *b = calloc(1, sizeof(*b));
	uint64_t size = cfg->pool_size ? cfg->pool_size : default_pool_size();
	int r;

	if (!b)
		return -ENOMEM;
	if (size == 0 || size % 4096) {
		free(b);
		return log_errno(LOG_ERR, -EINVAL, "memfd backend: pool size %llu is not a multiple of 4 KiB",
				 (unsigned long long)size);
	}
	r = pool_new(size, 4096, &b->pool);
	if (r < 0) {
		free(b);
		return log_errno(LOG_ERR, r, "memfd backend: cannot create the pool");
	}
	log_warning("memfd backend: guest memory is NOT protected — any holder of a guest's fd can map, write "
		    "or punch it at any time; shared/private is only what clients declare");
	*ret = b;
	return 0;
}

static void memfd_close(struct backend *b)
{
	if (!b)
		return;
	pool_free(b->pool);
	free(b);
}

static int memfd_guest_create(struct backend *b, uint64_t id, const char *name, uint64_t size, uint64_t granule,
			      int node, struct backend_guest **ret)
{
	struct backend_guest *g;
	char label[96];
	int r;

	if (node >= 0)
		return -EOPNOTSUPP; /* the kernel places memfd pages; gmemd cannot pin them to a node here */
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->fd = -EBADF;
	g->size = size;
	r = pool_alloc(b->pool, size, granule, &g->ext, &g->n_ext);
	if (r < 0)
		goto out_free;

	/* The name shows in /proc/PID/maps of every holder: make it say whose memory this is. */
	snprintf(label, sizeof(label), "gmem:%llu:%s", (unsigned long long)id, name);
	g->fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (g->fd < 0) {
		r = negative_errno();
		goto out_release;
	}
	if (ftruncate(g->fd, (off_t)size) < 0) {
		r = negative_errno();
		goto out_close;
	}
	/* Fixed size for life: a holder can neither shrink it under another's mapping (SIGBUS) nor grow it
	 * past the budget. F_SEAL_SEAL keeps a holder from adding seals that would break the daemon. */
	if (fcntl(g->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = negative_errno();
		goto out_close;
	}
	*ret = g;
	return 0;

out_close:
	close(g->fd);
out_release:
	pool_release(b->pool, g->ext, g->n_ext);
	free(g->ext);
out_free:
	free(g);
	return r;
}

static void memfd_guest_release(struct backend *b, struct backend_guest *g);

static void memfd_guest_destroy(struct backend *b, struct backend_guest *g)
{
	/* Return the memory now, whoever still holds the file: they read zeroes from here on. */
	if (fallocate(g->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)g->size) < 0)
		log_errno(LOG_WARNING, -errno, "memfd backend: punching a destroyed guest");
	memfd_guest_release(b, g);
}

static void memfd_guest_release(struct backend *b, struct backend_guest *g)
{
	close(g->fd);
	pool_release(b->pool, g->ext, g->n_ext);
	free(g->ext);
	free(g);
}

static int memfd_guest_open(struct backend *b, struct backend_guest *g, const struct backend_holder *who,
			    int *ret_fd, uint64_t *ret_holder_id)
{
	char path[64];
	(void)b;
	(void)who;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", g->fd);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	*ret_fd = fd;
	*ret_holder_id = 0;
	return 0;
}

static int memfd_guest_convert(struct backend *b, struct backend_guest *g, const struct conv_range *ranges,
			       size_t n, bool to_private, bool zero, struct backend_audit *audit)
{
	(void)b;
	(void)audit; /* nothing to audit: memfd cannot see who maps what */
	(void)to_private; /* nothing to enforce: private is what the participants declared */
	for (size_t i = 0; zero && i < n; i++)
		if (fallocate(g->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)ranges[i].offset,
			      (off_t)ranges[i].length) < 0)
			return negative_errno();
	return 0;
}

static int memfd_guest_store_fd(struct backend *b, struct backend_guest *g)
{
	(void)b;
	return g->fd;
}

static int memfd_guest_adopt(struct backend *b, uint64_t id, const char *name, uint64_t size, uint64_t granule,
			     int fd, const struct backend_ident *ident, struct backend_guest **ret)
{
	struct backend_guest *g = NULL;
	struct stat st;
	int r, seals;
	(void)id;
	(void)name;
	(void)ident;

	if (fd < 0)
		return -EINVAL; /* a memfd guest's memory comes back only as its file */

	/* Only what guest_create made: a memfd of exactly this size, sealed against resizing. */
	seals = fcntl(fd, F_GET_SEALS);
	if (fstat(fd, &st) < 0 || seals < 0) {
		r = negative_errno();
		goto out_close;
	}
	if ((uint64_t)st.st_size != size || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
		r = -EINVAL;
		goto out_close;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		r = -ENOMEM;
		goto out_close;
	}
	g->size = size;
	r = pool_alloc(b->pool, size, granule, &g->ext, &g->n_ext);
	if (r < 0)
		goto out_free;
	g->fd = fd;
	*ret = g;
	return 0;

out_free:
	free(g);
out_close:
	close(fd);
	return r;
}

static uint64_t memfd_guest_touched(struct backend *b, struct backend_guest *g)
{
	struct stat st;
	(void)b;
	return fstat(g->fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static uint64_t memfd_pool_size(struct backend *b)
{
	return pool_size(b->pool);
}

static uint64_t memfd_pool_used(struct backend *b)
{
	return pool_used(b->pool);
}

const struct backend_ops backend_memfd_ops = {
	.name = "memfd",
	.enforcing = false,
	.open = memfd_open,
	.close = memfd_close,
	.guest_create = memfd_guest_create,
	.guest_destroy = memfd_guest_destroy,
	.guest_release = memfd_guest_release,
	.guest_open = memfd_guest_open,
	.guest_convert = memfd_guest_convert,
	.guest_store_fd = memfd_guest_store_fd,
	.guest_adopt = memfd_guest_adopt,
	.guest_touched = memfd_guest_touched,
	.pool_size = memfd_pool_size,
	.pool_used = memfd_pool_used,
};
