/* SPDX-License-Identifier: MIT */
/*
 * fdstore: sd_notify's fd store for guest memfds (fdstore.h).
 */
#include "fdstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define NAME_PREFIX "guest-"

static bool parse_name(const char *name, uint64_t *ret)
{
	char *end;
	if (!name || strncmp(name, NAME_PREFIX, strlen(NAME_PREFIX)) != 0)
		return false;
	const char *p = name + strlen(NAME_PREFIX);
	if (*p < '1' || *p > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

int fdstore_collect(struct fdstore *s)
{
	char **names = NULL;

	memset(s, 0, sizeof(*s));
	/* Environment kept: the listener reads it next for a socket passed by socket activation. */
	int n = sd_listen_fds_with_names(false, &names);
	if (n <= 0)
		return n;
	s->fds = calloc((size_t)n, sizeof(*s->fds));
	s->ids = calloc((size_t)n, sizeof(*s->ids));
	s->taken = calloc((size_t)n, sizeof(*s->taken));
	if (!s->fds || !s->ids || !s->taken) {
		free(s->fds);
		free(s->ids);
		free(s->taken);
		memset(s, 0, sizeof(*s));
		n = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		uint64_t id;
		if (!parse_name(names[i], &id))
			continue;
		s->fds[s->n] = SD_LISTEN_FDS_START + i;
		s->ids[s->n++] = id;
	}
	n = (int)s->n;
out:
	for (char **p = names; p && *p; p++)
		free(*p);
	free(names);
	return n;
}

int fdstore_take(struct fdstore *s, uint64_t id)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->ids[i] != id || s->taken[i])
			continue;
		int fd = fcntl(s->fds[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return negative_errno();
		s->taken[i] = true;
		return fd;
	}
	return -ENOENT;
}

void fdstore_release(struct fdstore *s, bool drop_unknown)
{
	for (size_t i = 0; i < s->n; i++) {
		s->fds[i] = safe_close(s->fds[i]);
		if (s->taken[i] || !drop_unknown)
			continue;
		log_warning("the fd store held memory for guest %llu, which the journal does not know: dropped",
			    (unsigned long long)s->ids[i]);
		fdstore_remove(s->ids[i]);
	}
	free(s->fds);
	free(s->ids);
	free(s->taken);
	memset(s, 0, sizeof(*s));
}

int fdstore_push(uint64_t id, int fd)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=" NAME_PREFIX "%" PRIu64, id);
	static bool warned;
	int r = sd_pid_notify_with_fds(0, false, msg, &fd, 1);
	if (r < 0 && !warned) {
		/* Once: a service manager that is gone is gone for every guest alike. */
		warned = true;
		return log_errno(LOG_WARNING, r, "guest %llu: cannot park its memory in the fd store; guests will "
				 "not survive a restart of gmemd", (unsigned long long)id);
	}
	return r < 0 ? r : 0;
}

void fdstore_remove(uint64_t id)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=" NAME_PREFIX "%" PRIu64, id);
	(void)sd_notify(false, msg);
}
