/* SPDX-License-Identifier: MIT */
/*
 * harness: process plumbing for the integration tests (see harness.h).
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double harness_scale(void)
{
	const char *s = getenv("GMEM_TEST_TIMEOUT_SCALE");
	double v = s ? strtod(s, NULL) : 1.0;
	return v >= 1.0 ? v : 1.0;
}

int64_t harness_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t harness_deadline(int64_t ms)
{
	return harness_now_ms() + (int64_t)((double)ms * harness_scale());
}

static int left_ms(int64_t deadline)
{
	int64_t l = deadline - harness_now_ms();
	return l < 0 ? 0 : (int)l;
}

const char *binary(const char *env)
{
	const char *p = getenv(env);
	if (!p || !*p) {
		fprintf(stderr, "harness: $%s is not set (run the tests through meson)\n", env);
		exit(1);
	}
	return p;
}

void gmemd_print_log(const struct gmemd *d)
{
	FILE *f = fopen(d->log, "r");
	char line[1024];
	if (!f)
		return;
	fprintf(stderr, "---- gmemd log ----\n");
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fprintf(stderr, "-------------------\n");
	fclose(f);
}

/* Splits $GMEM_TEST_WRAPPER on spaces into argv (a wrapper like "valgrind --leak-check=full ..."). */
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

