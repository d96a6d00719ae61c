/* SPDX-License-Identifier: MIT */
/*
 * obj_sock - sockets carried across an image restore (src/objects/socket.c).
 *
 *   obj_sock DIR WORK [MODE]
 *
 * Default mode: makes, then checkpoints into DIR (the original exits 0
 * there), and in every restored instance checks each socket, printing
 * "ok NAME" or "FAIL: ..." lines, then "restored ok" (exit 0) or exit 1:
 *   tcp        a TCP listener on 127.0.0.1 (ephemeral port, SO_REUSEADDR,
 *              TCP_NODELAY, SO_RCVBUF, O_NONBLOCK): same port, options
 *              and flags; a connection to it is accepted
 *   tcp6       a TCP listener on [::1] with IPV6_V6ONLY (skipped without IPv6)
 *   unix       a Unix stream listener at WORK/sock; a client connects
 *   abstract   a Unix seqpacket listener with an abstract name
 *   udp        a UDP socket bound to 127.0.0.1: a datagram to itself
 *   pair       a stream socketpair with bytes queued both ways (one end
 *              O_NONBLOCK, the other FD_CLOEXEC): the bytes, then more
 *   dgrampair  an empty datagram socketpair: a message each way
 *   orphan     a stream pair end whose peer is closed: its bytes, then EOF
 *   halfshut   a stream pair, one direction shut down: bytes, then EOF that
 *              way, EPIPE writing it; the other way still works
 *   seqorphan  a seqpacket pair end whose peer is closed: EOF
 *   udpconn    a UDP socket connected to the udp one: send() reaches it
 *   unixdgram  a Unix datagram socket connected to WORK/dgram, bound by a
 *              socket of a higher number: a message reaches it
 * Other modes (after "port N" is printed, the checkpoint):
 *   established  a TCP connection to itself: refused, report printed, exit 3
 *   close        the same with policy `tcp *->* close`: restored closed
 *                (read gives end of file; "ok closed"); an epoll instance
 *                watching one of them reports it ("ok closed epoll")
 *   reuseport    one listener on 127.0.0.1 with SO_REUSEPORT; restored,
 *                prints "listening" and accepts one connection (10 s),
 *                "accepted" (several instances at once)
 *   hold PORT    (no checkpoint) listens on 127.0.0.1:PORT, prints
 *                "holding", sleeps (60 s at most): a port another process holds
 *   taken        a listener without SO_REUSEADDR: the test holds its port
 *                before the restore
 *   activated    as taken, with a second listener ("actfd N"), for a
 *                restore that passes a socket for it (socket activation)
 *   unixonly [FD] a Unix stream listener at WORK/sock (at descriptor FD if
 *                given), nothing else; restored, prints "reachable PID" if a
 *                connection to WORK/sock reaches it (and listens 4 s more),
 *                else "FAIL: unreachable ..." (exit 1)
 *   unixlong PATH DPATH  a Unix stream listener at PATH and a datagram
 *                socket at DPATH, each bound with the path's own length (a
 *                path of 108 bytes, sizeof(sun_path), has no NUL: the
 *                kernel then gives its name 111 bytes long), and a datagram
 *                socket connected to DPATH; restored, a connection to PATH
 *                reaches the listener and a datagram sent on the connected
 *                socket reaches DPATH's: "long ok" (else "FAIL: ...", exit 1)
 *   scm          a descriptor in flight (SCM_RIGHTS) in a socket pair: the
 *                checkpoint is refused (exit 3) and the bytes, the
 *                descriptor and the process's descriptors are unchanged
 *                ("unchanged" printed)
 */
#include <crac.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <unistd.h>

#include "obj_check.h"

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	getsockopt(fd, level, name, &v, &l);
	return v;
}

static int tcp_listener(int reuseaddr, int reuseport, int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (reuseaddr)
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (s < 0 || bind(s, (void *)&a, sizeof(a)) < 0 || listen(s, 16) < 0) {
		perror("tcp listener");
		exit(1);
	}
	return s;
}

