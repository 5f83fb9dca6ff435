/* SPDX-License-Identifier: MIT */
/*
 * kmod-events: gmem_pfn's generic-netlink events on gmemd's libevent loop. The module multicasts a
 * fault on a private page (guest, pid, offset) and a guest's release; joining its group needs
 * CAP_NET_ADMIN, the one capability gmemd keeps. gmemd logs them with the guest's name.
 */
#pragma once

#include <stdint.h>

struct event_base;
struct kmod_events;

/* The name of the guest the module knows by that id, or NULL when it is not one of ours. */
typedef const char *(*kmod_events_name_fn)(void *ctx, uint64_t module_guest_id);

/* Joins the events group. -errno (logged) when the family or the group is missing or joining is denied. */
int kmod_events_open(struct event_base *base, kmod_events_name_fn name_of, void *ctx, struct kmod_events **ret);
void kmod_events_close(struct kmod_events *e);
