/* SPDX-License-Identifier: MIT */
/*
 * pid-attach: see pid-attach.h. Who may be named: only a live child of the requesting process, with
 * the requester's uid. A child cannot be reaped, so its pid cannot be reused, before its parent waits
 * for it; gmemd opens the pidfd first, then reads the process's parent and uids from /proc, then checks
 * that both the process and the requester are still alive: had either exited in between, the pid read
 * could name another process. From then on the pidfd names the process whatever happens to its pid.
 */
#include "pid-attach.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "conversion.h"
#include "guest.h"
#include "log.h"
#include "manager.h"
#include "util.h"

struct proc_ids {
	pid_t ppid;
	uid_t ruid, euid;
};

static int read_status(pid_t pid, struct proc_ids *ret)
{
	char path[64], line[256];
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : negative_errno();
	while (fgets(line, sizeof(line), f)) {
		unsigned a, b;
		int p;
		if (sscanf(line, "PPid: %d", &p) == 1) {
			ret->ppid = p;
			found |= 1;
		} else if (sscanf(line, "Uid: %u %u", &a, &b) == 2) {
			ret->ruid = a;
			ret->euid = b;
			found |= 2;
		}
	}
	fclose(f);
	return found == 3 ? 0 : -ESRCH; /* a process caught mid-exit shows neither */
}

/* The command name, for messages only: it may be anything the process set, so it is never trusted. */
static void read_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	snprintf(buf, size, "?");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0) {
		snprintf(buf, size, "?");
		return;
	}
	buf[n] = 0;
	for (char *s = buf; *s; s++)
		if (*s == '\n' || (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = *s == '\n' ? 0 : '?';
}

static bool exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	return poll(&p, 1, 0) != 0; /* readable once the process has exited; an error counts as gone */
}

static void pid_attachment_free(struct pid_attachment *pa)
{
	list_del(&pa->guest_node);
	pa->guest->n_attachments--;
	if (pa->ev)
		event_free(pa->ev);
	safe_close(pa->pidfd);
	free(pa);
}

static void on_process_exit(evutil_socket_t fd, short what, void *arg)
{
	struct pid_attachment *pa = arg;
	(void)fd;
	(void)what;
	log_info("guest '%s': process %d exited, its attachment %llu ends", pa->guest->name, pa->pid,
		 (unsigned long long)pa->id);
	pid_attachment_free(pa);
}

int pid_attach_new(struct client *c, struct guest *g, pid_t pid, uint64_t off, uint64_t len, uint64_t *ret_id,
		   char *errmsg, size_t errlen)
{
	struct proc_ids ids;
	size_t n = 0;
	int r;

	list_for_each(pos, &g->pid_attachments)
		n++;
	if (n >= GMEM_PID_ATTACH_MAX) {
		snprintf(errmsg, errlen, "guest '%s' has %d attachments held for processes, the most allowed", g->name,
			 GMEM_PID_ATTACH_MAX);
		return -EDQUOT;
	}
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 && errno == ENOSYS) {
		/* Linux < 5.3, or a tool that intercepts syscalls (valgrind 3.19): no way to watch a process. */
		snprintf(errmsg, errlen, "gmemd cannot open pidfds here, so it cannot watch a process");
		return -EOPNOTSUPP;
	}
	if (pidfd < 0) {
		r = negative_errno();
		snprintf(errmsg, errlen, "no process %d: %s", (int)pid, strerror(-r));
		return r == -EINVAL ? -ESRCH : r; /* EINVAL: a thread, not a process */
	}
	if (c->pidfd < 0) {
		/* Without it, the requester's pid could already name another process. */
		snprintf(errmsg, errlen, "gmemd cannot track the requesting process, so not its children either");
		return -EPERM;
	}
	r = read_status(pid, &ids);
	if (r < 0 || exited(pidfd)) {
		snprintf(errmsg, errlen, "process %d exited", (int)pid);
		return -ESRCH;
	}
	if (exited(c->pidfd)) {
		snprintf(errmsg, errlen, "the requesting process exited");
		return -ESRCH;
	}
#ifndef GMEM_TEST_ANY_PID /* the control for test-qemu-exec: any process of the right uid passes */
	if (ids.ppid != c->pid) {
		snprintf(errmsg, errlen, "process %d is not a child of the requesting process %d", (int)pid, (int)c->pid);
		return -EPERM;
	}
#endif
	if (c->uid != 0 && (ids.ruid != c->uid || ids.euid != c->uid)) {
		snprintf(errmsg, errlen, "process %d does not run as uid %u", (int)pid, c->uid);
		return -EPERM;
	}

	struct pid_attachment *pa = calloc(1, sizeof(*pa));
	if (!pa)
		return -ENOMEM;
	pa->pidfd = -EBADF;
	pa->ev = event_new(c->m->base, pidfd, EV_READ, on_process_exit, pa);
	if (!pa->ev || event_add(pa->ev, NULL) < 0) {
		if (pa->ev)
			event_free(pa->ev);
		free(pa);
		return -ENOMEM;
	}
	pa->pidfd = TAKE_FD(pidfd);
	pa->id = ++c->m->next_attach_id;
	pa->guest = g;
	pa->pid = pid;
	pa->offset = off;
	pa->length = len;
	pa->requester_uid = c->uid;
	list_add_tail(&g->pid_attachments, &pa->guest_node);
	g->n_attachments++;
	log_info("guest '%s': attachment %llu [%llu, +%llu) held for process %d (child of client %llu)", g->name,
		 (unsigned long long)pa->id, (unsigned long long)off, (unsigned long long)len, (int)pid,
		 (unsigned long long)c->id);
	*ret_id = pa->id;
	return 0;
}

void pid_attach_guest_gone(struct guest *g)
{
	list_for_each_safe(pos, &g->pid_attachments)
		pid_attachment_free(list_entry(pos, struct pid_attachment, guest_node));
}

int pid_attach_check_private(const struct guest *g, const struct conv_range *r, size_t n, char *errmsg,
			     size_t errlen)
{
	list_for_each(pos, &g->pid_attachments) {
		const struct pid_attachment *pa = list_entry(pos, struct pid_attachment, guest_node);
		for (size_t i = 0; i < n; i++) {
			if (!(pa->offset < r[i].offset + r[i].length && r[i].offset < pa->offset + pa->length))
				continue;
			char comm[17];
			read_comm(pa->pid, comm, sizeof(comm));
			snprintf(errmsg, errlen,
				 "[%llu, +%llu) is held by process %d (%s) through attachment %llu, which cannot vote "
				 "(gmemctl exec); to-private waits until it exits",
				 (unsigned long long)pa->offset, (unsigned long long)pa->length, (int)pa->pid, comm,
				 (unsigned long long)pa->id);
			return -EBUSY;
		}
	}
	return 0;
}
