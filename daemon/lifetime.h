/* SPDX-License-Identifier: MIT */
/*
 * lifetime: ephemeral guests, destroyed when the process of their vmm lease holder exits, so a crashed
 * VMM does not leak the pool. The binding is to a process, learnt from a pidfd watched on gmemd's loop,
 * never to a connection: a VMM that closes its socket but lives on may still map the guest. An
 * ephemeral guest is bound by its first lease, and moves to each new lease holder's process; until a
 * first lease it lives like any other guest.
 */
#pragma once

struct manager;
struct guest;
struct client;
struct lifetime;

/* Binds g to c's process (replacing an earlier binding). -ESRCH when c's process is already gone or
 * gmemd could not open a pidfd for it. */
int lifetime_bind(struct manager *m, struct guest *g, const struct client *c);
struct lifetime *lifetime_free(struct lifetime *l);
