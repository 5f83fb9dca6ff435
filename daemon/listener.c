/* SPDX-License-Identifier: MIT */
/*
 * listener: binding the control socket. A stale socket file (its gmemd died) is replaced; a live one
 * (another gmemd answers) is never stolen.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return negative_errno();
		*p = '/';
	}
	return 0;
}

static int from_systemd(int *ret_fd)
{
	int n = sd_listen_fds(true);
	if (n <= 0)
		return n;
	/* The fd store hands guest memfds back in the same list (fdstore.c): take the first socket. */
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
		if (sd_is_socket(fd, AF_UNSPEC, 0, -1) <= 0)
			continue;
		if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0)
			return log_errno(LOG_ERR, -EINVAL, "socket activation: fd %d is not a listening "
					 "SOCK_SEQPACKET UNIX socket", fd);
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return log_errno(LOG_ERR, -errno, "socket activation: fd %d", fd);
		*ret_fd = fd;
		return 1;
	}
	return 0;
}

int listener_open(const char *path, mode_t mode, gid_t gid, int *ret_fd, bool *ret_owned)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	int r;

	r = from_systemd(ret_fd);
	if (r < 0)
		return r;
	if (r > 0) {
		*ret_owned = false;
		log_info("listening on the socket passed by systemd");
		return 0;
	}

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_errno(LOG_ERR, -ENAMETOOLONG, "socket path %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = mkdir_parents(path);
	if (r < 0)
		return log_errno(LOG_ERR, r, "creating the directory of %s", path);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_errno(LOG_ERR, -errno, "socket");

	/* Is somebody serving it? A blocking probe; connect on a UNIX socket never waits for accept. */
	int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		r = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		int e = errno;
		close(probe);
		if (r == 0)
			return log_errno(LOG_ERR, -EADDRINUSE, "%s: another gmemd is serving this socket", path);
		if (e == ECONNREFUSED)
			(void)unlink(path);
	}

	mode_t old = umask(0777 & ~mode);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		return log_errno(LOG_ERR, -errno, "bind %s", path);
	if (chmod(path, mode) < 0)
		log_errno(LOG_WARNING, -errno, "chmod %s", path);
	if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0)
		return log_errno(LOG_ERR, -errno, "chown %s to group %u", path, gid);
	if (listen(fd, SOMAXCONN) < 0)
		return log_errno(LOG_ERR, -errno, "listen %s", path);
	log_info("listening on %s", path);
	*ret_fd = TAKE_FD(fd);
	*ret_owned = true;
	return 0;
}

void listener_close(int fd, const char *path, bool owned)
{
	if (fd < 0)
		return;
	/* Unlink before closing so a starting successor never finds our path dead-but-present. */
	if (owned)
		(void)unlink(path);
	close(fd);
}
