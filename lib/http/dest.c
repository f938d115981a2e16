/*
 * The destination policy (see dest.h). The list is short on purpose: link-local space, where
 * every cloud puts its metadata service (169.254.169.254 for AWS, GCP, Azure, OCI, DigitalOcean;
 * 169.254.170.2 for ECS task credentials), and the two metadata addresses outside it (AWS's IPv6
 * fd00:ec2::254, Alibaba's 100.100.100.200). Private ranges stay allowed: callbacks to servers
 * on the same LAN are the normal case.
 */
#include "dest.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *v4_refused(uint32_t a)
{
	if ((a >> 16) == 0xa9fe) /* 169.254.0.0/16 */
		return a == 0xa9fea9fe || a == 0xa9feaa02 ? "cloud metadata" : "link-local";
	if (a == 0x646464c8) /* 100.100.100.200 */
		return "cloud metadata";
	return NULL;
}

const char *mimo_dest_refused(const struct sockaddr *sa, socklen_t len)
{
	static const uint8_t ec2[16] = { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02 };

	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		return v4_refused(ntohl(s4->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		const uint8_t *b = a6->s6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6))
			return v4_refused((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
					  (uint32_t)b[14] << 8 | b[15]);
		if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 */
			return "link-local";
		if (memcmp(b, ec2, sizeof(ec2)) == 0)
			return "cloud metadata";
	}
	return NULL;
}

/* Host names that mean a metadata service wherever they resolve. */
static bool metadata_name(const char *host)
{
	static const char *const names[] = { "metadata.google.internal", "metadata.goog",
					     "metadata", "instance-data", NULL };
	size_t n = strlen(host);

	if (n > 0 && host[n - 1] == '.')
		n--;
	for (size_t i = 0; names[i] != NULL; i++) {
		if (strlen(names[i]) == n && strncasecmp(host, names[i], n) == 0)
			return true;
	}
	return false;
}

/* The URL's host, without brackets, user info or port; an IPv6 zone's "%25" becomes "%". */
static int url_host(const char *url, char *host, size_t host_len)
{
	const char *p = strstr(url, "://"), *end, *at;
	size_t n, o = 0;

	if (p == NULL)
		return -EINVAL;
	p += 3;
	end = p + strcspn(p, "/?#");
	for (at = p; at < end; at++) {
		if (*at == '@')
			p = at + 1;
	}
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (close == NULL)
			return -EINVAL;
		p++;
		end = close;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		if (colon != NULL)
			end = colon;
	}
	n = (size_t)(end - p);
	for (size_t i = 0; i < n && o + 1 < host_len; i++) {
		host[o++] = p[i];
		if (p[i] == '%' && i + 2 < n && p[i + 1] == '2' && p[i + 2] == '5')
			i += 2; /* "%25" is the URL's spelling of the zone's '%' */
	}
	if (o + 1 >= host_len && n > 0)
		return -EINVAL;
	host[o] = '\0';
	return 0;
}

int mimo_dest_check_url(const char *url, char *why, size_t why_len)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	const char *reason = NULL;
	char host[256];

	if (url_host(url, host, sizeof(host)) != 0 || host[0] == '\0')
		return 0; /* not ours to judge: the URL's own validation speaks */
	if (metadata_name(host)) {
		snprintf(why, why_len, "host \"%s\" is a cloud metadata service", host);
		return -EACCES;
	}
	/* AI_NUMERICHOST: no DNS, but every spelling of an address that a connect would accept. */
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	for (struct addrinfo *ai = res; ai != NULL && reason == NULL; ai = ai->ai_next)
		reason = mimo_dest_refused(ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(res);
	if (reason == NULL)
		return 0;
	snprintf(why, why_len, "host %s is a %s address", host, reason);
	return -EACCES;
}
