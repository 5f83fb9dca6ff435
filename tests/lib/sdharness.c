/* SPDX-License-Identifier: MIT */
/*
 * sdharness: a stand-in for systemd's notify socket and fd store (sdharness.h).
 */
#include "sdharness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void *pump_main(void *arg);

void sdh_init(struct sdh *h)
{
	char tmpl[] = "/tmp/gmem-sdh-XXXXXX";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(h, 0, sizeof(*h));
	CHECK(mkdtemp(tmpl));
	snprintf(h->d.dir, sizeof(h->d.dir), "%s", tmpl);
	snprintf(h->d.socket, sizeof(h->d.socket), "%s/gmemd.sock", h->d.dir);
	snprintf(h->d.state, sizeof(h->d.state), "%s/state", h->d.dir);
	snprintf(h->d.log, sizeof(h->d.log), "%s/gmemd.log", h->d.dir);
	snprintf(h->notify_path, sizeof(h->notify_path), "%s/notify", h->d.dir);
	h->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	CHECK(h->notify_fd >= 0);
	CHECK(strlen(h->notify_path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, h->notify_path, strlen(h->notify_path) + 1);
	CHECK(bind(h->notify_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	/* Big enough for a burst of FDSTORE messages from many creates. */
	int sz = 4 << 20;
	(void)setsockopt(h->notify_fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	CHECK(pthread_mutex_init(&h->lock, NULL) == 0);
	CHECK(pthread_create(&h->pump, NULL, pump_main, h) == 0);
}

static void store_remove(struct sdh *h, const char *name)
{
	for (size_t i = 0; i < h->n_fds; i++)
		if (strcmp(h->names[i], name) == 0) {
			close(h->fds[i]);
			h->fds[i] = h->fds[--h->n_fds];
			memcpy(h->names[i], h->names[h->n_fds], sizeof(h->names[i]));
			return;
		}
}

/* One notify datagram: assignments, one per line, and maybe fds. */
static bool read_one(struct sdh *h)
{
	char buf[4096];
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int) * 16)];
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b, .msg_controllen = sizeof(cbuf.b) };
	ssize_t k = recvmsg(h->notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (k < 0)
		return false;
	buf[k] = '\0';
	int fds[16];
	size_t nfds = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds + nfds, CMSG_DATA(cm), n * sizeof(int));
			nfds += n;
		}
	bool store = false, remove = false;
	char name[64] = "stored";
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "READY=1") == 0 && !h->ready) {
			h->ready = true;
			h->ready_ms = harness_now_ms();
		} else if (strncmp(line, "STATUS=", 7) == 0) {
			snprintf(h->status, sizeof(h->status), "%s", line + 7);
		} else if (strcmp(line, "FDSTORE=1") == 0) {
			store = true;
		} else if (strcmp(line, "FDSTOREREMOVE=1") == 0) {
			remove = true;
		} else if (strncmp(line, "FDNAME=", 7) == 0) {
			snprintf(name, sizeof(name), "%s", line + 7);
		}
	}
	if (remove)
		store_remove(h, name);
	for (size_t i = 0; i < nfds; i++) {
		if (!store || h->n_fds == SDH_FDS_MAX) {
			close(fds[i]);
			continue;
		}
		/* One entry per name, as FDNAME= makes them: a second push replaces the first. */
		store_remove(h, name);
		h->fds[h->n_fds] = fds[i];
		snprintf(h->names[h->n_fds], sizeof(h->names[0]), "%s", name);
		h->n_fds++;
	}
	return true;
}

void sdh_pump(struct sdh *h)
{
	pthread_mutex_lock(&h->lock);
	while (read_one(h))
		;
	pthread_mutex_unlock(&h->lock);
}

static void *pump_main(void *arg)
{
	struct sdh *h = arg;
	for (;;) {
		struct pollfd p = { .fd = h->notify_fd, .events = POLLIN };
		(void)poll(&p, 1, 20);
		pthread_mutex_lock(&h->lock);
		bool stop = h->stop;
		while (!stop && read_one(h))
			;
		pthread_mutex_unlock(&h->lock);
		if (stop)
			return NULL;
	}
}

static size_t wrapper_argv(char **argv, size_t max, char *buf, size_t size)
{
	const char *w = getenv("GMEM_TEST_WRAPPER");
	size_t n = 0;
	if (!w || !*w)
		return 0;
	snprintf(buf, size, "%s", w);
	for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok && n < max; tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	return n;
}

