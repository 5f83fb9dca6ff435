/* SPDX-License-Identifier: MIT */
/*
 * journal-ns: runs a command (gmemd) as if under systemd with a journal, without touching the host's:
 * in a private mount namespace with a tmpfs on /run, it binds /run/systemd/journal/socket itself, sets
 * $JOURNAL_STREAM to the command's stderr, and appends every datagram the command sends there (the
 * journal's native protocol, KEY=value lines) to $GMEM_TEST_JOURNAL_OUT, each record ended by a line
 * holding only "--". SIGTERM and SIGINT are passed on; it exits with the command's status. Test-only;
 * needs CAP_SYS_ADMIN (the tests run as root).
 *   journal-ns COMMAND [ARGS...]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int die(const char *what)
{
	fprintf(stderr, "journal-ns: %s: %s\n", what, strerror(errno));
	return 125;
}

/* Appends every queued datagram, each ended by a "--" line. */
static int drain(int s, int out, char *buf, size_t size)
{
	for (ssize_t n; (n = recv(s, buf, size, MSG_DONTWAIT)) > 0;) {
		bool nl = buf[n - 1] == '\n';
		if (write(out, buf, (size_t)n) != n || write(out, nl ? "--\n" : "\n--\n", nl ? 3 : 4) < 0)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *outpath = getenv("GMEM_TEST_JOURNAL_OUT");
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/socket" };
	struct stat st;
	sigset_t mask;
	char env[64], buf[65536];

	if (argc < 2 || !outpath)
		return fprintf(stderr, "usage: GMEM_TEST_JOURNAL_OUT=FILE journal-ns COMMAND [ARGS...]\n"), 2;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
		return die("a private /run");
	if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
		return die("mkdir /run/systemd/journal");
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return die("bind the journal socket");
	int out = open(outpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (out < 0 || fstat(STDERR_FILENO, &st) < 0)
		return die(outpath);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		return die("signalfd");

	pid_t pid = fork();
	if (pid < 0)
		return die("fork");
	if (pid == 0) {
		sigprocmask(SIG_UNBLOCK, &mask, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", env, 1);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = s, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return die("poll");
		if (p[0].revents && drain(s, out, buf, sizeof(buf)) < 0)
			return die("write");
		if (!p[1].revents)
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo != SIGCHLD) {
			kill(pid, (int)si.ssi_signo);
			continue;
		}
		int status;
		if (waitpid(pid, &status, WNOHANG) != pid)
			continue;
		/* Whatever it sent before it exited is still queued: take it too. */
		if (drain(s, out, buf, sizeof(buf)) < 0)
			return die("write");
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
}
