/* SPDX-License-Identifier: MIT */
/*
 * util: cleanup attributes and ownership hand-off helpers shared by every userspace part of gmem.
 * A variable declared with _cleanup_free_ / _cleanup_close_ / _cleanup_json_ is released when it goes
 * out of scope unless its value was taken with TAKE_PTR / TAKE_FD.
 */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes and preserves errno, so a cleanup on an error path never clobbers the error being reported. */
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(closep)

#define TAKE_PTR(p)                                                                                      \
	({                                                                                               \
		__typeof__(p) _p = (p);                                                                  \
		(p) = NULL;                                                                              \
		_p;                                                                                      \
	})
#define TAKE_FD(fd)                                                                                      \
	({                                                                                               \
		int _fd = (fd);                                                                          \
		(fd) = -EBADF;                                                                           \
		_fd;                                                                                     \
	})

static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -EBADF;
}

/* -errno of the last failed libc call, never 0 (a libc that failed without setting errno is EIO). */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}
