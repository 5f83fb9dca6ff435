/* SPDX-License-Identifier: MIT */
/*
 * wire: the SCM_RIGHTS plumbing. Receiving is where fd leaks happen, so every fd the kernel installs
 * is either handed to the caller or closed here, including on MSG_CTRUNC.
 */
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "util.h"

#define WIRE_FDS_MAX 253 /* SCM_MAX_FD */

int gmem_wire_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds, int flags)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * WIRE_FDS_MAX)];
	} ctl;

	if (nfds > WIRE_FDS_MAX)
		return -EINVAL;
	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
		if (n >= 0)
			return (size_t)n == len ? 0 : -EMSGSIZE;
		if (errno != EINTR)
			return negative_errno();
	}
}

int gmem_wire_recv(int sock, void *buf, size_t size, int *fds, size_t maxfds, int flags, struct gmem_wire_in *in)
{
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * WIRE_FDS_MAX)];
	} ctl;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;

	memset(in, 0, sizeof(*in));
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();

	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			in->nother++;
			continue;
		}
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *p = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, p + i, sizeof(fd));
			if (fds && in->nfds < maxfds)
				fds[in->nfds] = fd;
			else
				safe_close(fd);
			in->nfds++;
		}
	}
	if (fds && in->nfds > maxfds) {
		/* The caller asked for fewer: it owns none of them, so close the ones stored too. */
		for (size_t i = 0; i < maxfds; i++)
			fds[i] = safe_close(fds[i]);
	}
	in->ctrunc = mh.msg_flags & MSG_CTRUNC;
	in->truncated = mh.msg_flags & MSG_TRUNC;
	in->len = (size_t)n < size ? (size_t)n : size;
	/* A zero-length datagram and end of stream both read 0 on SEQPACKET; only EOF has no flags/fds. */
	if (n == 0 && in->nfds == 0 && !in->ctrunc)
		return 0;
	return 1;
}
