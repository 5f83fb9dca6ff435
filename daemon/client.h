/* SPDX-License-Identifier: MIT */
/*
 * client: one connection to gmemd. Holds the identity captured at connect (never re-read: a socket
 * passed to another process keeps its connector's identity), the role asked for at hello, the client's
 * attachments and holder records, and an output queue for when the peer reads slower than we write.
 *
 * A client is never freed while one of its callbacks runs: client_kill() marks it dead and the manager's
 * reaper frees it from a fresh loop iteration.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "gmem-proto.h"
#include "list.h"

struct manager;
struct event;
struct guest;

#define CLIENT_OUTQ_MAX (4u << 20) /* bytes queued for a peer that does not read before we drop it */

struct client {
	struct manager *m;
	uint64_t id;
	int fd;
	struct event *read_ev, *write_ev;
	bool dead;

	uid_t uid;
	gid_t gid;
	pid_t pid;
	gid_t *groups; /* owned, SO_PEERGROUPS */
	size_t n_groups;
	int pidfd; /* for learning of process exit; -EBADF if the process was already gone */

	bool hello;
	int role; /* enum gmem_role */
	uint32_t features;
	char name[GMEM_NAME_MAX + 1];

	struct list_node node;
	struct list_node attachments; /* struct attachment.client_node */
	struct list_node holders;     /* struct holder.client_node */
	size_t n_attachments;
	size_t n_converts; /* convert requests not yet answered */
	bool watching;     /* receives conversion events (watch) */

	struct list_node outq;
	size_t outq_bytes;
};

/* Takes ownership of fd (a connected, non-blocking SEQPACKET socket). */
int client_new(struct manager *m, int fd, struct client **ret);
/* Frees now: only the reaper and manager teardown call this. */
void client_free(struct client *c);
/* Schedules the client's end; safe from any callback. */
void client_kill(struct client *c, const char *why);

/* Queues or sends one datagram; fd (consumed; -EBADF for none) goes with it. Return: 0 or -errno
 * (the client is then killed). */
int client_send(struct client *c, char *buf, size_t len, int fd);
int client_send_event(struct client *c, enum gmem_wire_event ev, const void *data);
int client_send_error(struct client *c, bool has_id, uint64_t id, int err, const char *msg);

/* Drop every attachment and holder record of this client on guest g (g == NULL: on all guests). */
void client_forget_guest(struct client *c, struct guest *g);

/* requests.c: run one decoded request. */
void client_handle_datagram(struct client *c, const char *buf, size_t len);
