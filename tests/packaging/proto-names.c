/* SPDX-License-Identifier: MIT */
/*
 * Prints the name of every op and event of the protocol, one per line ("op NAME", "event NAME"), from
 * the tables gmemd and libgmem use: check-names.py compares them with gmem-protocol(7), so a new op
 * cannot ship without its man entry.
 */
#include <stdio.h>

#include "gmem-proto.h"

int main(void)
{
	for (int i = 0; i < _GMEM_OP_MAX; i++)
		printf("op %s\n", gmem_ops[i].name);
	for (int i = 0; i < _GMEM_WIRE_EVENT_MAX; i++)
		printf("event %s\n", gmem_events[i].name);
	return 0;
}