static int port_of(int s)
{
	struct sockaddr_storage a;
	socklen_t l = sizeof(a);
	if (getsockname(s, (void *)&a, &l) < 0)
		return -1;
	return a.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a)->sin6_port)
				       : ntohs(((struct sockaddr_in *)&a)->sin_port);
}

static int tcp_connect(int port)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c, (void *)&a, sizeof(a)) < 0) {
		close(c);
		return -1;
	}
	return c;
}

static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, ms) == 1;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* A socket pair with bytes and a descriptor in flight: refused, nothing changed. */
static int run_scm(const char *dir)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		return 1;
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = { "fd!", 3 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	int zero = 0;
	memcpy(CMSG_DATA(c), &zero, sizeof(int));
	if (sendmsg(sp[1], &m, 0) != 3)
		return 1;
	printf("port 0\n");
	int before = count_fds();
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = dir;
	crac_report *rep = NULL;
	int rc = crac_checkpoint_restore(&o, &rep);
	printf("checkpoint refused: %d\n", rc);
	if (rep)
		crac_report_print(rep, stdout);
	crac_report_free(rep);
	int after = count_fds();
	/* the message is still there, with its descriptor */
	char got[8] = { 0 };
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec riov = { got, sizeof(got) };
	struct msghdr r = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(sp[0], &r, MSG_DONTWAIT);
	c = CMSG_FIRSTHDR(&r);
	int ok = n == 3 && !memcmp(got, "fd!", 3) && c && c->cmsg_type == SCM_RIGHTS && before == after;
	if (ok)
		printf("unchanged\n");
	else
		printf("FAIL: read %zd, cmsg %p, descriptors %d before, %d after\n", n, (void *)c, before, after);
	return rc < 0 ? 3 : 1;
}

/* A listener accepts a connection from here (O_NONBLOCK listener: wait first). */
static void check_accepts(const char *name, int l, int port)
{
	int c = tcp_connect(port);
	int ok = c >= 0 && readable(l, 2000);
	int a = ok ? accept(l, NULL, NULL) : -1;
	ok = a >= 0 && write(c, "x", 1) == 1 && readable(a, 2000);
	char ch = 0;
	ok = ok && read(a, &ch, 1) == 1 && ch == 'x';
	CHECK(name, ok, "connect %d accept %d: %s", c, a, strerror(errno));
	if (c >= 0)
		close(c);
	if (a >= 0)
		close(a);
}

