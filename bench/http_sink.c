/*
 * http_sink: a minimal HTTP/1.1 keep-alive receiver for benchmarks. Answers every request with
 * 200 and an empty body (or, with --hang, reads requests and never answers). Counts requests
 * and writes the count to --count-file when it gets SIGTERM or SIGINT. --log appends each
 * request body and a newline to PATH (flushed at exit), for tests that check what arrived.
 *
 *   http_sink --port N [--hang] [--count-file PATH] [--log PATH]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (1 << 20)

struct conn {
	int fd;
	size_t len;
	char *buf;
};

static volatile sig_atomic_t g_stop;
static unsigned long long g_requests;
static FILE *g_log;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* Consume complete requests from c->buf; returns how many were complete. */
static int parse_requests(struct conn *c)
{
	int n = 0;

	for (;;) {
		char *hdr_end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		size_t head, body = 0, total;
		char *cl;

		if (hdr_end == NULL)
			return n;
		head = (size_t)(hdr_end - c->buf) + 4;
		for (cl = c->buf; cl < hdr_end; cl++) {
			if ((cl == c->buf || cl[-1] == '\n') &&
			    strncasecmp(cl, "content-length:", 15) == 0) {
				body = strtoul(cl + 15, NULL, 10);
				break;
			}
		}
		total = head + body;
		if (c->len < total)
			return n;
		if (g_log != NULL) {
			fwrite(c->buf + head, 1, body, g_log);
			fputc('\n', g_log);
		}
		memmove(c->buf, c->buf + total, c->len - total);
		c->len -= total;
		n++;
	}
}

int main(int argc, char **argv)
{
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	static const struct option opts[] = { { "port", required_argument, NULL, 'p' },
					      { "hang", no_argument, NULL, 'H' },
					      { "count-file", required_argument, NULL, 'c' },
					      { "log", required_argument, NULL, 'l' },
					      { 0 } };
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const char *count_file = NULL;
	struct epoll_event ev, evs[64];
	bool hang = false;
	int lfd, ep, one = 1, c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'p')
			addr.sin_port = htons((uint16_t)atoi(optarg));
		else if (c == 'H')
			hang = true;
		else if (c == 'c')
			count_file = optarg;
		else if (c == 'l')
			g_log = fopen(optarg, "w");
		else
			return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 128) != 0) {
		perror("http_sink: bind/listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("ready\n");
	fflush(stdout);

	while (!g_stop) {
		int n = epoll_wait(ep, evs, 64, 200);

		for (int i = 0; i < n; i++) {
			struct conn *cn = evs[i].data.ptr;

			if (cn == NULL) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);

				if (fd < 0)
					continue;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				cn = calloc(1, sizeof(*cn));
				cn->fd = fd;
				cn->buf = malloc(BUF_SIZE);
				ev.events = EPOLLIN;
				ev.data.ptr = cn;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				continue;
			}
			for (;;) {
				ssize_t r = read(cn->fd, cn->buf + cn->len, BUF_SIZE - cn->len);
				int done;

				if (r > 0) {
					cn->len += (size_t)r;
					done = parse_requests(cn);
					g_requests += (unsigned long long)done;
					for (int k = 0; k < done && !hang; k++) {
						if (write(cn->fd, reply, sizeof(reply) - 1) < 0)
							break;
					}
					if (cn->len == BUF_SIZE)
						cn->len = 0; /* oversized request: drop it */
					continue;
				}
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				epoll_ctl(ep, EPOLL_CTL_DEL, cn->fd, NULL);
				close(cn->fd);
				free(cn->buf);
				free(cn);
				break;
			}
		}
	}
	if (g_log != NULL)
		fclose(g_log);
	if (count_file != NULL) {
		FILE *f = fopen(count_file, "w");

		if (f != NULL) {
			fprintf(f, "%llu\n", g_requests);
			fclose(f);
		}
	}
	return 0;
}
