/* SPDX-License-Identifier: MIT */
/*
 * checks_server.c - an unmodified-style TCP server for the policy tests: it
 * knows nothing of crac (run it under `crac run`). Listens on 127.0.0.1 on
 * an ephemeral port, writes the port to the file named by argv[1], appends
 * one line per connection to the log argv[2] and answers "pong N".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l, n = 0;
	FILE *log, *pf;

	if (argc != 3)
		return 2;
	l = socket(AF_INET, SOCK_STREAM, 0);
	/* as servers that restart do: TIME_WAIT connections must not hold the port */
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0)
		return 1;
	getsockname(l, (struct sockaddr *)&a, &al);
	log = fopen(argv[2], "a");
	if (!log)
		return 1;
	setvbuf(log, NULL, _IONBF, 0);
	pf = fopen(argv[1], "w");
	fprintf(pf, "%u\n", ntohs(a.sin_port));
	fclose(pf);
	for (;;) {
		int c = accept(l, NULL, NULL);
		char buf[64];
		if (c < 0)
			continue;
		n++;
		fprintf(log, "connection %d\n", n);
		int len = snprintf(buf, sizeof(buf), "pong %d\n", n);
		if (write(c, buf, (size_t)len) != len)
			perror("write");
		close(c);
	}
}
