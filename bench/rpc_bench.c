/*
 * rpc_bench: the JSON-RPC server from a C client, so that the client is not what is measured.
 *
 *   rpc_bench calls SOCKET METHOD [PARAMS_JSON] N
 *       N sequential calls on one connection, one request in flight: calls/s, p50/p99 (us).
 *   rpc_bench startup SOCKET -- PROGRAM ARGS...
 *       Start PROGRAM and time from exec to the first rpc_get_methods answered on SOCKET (ms).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static char g_buf[1 << 24];

/* Send one request and read until the response's newline. Returns bytes read or -1. */
static long call(int fd, const char *req, size_t len)
{
	long got = 0;

	if (write(fd, req, len) != (ssize_t)len)
		return -1;
	for (;;) {
		ssize_t n = read(fd, g_buf + got, sizeof(g_buf) - (size_t)got);

		if (n <= 0)
			return -1;
		got += n;
		if (g_buf[got - 1] == '\n')
			return got;
	}
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int calls(const char *path, const char *method, const char *params, long n)
{
	char req[4096];
	double *lat = malloc(sizeof(double) * (size_t)n), t0, t1;
	int fd = connect_to(path), len;
	long bytes = 0;

	if (fd < 0) {
		perror("connect");
		return 1;
	}
	len = snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"id\":1%s%s}",
		       method, params ? ",\"params\":" : "", params ? params : "");
	/* Warm up. */
	for (int i = 0; i < 100; i++)
		call(fd, req, (size_t)len);
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		double a = now_s();
		long r = call(fd, req, (size_t)len);

		if (r < 0) {
			fprintf(stderr, "call failed\n");
			return 1;
		}
		bytes = r;
		lat[i] = now_s() - a;
	}
	t1 = now_s();
	qsort(lat, (size_t)n, sizeof(double), cmp_d);
	printf("{\"method\":\"%s\",\"calls\":%ld,\"calls_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%."
	       "1f,"
	       "\"response_bytes\":%ld}\n",
	       method, n, (double)n / (t1 - t0), lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6, bytes);
	close(fd);
	free(lat);
	return 0;
}

static int startup(const char *path, char **argv)
{
	static const char req[] = "{\"jsonrpc\":\"2.0\",\"method\":\"rpc_get_methods\",\"id\":1}";
	double t0 = now_s(), t1;
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		int fd = connect_to(path);

		if (fd >= 0) {
			long r = call(fd, req, sizeof(req) - 1);

			close(fd);
			if (r > 0)
				break;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "the program exited\n");
			return 1;
		}
		usleep(200);
	}
	t1 = now_s();
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	printf("{\"exec_to_rpc_ms\":%.2f}\n", (t1 - t0) * 1e3);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "calls") == 0)
		return calls(argv[2], argv[3], argc >= 6 ? argv[4] : NULL, atol(argv[argc - 1]));
	if (argc >= 5 && strcmp(argv[1], "startup") == 0 && strcmp(argv[3], "--") == 0)
		return startup(argv[2], argv + 4);
	fprintf(stderr, "usage: see the comment at the top of rpc_bench.c\n");
	return 2;
}