void sdh_spawn(struct sdh *h, const char *env, const char *const *extra, const char *const *envs)
{
	const char *bin = binary(env);
	pthread_mutex_lock(&h->lock);
	h->ready = false;
	h->exec_ms = harness_now_ms();
	fflush(NULL);
	h->d.pid = fork();
	CHECK(h->d.pid >= 0);
	if (h->d.pid != 0) {
		pthread_mutex_unlock(&h->lock);
		return;
	}

	char wbuf[1024], names[SDH_FDS_MAX * 64 + 1] = "", num[32];
	const char *argv[64];
	size_t n = wrapper_argv((char **)argv, 16, wbuf, sizeof(wbuf));
	argv[n++] = bin;
	argv[n++] = "--backend";
	argv[n++] = "memfd";
	argv[n++] = "--socket";
	argv[n++] = h->d.socket;
	argv[n++] = "--state-dir";
	argv[n++] = h->d.state;
	argv[n++] = "--bus";
	argv[n++] = "none";
	for (size_t i = 0; extra && extra[i] && n < 62; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	/* As systemd does: the stored fds at 3, 4, ... in store order. Moved out of the way first, so
	 * placing one never overwrites another still to be placed. */
	int high[SDH_FDS_MAX];
	for (size_t i = 0; i < h->n_fds; i++)
		high[i] = fcntl(h->fds[i], F_DUPFD_CLOEXEC, 3 + (int)h->n_fds + 16);
	for (size_t i = 0; i < h->n_fds; i++) {
		if (high[i] < 0 || dup2(high[i], 3 + (int)i) < 0)
			_exit(126);
		strcat(names, i ? ":" : "");
		strcat(names, h->names[i]);
	}
	if (h->n_fds) {
		snprintf(num, sizeof(num), "%zu", h->n_fds);
		setenv("LISTEN_FDS", num, 1);
		setenv("LISTEN_FDNAMES", names, 1);
		snprintf(num, sizeof(num), "%d", (int)getpid());
		setenv("LISTEN_PID", num, 1);
	} else {
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
		unsetenv("LISTEN_PID");
	}
	for (size_t i = 0; envs && envs[i]; i++)
		putenv((char *)envs[i]);
	setenv("NOTIFY_SOCKET", h->notify_path, 1);
	int lfd = open(h->d.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (lfd >= 0)
		dup2(lfd, STDERR_FILENO);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

bool sdh_wait_ready(struct sdh *h, int64_t timeout_ms)
{
	int64_t deadline = harness_deadline(timeout_ms);
	for (;;) {
		sdh_pump(h);
		pthread_mutex_lock(&h->lock);
		bool ready = h->ready;
		pthread_mutex_unlock(&h->lock);
		if (ready)
			break;
		int st;
		if (waitpid(h->d.pid, &st, WNOHANG) == h->d.pid) {
			h->d.pid = 0;
			return false;
		}
		if (harness_now_ms() >= deadline)
			return false;
		usleep(1000);
	}
	/* The store messages sent before READY=1 are in by now; take them too. */
	sdh_pump(h);
	return true;
}

void sdh_start(struct sdh *h, const char *env, const char *const *extra, const char *const *envs)
{
	sdh_spawn(h, env, extra, envs);
	if (!sdh_wait_ready(h, 10000)) {
		fprintf(stderr, "sdharness: gmemd did not say READY=1\n");
		gmemd_print_log(&h->d);
		if (h->d.pid > 0)
			kill(h->d.pid, SIGKILL);
		exit(1);
	}
}

static int reap(struct sdh *h, int64_t timeout_ms)
{
	int64_t deadline = harness_deadline(timeout_ms);
	int st;
	if (h->d.pid <= 0)
		return -1;
	for (;;) {
		sdh_pump(h);
		pid_t r = waitpid(h->d.pid, &st, WNOHANG);
		if (r == h->d.pid)
			break;
		if (harness_now_ms() >= deadline) {
			kill(h->d.pid, SIGKILL);
			waitpid(h->d.pid, &st, 0);
			break;
		}
		usleep(1000);
	}
	h->d.pid = 0;
	sdh_pump(h);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int sdh_wait_exit(struct sdh *h, int64_t timeout_ms)
{
	return reap(h, timeout_ms);
}

void sdh_kill(struct sdh *h)
{
	if (h->d.pid > 0)
		kill(h->d.pid, SIGKILL);
	(void)reap(h, 10000);
}

int sdh_stop(struct sdh *h)
{
	if (h->d.pid > 0)
		kill(h->d.pid, SIGTERM);
	return reap(h, 10000);
}

int sdh_stored(struct sdh *h, const char *name)
{
	int fd = -1;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n_fds; i++)
		if (strcmp(h->names[i], name) == 0)
			fd = h->fds[i];
	pthread_mutex_unlock(&h->lock);
	return fd;
}

void sdh_clear_store(struct sdh *h)
{
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->n_fds; i++)
		close(h->fds[i]);
	h->n_fds = 0;
	pthread_mutex_unlock(&h->lock);
}

void sdh_close_inherited(struct sdh *h)
{
	for (size_t i = 0; i < h->n_fds; i++)
		close(h->fds[i]);
	close(h->notify_fd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void sdh_cleanup(struct sdh *h)
{
	if (h->d.pid > 0)
		sdh_kill(h);
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->pump, NULL);
	sdh_clear_store(h);
	close(h->notify_fd);
	nftw(h->d.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
