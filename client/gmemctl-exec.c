/* SPDX-License-Identifier: MIT */
/*
 * gmemctl exec GUEST -- COMMAND...: runs a program that knows nothing of gmem (QEMU) as a declared
 * holder of a guest. gmemctl opens the guest, forks, and the child waits on a pipe before it execs;
 * meanwhile gmemctl asks gmemd to attach the whole guest on behalf of that child (gmemd checks it is
 * our child and watches it through a pidfd of its own). Only then is the child let go: it execs
 * COMMAND with the guest's file inherited, its number in $GMEM_FD and the guest's size in $GMEM_SIZE.
 *
 * The attachment belongs to the child, not to us: gmemctl disconnects at once and only waits, passing
 * on the signals it gets. If gmemctl dies before the go, the child reads end-of-file and exits without
 * running anything; if it dies after, the program runs on (init or a subreaper reaps it) and gmemd ends
 * the attachment when the program exits.
 */
#include "gmemctl-exec.h"

#include <errno.h>
#include <fcntl.h>
#include <gmem/gmem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { EXIT_REFUSED = 1, EXIT_CANNOT_RUN = 126, EXIT_NOT_FOUND = 127 };

static volatile pid_t child_pid;

static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

static void print_error(struct gmem_client *c, int err, const char *what, const char *guest)
{
	fprintf(stderr, "gmemctl: exec %s: %s: %s", guest, what, strerror(-err));
	const char *detail = c ? gmem_last_error(c) : "";
	if (detail && *detail) {
		fputs(" (", stderr);
		for (const char *s = detail; *s; s++) /* gmemd's text may quote others' input */
			fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, stderr);
		fputc(')', stderr);
	}
	fputc('\n', stderr);
}

/* The child, between fork and exec: waits for the go, then becomes the command. Never returns. */
_Noreturn static void run_child(int go, int report, int fd, char **command)
{
	char b;
	ssize_t n;
	do
		n = read(go, &b, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(EXIT_REFUSED); /* gmemctl was refused or is gone: nothing may run unattached */
	/* The one fd the command inherits; everything else of ours is close-on-exec. */
	if (fcntl(fd, F_SETFD, 0) == 0)
		execvp(command[0], command);
	int e = errno;
	(void)!write(report, &e, sizeof(e));
	_exit(e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN);
}

static int wait_child(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return EXIT_REFUSED;
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : EXIT_REFUSED;
}

int gmemctl_exec(struct gmem_client *c, const char *guest, char **command)
{
	struct gmem_guest_info info;
	char num[32];
	int fd, go[2], report[2];
	uint64_t id;

	int r = gmem_guest_open(c, guest, &fd, &info);
	if (r < 0) {
		print_error(c, r, "open", guest);
		gmem_disconnect(c);
		return EXIT_REFUSED;
	}
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) {
		print_error(NULL, -errno, "pipe", guest);
		gmem_disconnect(c);
		return EXIT_REFUSED;
	}
	/* Set here, inherited by the child: gmemctl itself has no use for them. */
	snprintf(num, sizeof(num), "%d", fd);
	setenv("GMEM_FD", num, 1);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)info.size);
	setenv("GMEM_SIZE", num, 1);

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		print_error(NULL, -errno, "fork", guest);
		gmem_disconnect(c);
		return EXIT_REFUSED;
	}
	if (pid == 0) {
		close(go[1]);
		close(report[0]);
		run_child(go[0], report[1], fd, command);
	}
	close(go[0]);
	close(report[1]);
	close(fd);

	r = gmem_attach_pid(c, guest, 0, info.size, pid, &id);
	if (r < 0) {
		print_error(c, r, "attach", guest);
		gmem_disconnect(c);
		close(go[1]); /* the child reads end-of-file and exits without running anything */
		close(report[0]);
		wait_child(pid);
		return EXIT_REFUSED;
	}
	/* The attachment is the child's now; this connection has nothing left to say. */
	gmem_disconnect(c);

	child_pid = pid;
	struct sigaction sa = { .sa_handler = forward };
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);

	(void)!write(go[1], "g", 1);
	close(go[1]);
	int e = 0;
	ssize_t n;
	do
		n = read(report[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == (ssize_t)sizeof(e))
		fprintf(stderr, "gmemctl: exec %s: cannot run '%s': %s\n", guest, command[0], strerror(e));
	return wait_child(pid);
}