void gmemd_start(struct gmemd *d, const char *const *extra)
{
	char tmpl[] = "/tmp/gmem-test-XXXXXX";
	char notify_path[320];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(d, 0, sizeof(*d));
	CHECK(mkdtemp(tmpl));
	snprintf(d->dir, sizeof(d->dir), "%s", tmpl);
	snprintf(d->socket, sizeof(d->socket), "%s/gmemd.sock", d->dir);
	snprintf(d->state, sizeof(d->state), "%s/state", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/gmemd.log", d->dir);
	snprintf(notify_path, sizeof(notify_path), "%s/notify", d->dir);

	int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(nfd >= 0);
	CHECK(strlen(notify_path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, notify_path, strlen(notify_path) + 1);
	CHECK(bind(nfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);

	d->started_ms = harness_now_ms();
	d->pid = fork();
	CHECK(d->pid >= 0);
	if (d->pid == 0) {
		char wbuf[1024];
		const char *argv[64];
		size_t n = wrapper_argv((char **)argv, 16, wbuf, sizeof(wbuf));
		argv[n++] = binary("GMEMD");
		argv[n++] = "--backend";
		argv[n++] = "memfd";
		argv[n++] = "--socket";
		argv[n++] = d->socket;
		argv[n++] = "--state-dir";
		argv[n++] = d->state;
		/* Off the bus unless a test asks (a later --bus wins): test daemons must never compete for
		 * the system bus name of a real gmemd. */
		argv[n++] = "--bus";
		argv[n++] = "none";
		for (size_t i = 0; extra && extra[i] && n < 62; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		int lfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (lfd >= 0)
			dup2(lfd, STDERR_FILENO);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("NOTIFY_SOCKET", notify_path, 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}

	int64_t deadline = harness_deadline(10000);
	for (;;) {
		struct pollfd p = { .fd = nfd, .events = POLLIN };
		int r = poll(&p, 1, 50 < left_ms(deadline) ? 50 : left_ms(deadline));
		if (r > 0) {
			char buf[4096];
			ssize_t k = recv(nfd, buf, sizeof(buf) - 1, 0);
			if (k > 0) {
				buf[k] = '\0';
				if (strstr(buf, "READY=1"))
					break;
			}
			continue;
		}
		int st;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			fprintf(stderr, "harness: gmemd exited before READY=1 (status 0x%x)\n", st);
			gmemd_print_log(d);
			exit(1);
		}
		if (harness_now_ms() >= deadline) {
			fprintf(stderr, "harness: gmemd not ready in time\n");
			gmemd_print_log(d);
			kill(d->pid, SIGKILL);
			exit(1);
		}
	}
	d->ready_ms = harness_now_ms() - d->started_ms;
	close(nfd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int reap(pid_t pid, int64_t timeout_ms)
{
	int64_t deadline = harness_deadline(timeout_ms);
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0)
			return -1;
		if (harness_now_ms() >= deadline) {
			fprintf(stderr, "harness: pid %d did not exit in time; killing it\n", pid);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return 128 + SIGKILL;
		}
		usleep(1000);
	}
}

int gmemd_stop(struct gmemd *d)
{
	kill(d->pid, SIGTERM);
	int st = reap(d->pid, 10000);
	if (st != 0)
		gmemd_print_log(d);
	nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return st;
}

void gmemd_kill(struct gmemd *d)
{
	kill(d->pid, SIGKILL);
	reap(d->pid, 10000);
}

int proc_fd_count(pid_t pid)
{
	char path[64];
	int n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *dir = opendir(path);
	if (!dir)
		return -1;
	for (struct dirent *e; (e = readdir(dir));)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

bool wait_until(bool (*cond)(void *arg), void *arg, int64_t timeout_ms)
{
	int64_t deadline = harness_deadline(timeout_ms);
	while (!cond(arg)) {
		if (harness_now_ms() >= deadline)
			return cond(arg);
		usleep(1000);
	}
	return true;
}

void child_start(struct child *c, int (*fn)(struct child_io *io, void *arg), void *arg)
{
	int down[2], up[2];
	CHECK(pipe2(down, O_CLOEXEC) == 0 && pipe2(up, O_CLOEXEC) == 0);
	fflush(NULL);
	c->pid = fork();
	CHECK(c->pid >= 0);
	if (c->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(down[1]);
		close(up[0]);
		struct child_io io = { .in = down[0], .out = up[1] };
		_exit(fn(&io, arg));
	}
	close(down[0]);
	close(up[1]);
	c->to_child = down[1];
	c->from_child = up[0];
}

int child_wait(struct child *c)
{
	int st = reap(c->pid, 30000);
	close(c->to_child);
	close(c->from_child);
	return st;
}

void msg_send(int fd, const char *line)
{
	/* One write: a reader that acts on the first byte and exits must not make the rest hit EPIPE. */
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s\n", line);
	CHECK(n > 0 && (size_t)n < sizeof(buf));
	CHECK(write(fd, buf, (size_t)n) == n);
}

bool msg_recv(int fd, char *buf, size_t size, int64_t timeout_ms)
{
	int64_t deadline = harness_deadline(timeout_ms);
	size_t n = 0;
	/* Byte by byte: lines are short, and nothing past the newline may be consumed. */
	while (n + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, left_ms(deadline)) <= 0)
			return false;
		char ch;
		if (read(fd, &ch, 1) != 1)
			return false;
		if (ch == '\n')
			break;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return true;
}

void msg_expect(int fd, const char *line, int64_t timeout_ms)
{
	char buf[256];
	if (!msg_recv(fd, buf, sizeof(buf), timeout_ms)) {
		fprintf(stderr, "harness: expected '%s', got EOF or timeout\n", line);
		exit(1);
	}
	if (strcmp(buf, line) != 0) {
		fprintf(stderr, "harness: expected '%s', got '%s'\n", line, buf);
		exit(1);
	}
}

static char *slurp(int fd)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	CHECK(b);
	for (;;) {
		if (n + 1 >= cap) {
			cap *= 2;
			b = realloc(b, cap);
			CHECK(b);
		}
		ssize_t k = read(fd, b + n, cap - n - 1);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	b[n] = '\0';
	return b;
}

int run_capture(const char *const *argv, char **out, char **err)
{
	char otmpl[] = "/tmp/gmem-out-XXXXXX", etmpl[] = "/tmp/gmem-err-XXXXXX";
	int ofd = mkstemp(otmpl), efd = mkstemp(etmpl);
	CHECK(ofd >= 0 && efd >= 0);
	unlink(otmpl);
	unlink(etmpl);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(ofd, STDOUT_FILENO);
		dup2(efd, STDERR_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = reap(pid, 30000);
	lseek(ofd, 0, SEEK_SET);
	lseek(efd, 0, SEEK_SET);
	*out = slurp(ofd);
	*err = slurp(efd);
	close(ofd);
	close(efd);
	return st;
}
