/*
 * Where an HTTP client of ours may not connect: link-local addresses and the cloud providers'
 * instance-metadata endpoints. A callback URL is chosen by whoever holds an admin token, and a
 * daemon that POSTs to it from inside a cloud VM would hand that person the VM's metadata
 * service (credentials included): the classic server-side request forgery.
 */
#ifndef MIMO_HTTP_DEST_H
#define MIMO_HTTP_DEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* The reason an address is refused ("link-local", "cloud metadata"), or NULL if allowed.
 * IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry. */
const char *mimo_dest_refused(const struct sockaddr *sa, socklen_t len);

/*
 * The same judgement on a URL before any connection: its host, when it is an address in any
 * form the resolver accepts without DNS ("169.254.169.254", "[fe80::1]", "2852039166"), or a
 * well-known metadata host name. A name is not resolved here: its answer now says nothing
 * about the answer at connect time (DNS rebinding), which the poster checks
 * (mimo_http_poster_opts.forbid_link_local). Returns 0, or -EACCES with why filled in.
 */
int mimo_dest_check_url(const char *url, char *why, size_t why_len);

#endif
