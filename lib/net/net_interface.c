/* rtnetlink requests behind net_interface.h: one socket per call, a dump or a change with an ACK.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net_interface.h"

/* Large enough for one datagram of a dump (the kernel sends at most a page's worth at a time,
 * 32 KiB with big pages); a longer dump comes as several datagrams. */
#define NL_BUF 32768

static int nl_open(void)
{
	struct timeval tv = { .tv_sec = 1 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	/* The kernel answers these at once; a second bounds the RPC reactor's wait whatever
	 * happens. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int nl_send(int fd, void *msg, size_t len)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	if (sendto(fd, msg, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	return 0;
}

/*
 * Read the answers to request seq until the dump ends (NLMSG_DONE) or, for a change, its ACK
 * (NLMSG_ERROR, error 0 on success). Each other message goes to fn. Returns 0 or -errno.
 */
static int nl_recv(int fd, uint32_t seq, void (*fn)(struct nlmsghdr *, void *), void *arg)
{
	static __thread char buf[NL_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue; /* not ours (nothing else is sent on this socket) */
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					return -EPROTO;
				return e->error; /* 0: the ACK of a change */
			}
			if (fn != NULL)
				fn(h, arg);
		}
	}
}

/* --- reading ------------------------------------------------------------------------------ */

static void add_link(struct nlmsghdr *h, void *arg)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
	json_t *list = arg;

	if (h->nlmsg_type != RTM_NEWLINK || len < 0)
		return;
	for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type != IFLA_IFNAME)
			continue;
		json_array_append_new(list, json_pack("{s:s%, s:i, s:[]}", "name",
						      (const char *)RTA_DATA(a),
						      strnlen(RTA_DATA(a), RTA_PAYLOAD(a)),
						      "ifc_index", ifi->ifi_index, "ip_addr"));
		return;
	}
}

static void add_addr(struct nlmsghdr *h, void *arg)
{
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifa));
	json_t *list = arg, *ifc;
	size_t i;

	if (h->nlmsg_type != RTM_NEWADDR || len < 0 || ifa->ifa_family != AF_INET)
		return;
	json_array_foreach(list, i, ifc)
	{
		if (json_integer_value(json_object_get(ifc, "ifc_index")) !=
		    (json_int_t)ifa->ifa_index)
			continue;
		/* IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on a
		 * point-to-point link); SPDK listed IFA_LOCAL. */
		for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
			char text[INET_ADDRSTRLEN];

			if (a->rta_type != IFA_LOCAL || RTA_PAYLOAD(a) != 4)
				continue;
			inet_ntop(AF_INET, RTA_DATA(a), text, sizeof(text));
			json_array_append_new(json_object_get(ifc, "ip_addr"), json_string(text));
		}
		return;
	}
}

static int dump(int fd, uint16_t type, uint32_t seq, void (*fn)(struct nlmsghdr *, void *),
		json_t *list)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg body; /* the larger of ifinfomsg and ifaddrmsg; family AF_UNSPEC */
	} req = {
		.h = { .nlmsg_len = sizeof(req),
		       .nlmsg_type = type,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		       .nlmsg_seq = seq },
	};
	int rc = nl_send(fd, &req, sizeof(req));

	return rc != 0 ? rc : nl_recv(fd, seq, fn, list);
}

json_t *mimo_net_interfaces(int *err)
{
	json_t *list = json_array();
	int fd = nl_open(), rc;

	if (fd < 0) {
		*err = fd;
		json_decref(list);
		return NULL;
	}
	rc = dump(fd, RTM_GETLINK, 1, add_link, list);
	if (rc == 0)
		rc = dump(fd, RTM_GETADDR, 2, add_addr, list);
	close(fd);
	if (rc != 0) {
		*err = rc;
		json_decref(list);
		return NULL;
	}
	return list;
}

/* --- changing ----------------------------------------------------------------------------- */

static int addr_change(int ifindex, const char *ipv4, bool add)
{
	struct {
		struct nlmsghdr h;
		struct ifaddrmsg ifa;
		char attrs[2 * RTA_SPACE(4)];
	} req = {
		.h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)),
		       .nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR,
		       /* EXCL: an address already there is an error (EEXIST), not a silent no-op.
			*/
		       .nlmsg_flags =
			       NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0),
		       .nlmsg_seq = 1 },
		.ifa = { .ifa_family = AF_INET,
			 .ifa_prefixlen = 32,
			 .ifa_index = (unsigned)ifindex },
	};
	struct in_addr a;
	char name[IF_NAMESIZE];
	int fd, rc;

	if (ipv4 == NULL || inet_pton(AF_INET, ipv4, &a) != 1)
		return -EINVAL;
	if (ifindex <= 0 || if_indextoname((unsigned)ifindex, name) == NULL)
		return -ENODEV;
	/* IFA_LOCAL and IFA_ADDRESS both the address: a host address, as `ip addr add A/32`. */
	for (unsigned short t = IFA_ADDRESS; t <= IFA_LOCAL; t++) {
		struct rtattr *rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.h.nlmsg_len));

		rta->rta_type = t;
		rta->rta_len = RTA_LENGTH(4);
		memcpy(RTA_DATA(rta), &a, 4);
		req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_SPACE(4);
	}
	fd = nl_open();
	if (fd < 0)
		return fd;
	rc = nl_send(fd, &req, req.h.nlmsg_len);
	if (rc == 0)
		rc = nl_recv(fd, 1, NULL, NULL);
	close(fd);
	if (add && rc == -EEXIST)
		return -EADDRINUSE;
	if (!add && rc == -EADDRNOTAVAIL)
		return -ENXIO;
	if (rc == -ENODEV)
		return -ENODEV; /* the interface went between the check and the request */
	return rc;
}

int mimo_net_addr_add(int ifindex, const char *ipv4)
{
	return addr_change(ifindex, ipv4, true);
}

int mimo_net_addr_delete(int ifindex, const char *ipv4)
{
	return addr_change(ifindex, ipv4, false);
}
