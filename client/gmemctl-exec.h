/* SPDX-License-Identifier: MIT */
/* gmemctl exec: see gmemctl-exec.c. */
#pragma once

struct gmem_client;

/* Runs command (NULL-terminated) with guest's fd attached on its behalf; consumes c (disconnects it
 * before waiting). Return: the exit status for gmemctl — the command's own, 1 when gmemd refused, 126
 * or 127 when the command could not be run. */
int gmemctl_exec(struct gmem_client *c, const char *guest, char **command);
