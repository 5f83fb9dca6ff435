/* SPDX-License-Identifier: MIT */
/*
 * pid-attach: attachments held on behalf of a process rather than a connection — what `gmemctl exec`
 * asks for, so that a program that knows nothing of gmem (QEMU) is a declared holder of the guest for
 * exactly its own lifetime. gmemd learns of the process's exit from a pidfd it opened itself; the
 * connection that asked may be gone long before. Such a holder cannot vote: a to-private conversion
 * of a range it holds is refused, a to-shared one goes ahead without it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "list.h"

struct client;
struct conv_range;
struct event;
struct guest;

struct pid_attachment {
	uint64_t id; /* from the manager's attachment ids: one namespace with connection attachments */
	struct guest *guest;
	pid_t pid;
	int pidfd;        /* owned */
	struct event *ev; /* owned: fires once, when the process exits */
	uint64_t offset, length;
	uid_t requester_uid;
	struct list_node guest_node; /* guest->pid_attachments */
};

/*
 * Attaches [off, off+len) of g on behalf of pid, which must be a live child of c's process with c's
 * uid (any uid when c is root). Range, permission and conversion checks are the caller's (op_attach).
 * Return: 0 with *ret_id, or -errno with errmsg set: -ESRCH (no such process, or it exited),
 * -EPERM (not c's child, or another uid), -EDQUOT (GMEM_PID_ATTACH_MAX on g), -ENOMEM.
 */
int pid_attach_new(struct client *c, struct guest *g, pid_t pid, uint64_t off, uint64_t len, uint64_t *ret_id,
		   char *errmsg, size_t errlen);
/* The guest is going: its pid attachments end without a word (their processes keep their files). */
void pid_attach_guest_gone(struct guest *g);
/*
 * Whether a to-private conversion of ranges may go ahead: -EBUSY, with errmsg naming the process,
 * when one of them overlaps an attachment held on behalf of a process (it cannot vote), else 0.
 */
int pid_attach_check_private(const struct guest *g, const struct conv_range *r, size_t n, char *errmsg,
			     size_t errlen);
