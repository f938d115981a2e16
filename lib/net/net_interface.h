/*
 * A host's network interfaces and their IPv4 addresses, read and changed through rtnetlink:
 * what SPDK's net_interface_* RPCs (and py-spdk's VhostTgt add_ip_address/delete_ip_address)
 * do. Linux only.
 *
 * Threads: any; each call opens its own netlink socket and blocks for at most a second while
 * the kernel answers (it answers at once: these are local routing-table operations).
 * Errors: 0 or a negative errno; see each function. json_t results belong to the caller.
 */
#ifndef MIMO_NET_NET_INTERFACE_H
#define MIMO_NET_NET_INTERFACE_H

#include <jansson.h>

/*
 * Every interface, in index order, as SPDK's net_get_interfaces answered:
 * [{"name": "eth0", "ifc_index": 2, "ip_addr": ["10.0.0.1", ...]}, ...] — IPv4 addresses only.
 * NULL with *err set (negative errno) if the kernel could not be asked.
 */
json_t *mimo_net_interfaces(int *err);

/*
 * Add or delete an IPv4 address (dotted quad, /32, as SPDK did) on the interface with this
 * index. -EINVAL: not an IPv4 address; -ENODEV: no such interface; -EADDRINUSE: the address is
 * on that interface already (add); -ENXIO: it is not (delete); -EPERM: not allowed
 * (CAP_NET_ADMIN); another negative errno from the kernel otherwise.
 */
int mimo_net_addr_add(int ifindex, const char *ipv4);
int mimo_net_addr_delete(int ifindex, const char *ipv4);

/* The RPCs above (net_rpc.c), for daemons: mimo_tgt calls it at start. */
void mimo_register_net(void);

#endif
