/* SPDX-License-Identifier: MIT */
/*
 * list: an intrusive circular doubly-linked list (the kernel's shape). Objects that live on several
 * lists at once (an attachment is on its guest's and its client's) embed one list_node per list.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *next, *prev;
};

#define LIST_INIT(name) { &(name), &(name) }
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void list_init(struct list_node *h)
{
	h->next = h->prev = h;
}

static inline bool list_empty(const struct list_node *h)
{
	return h->next == h;
}

static inline void list_add_tail(struct list_node *h, struct list_node *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

/* Leaves n self-linked, so a second list_del and list_empty(n) are harmless. */
static inline void list_del(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_for_each(pos, head) for (struct list_node *pos = (head)->next; pos != (head); pos = pos->next)
/* Safe against removal of pos. */
#define list_for_each_safe(pos, head)                                                                    \
	for (struct list_node *pos = (head)->next, *pos##_n = pos->next; pos != (head);                  \
	     pos = pos##_n, pos##_n = pos->next)
