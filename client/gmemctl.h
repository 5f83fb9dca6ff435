/* SPDX-License-Identifier: MIT */
/*
 * gmemctl: what the command files share with gmemctl.c — the --json switch and the one way to report
 * an error (one line on stderr, gmemd's explanation in parentheses, exit status 1).
 */
#pragma once

#include <gmem/gmem.h>
#include <stdbool.h>
#include <stdio.h>

struct json_object;

extern bool arg_json;

__attribute__((format(printf, 3, 4))) int fail(struct gmem_client *c, int err, const char *fmt, ...);
/* Prints o pretty and releases it. */
void print_json(struct json_object *o);
/* Prints s with control characters shown as '?'. */
void print_clean(FILE *f, const char *s);

/* gmemctl-operator.c: admin commands. */
int cmd_holders(struct gmem_client *c, char **argv);
int cmd_cancel(struct gmem_client *c, char **argv);
int cmd_evict(struct gmem_client *c, char **argv);
/* gmemctl-export.c */
int cmd_export(struct gmem_client *c, char **argv);
int cmd_import(struct gmem_client *c, char **argv);
/* gmemctl-top.c */
int cmd_top(struct gmem_client *c, char **argv);
