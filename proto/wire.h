/* SPDX-License-Identifier: MIT */
/*
 * wire: one datagram in or out of a SOCK_SEQPACKET socket, with file descriptors by SCM_RIGHTS.
 * Every send is MSG_NOSIGNAL (a peer that went away is -EPIPE, never SIGPIPE); every received fd is
 * O_CLOEXEC from birth (MSG_CMSG_CLOEXEC).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Sends buf with nfds fds (borrowed; at most 253). flags are extra send flags (MSG_DONTWAIT).
 * Return: 0 or -errno (-EAGAIN when a non-blocking socket is full). */
int gmem_wire_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds, int flags);

struct gmem_wire_in {
	size_t len;       /* bytes of payload stored in the buffer */
	bool truncated;   /* the datagram was larger than the buffer (its tail is lost) */
	bool ctrunc;      /* fds were sent but did not all fit (the kernel closed the rest) */
	size_t nfds;      /* fds stored in fds[]: owned by the caller from here on */
	size_t nother;    /* control messages that were not SCM_RIGHTS (ignored) */
};

/* Receives one datagram. fds may be NULL with maxfds 0: any fd that arrives anyway is counted in
 * nfds and closed. Return: 1 with *in filled, 0 on end of stream (peer closed), -errno. */
int gmem_wire_recv(int sock, void *buf, size_t size, int *fds, size_t maxfds, int flags, struct gmem_wire_in *in);
