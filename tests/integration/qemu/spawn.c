/* SPDX-License-Identifier: MIT */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>

#include "harness.h"

void spawn_exec(struct spawned *s, const char *socket, const char *guest, const char *const *cmd,
		bool merge_stderr)
{
	int in[2], out[2];
	const char *argv[64] = { binary("GMEMCTL"), "--socket", socket, "exec", guest, "--" };
	size_t n = 6;

	for (size_t i = 0; cmd[i] && n < 63; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
	fflush(NULL);
	s->pid = fork();
	CHECK(s->pid >= 0);
	if (s->pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		if (merge_stderr)
			dup2(out[1], STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	s->to = in[1];
	s->from = out[0];
}

int spawn_wait(struct spawned *s)
{
	int st;
	while (waitpid(s->pid, &st, 0) < 0)
		CHECK(errno == EINTR);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
