/* SPDX-License-Identifier: MIT */
/*
 * listener: the listening SOCK_SEQPACKET socket, either received from systemd (socket activation) or
 * bound by gmemd itself. Only a socket gmemd bound is unlinked at exit.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Return: 0 with *ret_fd (non-blocking, CLOEXEC) and *ret_owned, or -errno (logged). */
int listener_open(const char *path, mode_t mode, gid_t gid, int *ret_fd, bool *ret_owned);
void listener_close(int fd, const char *path, bool owned);
