/* The C subprocess helper of the NVMe-oF tests: see tgt_process.h. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tgt_process.h"

#define STATE_DIR "/tmp/mimo-nvmf-test"

static void pid_file_path(uint16_t port, char *buf, size_t len)
{
	snprintf(buf, len, STATE_DIR "/tgt-%u.pid", port);
}

static int is_mimo_tgt(pid_t pid)
{
	char link[64], exe[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = '\0';
	return strstr(strrchr(exe, '/') != NULL ? strrchr(exe, '/') : exe, "mimo_tgt") != NULL;
}

int test_tgt_cleanup_stale(uint16_t port)
{
	char path[256];
	int pid = 0, killed = 0;
	FILE *f;

	pid_file_path(port, path, sizeof(path));
	f = fopen(path, "r");
	if (f == NULL)
		return errno == ENOENT ? 0 : -errno;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid > 0 && is_mimo_tgt(pid)) {
		kill(pid, SIGKILL);
		for (int i = 0; i < 500 && is_mimo_tgt(pid); i++)
			usleep(10000);
		killed = 1;
	}
	unlink(path);
	return killed;
}

static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &len) != 0) {
		if (s >= 0)
			close(s);
		return 0;
	}
	close(s);
	return ntohs(sa.sin_port);
}

static int rpc_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

int test_tgt_rpc(const struct test_tgt *t, const char *method, const char *params, char **result)
{
	json_t *req, *resp = NULL, *p = NULL;
	char *text, buf[65536];
	size_t have = 0;
	int fd, rc = -EPROTO;

	if (params != NULL && (p = json_loads(params, 0, NULL)) == NULL)
		return -EINVAL;
	req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", method, "id", 1);
	if (p != NULL)
		json_object_set_new(req, "params", p);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	fd = rpc_connect(t->sock);
	if (fd < 0) {
		free(text);
		return fd;
	}
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		free(text);
		close(fd);
		return -EIO;
	}
	free(text);
	/* Responses end with a newline. */
	while (have < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (n <= 0)
			break;
		have += (size_t)n;
		if (memchr(buf, '\n', have) != NULL)
			break;
	}
	close(fd);
	buf[have] = '\0';
	resp = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
	if (resp != NULL && json_object_get(resp, "result") != NULL) {
		rc = 0;
		if (result != NULL)
			*result = json_dumps(json_object_get(resp, "result"),
					     JSON_COMPACT | JSON_ENCODE_ANY);
	} else if (result != NULL && resp != NULL) {
		*result = json_dumps(json_object_get(resp, "error"), JSON_COMPACT);
	}
	json_decref(resp);
	return rc;
}

static int wait_answering(struct test_tgt *t, int seconds)
{
	for (int i = 0; i < seconds * 100; i++) {
		int status;

		if (waitpid(t->pid, &status, WNOHANG) == t->pid)
			return -ECHILD;
		if (test_tgt_rpc(t, "rpc_get_methods", NULL, NULL) == 0)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static int wait_listening(uint16_t port, int seconds)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	for (int i = 0; i < seconds * 100; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

int test_tgt_start(const char *binary, const char *cores, uint16_t port, uint32_t mib,
		   struct test_tgt *t)
{
	char params[512];
	FILE *f;
	int rc;

	memset(t, 0, sizeof(*t));
	if (binary == NULL)
		binary = getenv("MIMO_TGT_BIN");
	if (binary == NULL)
		return -ENOENT;
	if (port == 0 && (port = free_port()) == 0)
		return -EADDRNOTAVAIL;
	test_tgt_cleanup_stale(port);
	mkdir(STATE_DIR, 0755);
	t->port = port;
	snprintf(t->sock, sizeof(t->sock), "/tmp/mimo-test-tgt-%u.sock", port);
	pid_file_path(port, t->pid_file, sizeof(t->pid_file));
	snprintf(t->trid, sizeof(t->trid),
		 "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:%u subnqn:%s", port,
		 TEST_TGT_NQN);
	t->pid = fork();
	if (t->pid < 0)
		return -errno;
	if (t->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, STDIN_FILENO);
		setenv("MIMO_NOTIFY_DISABLE", "1", 1);
		execl(binary, binary, "-r", t->sock, "-m", cores, (char *)NULL);
		_exit(127);
	}
	f = fopen(t->pid_file, "w");
	if (f != NULL) {
		fprintf(f, "%d\n", (int)t->pid);
		fclose(f);
	}
	rc = wait_answering(t, 10);
	if (rc != 0)
		goto fail;
	snprintf(params, sizeof(params),
		 "{\"name\":\"Malloc0\",\"num_blocks\":%u,\"block_size\":512}", mib * 2048);
	if ((rc = test_tgt_rpc(t, "bdev_malloc_create", params, NULL)) != 0 ||
	    (rc = test_tgt_rpc(t, "nvmf_create_transport", "{\"trtype\":\"TCP\"}", NULL)) != 0)
		goto fail;
	snprintf(params, sizeof(params),
		 "{\"nqn\":\"%s\",\"allow_any_host\":true,\"serial_number\":\"MIMO0001\"}",
		 TEST_TGT_NQN);
	if ((rc = test_tgt_rpc(t, "nvmf_create_subsystem", params, NULL)) != 0)
		goto fail;
	snprintf(params, sizeof(params),
		 "{\"nqn\":\"%s\",\"namespace\":{\"bdev_name\":\"Malloc0\"}}", TEST_TGT_NQN);
	if ((rc = test_tgt_rpc(t, "nvmf_subsystem_add_ns", params, NULL)) != 0)
		goto fail;
	snprintf(params, sizeof(params),
		 "{\"nqn\":\"%s\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\","
		 "\"traddr\":\"127.0.0.1\",\"trsvcid\":\"%u\"}}",
		 TEST_TGT_NQN, port);
	if ((rc = test_tgt_rpc(t, "nvmf_subsystem_add_listener", params, NULL)) != 0 ||
	    (rc = wait_listening(port, 10)) != 0)
		goto fail;
	return 0;
fail:
	test_tgt_stop(t);
	return rc != 0 ? rc : -EIO;
}

int test_tgt_stop(struct test_tgt *t)
{
	int status = -1;

	if (t->pid <= 0)
		return -ESRCH;
	kill(t->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(t->pid, &status, WNOHANG) == t->pid)
			break;
		if (i == 999) {
			kill(t->pid, SIGKILL);
			waitpid(t->pid, &status, 0);
		}
		usleep(10000);
	}
	t->pid = 0;
	unlink(t->pid_file);
	unlink(t->sock);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