static int run_default(const char *dir, const char *work)
{
	int one = 1;

	/* tcp */
	int t = tcp_listener(1, 0, 0);
	setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rcv = 100000;
	setsockopt(t, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	int rcv_got = opt(t, SOL_SOCKET, SO_RCVBUF), snd_got = opt(t, SOL_SOCKET, SO_SNDBUF);
	fcntl(t, F_SETFL, O_NONBLOCK);
	int tport = port_of(t);

	/* tcp6 */
	int t6 = socket(AF_INET6, SOCK_STREAM, 0), t6port = -1;
	if (t6 >= 0) {
		struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
		setsockopt(t6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(t6, (void *)&a6, sizeof(a6)) < 0 || listen(t6, 4) < 0) {
			close(t6);
			t6 = -1;
		} else {
			t6port = port_of(t6);
		}
	}

	/* unix */
	struct sockaddr_un ua = { .sun_family = AF_UNIX };
	snprintf(ua.sun_path, sizeof(ua.sun_path), "%s/sock", work);
	unlink(ua.sun_path);
	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	if (u < 0 || bind(u, (void *)&ua, sizeof(ua)) < 0 || listen(u, 4) < 0) {
		perror("unix listener");
		return 1;
	}
	chmod(ua.sun_path, 0640);

	/* abstract */
	struct sockaddr_un aa = { .sun_family = AF_UNIX };
	int alen = snprintf(aa.sun_path + 1, sizeof(aa.sun_path) - 1, "crac-obj-sock-%d", (int)getpid()) + 1;
	socklen_t aalen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)alen);
	int ab = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (ab < 0 || bind(ab, (void *)&aa, aalen) < 0 || listen(ab, 4) < 0) {
		perror("abstract listener");
		return 1;
	}

	/* udp */
	int d = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in da = { .sin_family = AF_INET };
	da.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (d < 0 || bind(d, (void *)&da, sizeof(da)) < 0)
		return 1;
	int dport = port_of(d);

	/* pair */
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		return 1;
	fcntl(sp[0], F_SETFL, O_NONBLOCK);
	fcntl(sp[1], F_SETFD, FD_CLOEXEC);
	if (write(sp[0], "to one", 6) != 6 || write(sp[1], "to zero!", 8) != 8 || write(sp[1], "+more", 5) != 5)
		return 1;

	/* dgrampair */
	int dp[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dp) < 0)
		return 1;

	/* orphan */
	int op[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, op) < 0 || write(op[1], "goodbye", 7) != 7)
		return 1;
	close(op[1]);

	/* udpconn */
	int dc = socket(AF_INET, SOCK_DGRAM, 0);
	da.sin_port = htons((uint16_t)dport);
	if (dc < 0 || connect(dc, (void *)&da, sizeof(da)) < 0)
		return 1;

	/* unixdgram: the client has the lower number */
	struct sockaddr_un dga = { .sun_family = AF_UNIX };
	snprintf(dga.sun_path, sizeof(dga.sun_path), "%s/dgram", work);
	unlink(dga.sun_path);
	int ucl = socket(AF_UNIX, SOCK_DGRAM, 0), usrv = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (ucl < 0 || usrv < 0 || bind(usrv, (void *)&dga, sizeof(dga)) < 0 || connect(ucl, (void *)&dga, sizeof(dga)) < 0)
		return 1;

	/* halfshut: one direction shut down */
	int hs[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, hs) < 0 || write(hs[1], "last", 4) != 4 || shutdown(hs[1], SHUT_WR) < 0)
		return 1;

	/* seqorphan: a seqpacket end whose peer is closed */
	int so[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, so) < 0)
		return 1;
	close(so[1]);

	printf("port %d\n", tport);
	fflush(stdout);
	checkpoint(dir, NULL);

	/* tcp */
	CHECK("tcp port", port_of(t) == tport, "port %d, was %d", port_of(t), tport);
	CHECK("tcp options", opt(t, SOL_SOCKET, SO_REUSEADDR) == 1 && opt(t, IPPROTO_TCP, TCP_NODELAY) == 1 &&
		      opt(t, SOL_SOCKET, SO_ACCEPTCONN) == 1 && opt(t, SOL_SOCKET, SO_REUSEPORT) == 0,
	      "reuseaddr %d nodelay %d acceptconn %d reuseport %d", opt(t, SOL_SOCKET, SO_REUSEADDR),
	      opt(t, IPPROTO_TCP, TCP_NODELAY), opt(t, SOL_SOCKET, SO_ACCEPTCONN), opt(t, SOL_SOCKET, SO_REUSEPORT));
	CHECK("tcp buffers", opt(t, SOL_SOCKET, SO_RCVBUF) == rcv_got && opt(t, SOL_SOCKET, SO_SNDBUF) == snd_got,
	      "rcvbuf %d (was %d) sndbuf %d (was %d)", opt(t, SOL_SOCKET, SO_RCVBUF), rcv_got,
	      opt(t, SOL_SOCKET, SO_SNDBUF), snd_got);
	CHECK("tcp flags", (fcntl(t, F_GETFL) & O_NONBLOCK) && fcntl(t, F_GETFD) == 0, "fl %#x fd %d",
	      fcntl(t, F_GETFL), fcntl(t, F_GETFD));
	check_accepts("tcp accepts", t, tport);

	/* tcp6 */
	if (t6 < 0) {
		printf("ok tcp6 (no IPv6 here)\n");
	} else {
		int c6 = socket(AF_INET6, SOCK_STREAM, 0);
		struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT,
					   .sin6_port = htons((uint16_t)t6port) };
		int ok = port_of(t6) == t6port && opt(t6, IPPROTO_IPV6, IPV6_V6ONLY) == 1 &&
			 connect(c6, (void *)&a6, sizeof(a6)) == 0;
		int a = ok ? accept(t6, NULL, NULL) : -1;
		CHECK("tcp6", ok && a >= 0, "port %d (was %d) v6only %d: %s", port_of(t6), t6port,
		      opt(t6, IPPROTO_IPV6, IPV6_V6ONLY), strerror(errno));
		close(c6);
		if (a >= 0)
			close(a);
	}

	/* unix */
	{
		struct stat st;
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		int ok = connect(c, (void *)&ua, sizeof(ua)) == 0;
		int a = ok ? accept(u, NULL, NULL) : -1;
		CHECK("unix accepts", a >= 0, "%s: %s", ua.sun_path, strerror(errno));
		CHECK("unix mode", stat(ua.sun_path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0640,
		      "mode %o", st.st_mode);
		close(c);
		if (a >= 0)
			close(a);
	}

	/* abstract */
	{
		int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		int ok = connect(c, (void *)&aa, aalen) == 0;
		int a = ok ? accept(ab, NULL, NULL) : -1;
		CHECK("abstract accepts", a >= 0, "%s", strerror(errno));
		close(c);
		if (a >= 0)
			close(a);
	}

	/* udp */
	{
		da.sin_port = htons((uint16_t)dport);
		char got[16] = { 0 };
		int ok = port_of(d) == dport && sendto(d, "dgram", 5, 0, (void *)&da, sizeof(da)) == 5 &&
			 readable(d, 2000) && recv(d, got, sizeof(got), 0) == 5 && !memcmp(got, "dgram", 5);
		CHECK("udp", ok, "port %d (was %d): %s", port_of(d), dport, strerror(errno));
	}

	/* pair */
	{
		char got[32] = { 0 };
		ssize_t n0 = read(sp[0], got, sizeof(got));
		CHECK("pair content", n0 == 13 && !memcmp(got, "to zero!+more", 13), "read %zd '%.*s'", n0,
		      (int)(n0 > 0 ? n0 : 0), got);
		memset(got, 0, sizeof(got));
		ssize_t n1 = read(sp[1], got, sizeof(got));
		CHECK("pair content back", n1 == 6 && !memcmp(got, "to one", 6), "read %zd", n1);
		CHECK("pair flags", (fcntl(sp[0], F_GETFL) & O_NONBLOCK) && !(fcntl(sp[1], F_GETFL) & O_NONBLOCK) &&
			      fcntl(sp[1], F_GETFD) == FD_CLOEXEC && fcntl(sp[0], F_GETFD) == 0,
		      "flags %#x/%#x", fcntl(sp[0], F_GETFL), fcntl(sp[1], F_GETFL));
		CHECK("pair empty", read(sp[0], got, 1) < 0 && errno == EAGAIN, "not empty");
		int ok = write(sp[1], "again", 5) == 5 && read(sp[0], got, sizeof(got)) == 5;
		CHECK("pair again", ok, "%s", strerror(errno));
	}

	/* dgrampair */
	{
		char got[16];
		int ok = send(dp[0], "m1", 2, 0) == 2 && recv(dp[1], got, sizeof(got), 0) == 2 &&
			 send(dp[1], "m22", 3, 0) == 3 && recv(dp[0], got, sizeof(got), 0) == 3;
		CHECK("dgrampair", ok, "%s", strerror(errno));
	}

	/* orphan */
	{
		char got[16] = { 0 };
		ssize_t n = read(op[0], got, sizeof(got));
		ssize_t e = read(op[0], got + 8, 4);
		CHECK("orphan", n == 7 && !memcmp(got, "goodbye", 7) && e == 0, "read %zd then %zd", n, e);
	}

	/* udpconn */
	{
		char got[16] = { 0 };
		struct sockaddr_in pa;
		socklen_t pl = sizeof(pa);
		int ok = getpeername(dc, (void *)&pa, &pl) == 0 && ntohs(pa.sin_port) == dport &&
			 send(dc, "conn", 4, 0) == 4 && readable(d, 2000) && recv(d, got, sizeof(got), 0) == 4 &&
			 !memcmp(got, "conn", 4);
		CHECK("udpconn", ok, "%s", strerror(errno));
	}

	/* unixdgram */
	{
		char got[16] = { 0 };
		int ok = send(ucl, "unixd", 5, 0) == 5 && readable(usrv, 2000) && recv(usrv, got, sizeof(got), 0) == 5 &&
			 !memcmp(got, "unixd", 5);
		CHECK("unixdgram", ok, "%s", strerror(errno));
	}

	/* halfshut */
	{
		char got[16] = { 0 };
		ssize_t n = read(hs[0], got, sizeof(got));
		ssize_t e = read(hs[0], got + 8, 4);
		errno = 0;
		ssize_t w = write(hs[1], "x", 1);
		int w_errno = errno;
		int ok = n == 4 && !memcmp(got, "last", 4) && e == 0 && w < 0 && w_errno == EPIPE &&
			 write(hs[0], "back", 4) == 4 && read(hs[1], got, sizeof(got)) == 4;
		CHECK("halfshut", ok, "read %zd then %zd, write %zd (%s)", n, e, w, strerror(w_errno));
	}

	/* seqorphan */
	{
		char got[4];
		ssize_t n = read(so[0], got, sizeof(got));
		int type = opt(so[0], SOL_SOCKET, SO_TYPE);
		CHECK("seqorphan", n == 0 && type == SOCK_SEQPACKET, "read %zd type %d", n, type);
	}

	if (fails)
		return 1;
	printf("restored ok\n");
	return 0;
}

/* Unix address of path p, its length the path's own (no NUL at 108 bytes). */
static socklen_t unix_addr(struct sockaddr_un *a, const char *p)
{
	size_t n = strlen(p);

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (n > sizeof(a->sun_path))
		n = sizeof(a->sun_path);
	memcpy(a->sun_path, p, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/* unixlong: see the header. */
static int run_unixlong(const char *dir, const char *path, const char *dpath)
{
	struct sockaddr_un a, d;
	socklen_t al = unix_addr(&a, path), dl = unix_addr(&d, dpath);
	int l = socket(AF_UNIX, SOCK_STREAM, 0), r = socket(AF_UNIX, SOCK_DGRAM, 0), w = socket(AF_UNIX, SOCK_DGRAM, 0);

	unlink(path);
	unlink(dpath);
	if (l < 0 || r < 0 || w < 0 || bind(l, (void *)&a, al) < 0 || listen(l, 4) < 0 || bind(r, (void *)&d, dl) < 0 ||
	    connect(w, (void *)&d, dl) < 0) {
		printf("FAIL: setup: %s\n", strerror(errno));
		return 1;
	}
	checkpoint(dir, NULL);
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (void *)&a, al) < 0 || !readable(l, 2000)) {
		printf("FAIL: listener unreachable: %s\n", strerror(errno));
		return 1;
	}
	char b = 0;
	if (send(w, "x", 1, 0) != 1 || !readable(r, 2000) || recv(r, &b, 1, 0) != 1 || b != 'x') {
		printf("FAIL: datagram: %s\n", strerror(errno));
		return 1;
	}
	printf("long ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: obj_sock DIR WORK [MODE]\n");
		return 2;
	}
	const char *mode = argc > 3 ? argv[3] : "";
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!*mode)
		return run_default(argv[1], argv[2]);

	if (!strcmp(mode, "scm"))
		return run_scm(argv[1]);

	if (!strcmp(mode, "hold")) {
		int s = tcp_listener(1, 0, argc > 4 ? atoi(argv[4]) : 0);
		printf("holding %d\n", port_of(s));
		fflush(stdout);
		alarm(60);   /* never outlives a test that forgets it */
		pause();
		return 0;
	}

	if (!strcmp(mode, "established") || !strcmp(mode, "close")) {
		int l = tcp_listener(1, 0, 0);
		int c = tcp_connect(port_of(l));
		int a = accept(l, NULL, NULL);
		if (c < 0 || a < 0)
			return 1;
		int ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = 42 };
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
			return 1;
		printf("port %d\n", port_of(l));
		fflush(stdout);
		checkpoint(argv[1], !strcmp(mode, "close") ? "tcp *->* close" : NULL);
		int ne = epoll_wait(ep, &ev, 1, 2000);
		CHECK("closed epoll", ne == 1 && ev.data.u64 == 42 && (ev.events & EPOLLRDHUP), "%d events, data %llu, %#x",
		      ne, (unsigned long long)ev.data.u64, ev.events);
		char ch;
		ssize_t n = read(c, &ch, 1), m = read(a, &ch, 1);
		errno = 0;
		ssize_t w = write(c, "x", 1);
		CHECK("closed", n == 0 && m == 0 && w < 0 && errno == EPIPE, "read %zd %zd, write %zd (%s)", n, m, w,
		      strerror(errno));
		check_accepts("closed listener accepts", l, port_of(l));
		if (fails)
			return 1;
		printf("restored ok\n");
		return 0;
	}

	if (!strcmp(mode, "reuseport") || !strcmp(mode, "taken") || !strcmp(mode, "activated")) {
		int reuse = !strcmp(mode, "reuseport");
		int l = tcp_listener(reuse, reuse, 0);
		printf("port %d\n", port_of(l));
		if (!strcmp(mode, "activated"))   /* a second listener, for socket activation */
			printf("actfd %d\n", tcp_listener(1, 0, 0));
		fflush(stdout);
		checkpoint(argv[1], NULL);
		printf("listening\n");
		fflush(stdout);
		if (!readable(l, 10000)) {
			printf("FAIL: no connection within 10 s\n");
			return 1;
		}
		int a = accept(l, NULL, NULL);
		if (a >= 0)
			printf("accepted\n");
		else
			printf("FAIL: accept: %s\n", strerror(errno));
		return a >= 0 ? 0 : 1;
	}
	if (!strcmp(mode, "unixlong") && argc > 5)
		return run_unixlong(argv[1], argv[4], argv[5]);

	if (!strcmp(mode, "unixonly")) {
		/* only a Unix stream listener at WORK/sock */
		struct sockaddr_un ua = { .sun_family = AF_UNIX };
		snprintf(ua.sun_path, sizeof(ua.sun_path), "%s/sock", argv[2]);
		unlink(ua.sun_path);
		int u = socket(AF_UNIX, SOCK_STREAM, 0);
		if (u < 0 || bind(u, (void *)&ua, sizeof(ua)) < 0 || listen(u, 4) < 0) {
			perror("unix listener");
			return 1;
		}
		if (argc > 4) {   /* at a high descriptor number */
			int at = atoi(argv[4]);
			if (dup2(u, at) != at) {
				perror("dup2");
				return 1;
			}
			close(u);
			u = at;
		}
		checkpoint(argv[1], NULL);
		/* restored: does a connection to WORK/sock reach this listener? */
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (void *)&ua, sizeof(ua)) < 0) {
			printf("FAIL: unreachable: connect %s: %s\n", ua.sun_path, strerror(errno));
			return 1;
		}
		if (!readable(u, 2000)) {
			printf("FAIL: unreachable: a connection to %s reached another listener\n", ua.sun_path);
			return 1;
		}
		printf("reachable %d\n", (int)getpid());
		fflush(stdout);
		sleep(4);   /* listening meanwhile: another restore finds it in use */
		return 0;
	}
	fprintf(stderr, "obj_sock: unknown mode %s\n", mode);
	return 2;
}
