/* SPDX-License-Identifier: MIT */
/*
 * socket.c - sockets that can be made again without a peer elsewhere:
 *   - listening TCP sockets (IPv4, IPv6) and listening Unix stream and
 *     seqpacket sockets (a path or an abstract name): a new socket, the
 *     same options, bound to the same address, listening with a backlog
 *     of SOMAXCONN (the backlog a program asked for cannot be read back);
 *   - UDP and Unix datagram sockets, bound or not, unconnected or
 *     connected to an address (a Unix path or name: syslog's /dev/log),
 *     connected again in the second pass, once every socket of the
 *     process is bound (the restore fails if nothing is there then);
 *   - Unix socket pairs whose both ends are in the process (socketpair(2),
 *     unnamed): made again as a pair, the bytes queued in a stream pair
 *     carried over (read with MSG_PEEK, which consumes nothing); a
 *     datagram or seqpacket pair with queued messages is refused;
 *   - a Unix stream or seqpacket end whose peer is gone (both directions
 *     shut down): its queued bytes (stream), then end of file.
 * Kept: SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, SO_BROADCAST,
 * IPV6_V6ONLY, TCP_NODELAY, SO_RCVBUF and SO_SNDBUF when they differ from
 * a new socket's (the kernel doubles what is set: half is set again),
 * shutdown state of pairs; O_NONBLOCK and close-on-exec by the table.
 * Not kept: connections queued on a listener and not accepted yet (their
 * clients see a reset), datagrams queued on a UDP or Unix datagram
 * socket, multicast memberships, socket filters, other options.
 *
 * Refused: established TCP connections and sockets connected to another
 * process (a policy `close` makes them CLOSED: below), sockets in another
 * state (connecting, closed), other families and types.
 *
 * Restore: bind(2) to the recorded address. A port another process holds
 * fails the restore with one line naming the address; without
 * SO_REUSEADDR a port held by a closing socket is tried again for at most
 * 200 ms (the checkpointed process may be exiting). A Unix path is bound
 * again after removing the socket file there only if it is a socket of the
 * restoring user (effective uid; root too removes only root's) and
 * nothing listens on it (no listener of this network namespace has that
 * file, unix_listener_on, and a connect(2) is refused); another user's
 * socket file (named with its owner), any other file there, a
 * symbolic link (never followed nor removed), a socket in use, or a
 * directory that is missing or not writable, fails the restore, and is
 * found before the loader's point of no return (crac_obj_socket_check),
 * nothing changed; the file's mode is set again. Once every entry passed
 * those checks, still before the point of no return, each Unix path is
 * bound and held as a port is (crac_obj_socket_hold_path): the removal,
 * bind and listen hold a flock on its directory (unix_dir_lock), so that
 * two restores of one image take turns and the second finds the first
 * listening, and is refused before its point of no return, instead of
 * removing the first's socket file as stale. A restore refused before its
 * point of no return removes the socket files it made, if they are still
 * the ones it made (crac_obj_socket_unhold); a stale file it removed is
 * not made again.
 *
 * CLOSED (closed_ops): a connection a policy closes at the checkpoint;
 * the restored process finds at its number one end of a Unix stream pair
 * whose other end is closed: reads return end of file, writes EPIPE.
 *
 * Kind-specific words of struct crac_img_fd (SOCKET):
 *   u[0] role (R_*)   u[1] domain   u[2] type   u[3] protocol
 *   u[4] O_* option bits, shutdown bits << 16 (pairs)
 *   u[5] SO_RCVBUF to set (low 32 bits), SO_SNDBUF (high 32 bits); 0: default
 *   u[7] Unix path: the socket file's mode + 1 (0: unknown);
 *        pair: the other end's inode (its entry's obj)
 * Blob: struct sock_addrs (its address, the peer's of a connected datagram
 * socket) of R_LISTEN and R_DGRAM.
 * Data: the bytes queued to be read at this end (R_PAIR, R_ORPHAN).
 * Path: the address as text ("127.0.0.1:8080", "/run/app.sock", "@name").
 */
#include "objects/objects.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <linux/inet_diag.h>

enum { R_LISTEN = 1, R_DGRAM, R_PAIR, R_ORPHAN };

struct sock_addrs {
	uint32_t llen, plen;             /* plen 0: not connected */
	unsigned char l[128], p[128];    /* struct sockaddr_* */
};

#define O_REUSEADDR 0x1u
#define O_REUSEPORT 0x2u
#define O_V6ONLY 0x4u
#define O_NODELAY 0x8u
#define O_KEEPALIVE 0x10u
#define O_BROADCAST 0x20u

#define sys_socket(d, t, p) SYS(SYS_socket, d, t, p, 0, 0, 0)
#define sys_getsockopt(fd, l, n, v, len) SYS(SYS_getsockopt, fd, l, n, v, len, 0)
#define sys_setsockopt(fd, l, n, v, len) SYS(SYS_setsockopt, fd, l, n, v, len, 0)

/* ---- small helpers ----------------------------------------------------------------- */

static void put_ch(struct crac_img_buf *b, char ch)
{
	char s[2] = { ch, 0 };
	crac_img_puts(b, s);
}

/* network byte order (no libc: ntohs may be a function) */
static unsigned port_of(uint16_t be)
{
	return (unsigned)((be >> 8) | ((be & 0xff) << 8));
}

/* An int socket option, or -errno. */
static long getopt_int(int fd, int level, int name)
{
	int v = 0;
	uint32_t len = sizeof(v);
	long rc = sys_getsockopt(fd, level, name, &v, &len);
	return rc < 0 ? rc : v;
}

static void put_hex(struct crac_img_buf *b, unsigned v)
{
	char s[8];
	int n = 0;

	do
		s[n++] = "0123456789abcdef"[v & 15];
	while (v >>= 4);
	while (n)
		put_ch(b, s[--n]);
}

static void put_v4(struct crac_img_buf *b, const unsigned char *a)
{
	for (int k = 0; k < 4; k++) {
		if (k)
			put_ch(b, '.');
		crac_img_putu(b, a[k]);
	}
}

static void put_v6(struct crac_img_buf *b, const unsigned char *a)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	unsigned g[8];
	int best = -1, best_len = 1;

	if (!memcmp(a, mapped, 12)) {
		crac_img_puts(b, "::ffff:");
		put_v4(b, a + 12);
		return;
	}
	for (int k = 0; k < 8; k++)
		g[k] = (unsigned)a[2 * k] << 8 | a[2 * k + 1];
	/* the longest run of zero groups (two or more) becomes "::" */
	for (int k = 0; k < 8;) {
		int n = 0;
		while (k + n < 8 && !g[k + n])
			n++;
		if (n > best_len) {
			best = k;
			best_len = n;
		}
		k += n ? n : 1;
	}
	for (int k = 0; k < 8; k++) {
		if (k == best) {
			crac_img_puts(b, "::");
			k += best_len - 1;
			continue;
		}
		if (k && k != best + best_len)
			put_ch(b, ':');
		put_hex(b, g[k]);
	}
}

/* An address as the safety checks name it: "127.0.0.1:80", "[::1]:80", a path, "@name", "(unnamed)". */
static void put_addr(struct crac_img_buf *b, const void *sa, uint32_t len)
{
	const unsigned char *p = sa;
	uint16_t family = 0;

	if (len >= 2)
		memcpy(&family, p, 2);
	switch (family) {
	case AF_INET: {
		struct sockaddr_in a;
		memset(&a, 0, sizeof(a));
		memcpy(&a, p, len < sizeof(a) ? len : sizeof(a));
		put_v4(b, (const unsigned char *)&a.sin_addr);
		put_ch(b, ':');
		crac_img_putu(b, port_of(a.sin_port));
		break;
	}
	case AF_INET6: {
		struct sockaddr_in6 a;
		memset(&a, 0, sizeof(a));
		memcpy(&a, p, len < sizeof(a) ? len : sizeof(a));
		put_ch(b, '[');
		put_v6(b, (const unsigned char *)&a.sin6_addr);
		crac_img_puts(b, "]:");
		crac_img_putu(b, port_of(a.sin6_port));
		break;
	}
	case AF_UNIX: {
		uint32_t off = (uint32_t)offsetof(struct sockaddr_un, sun_path);
		if (len <= off) {
			crac_img_puts(b, "(unnamed)");
		} else if (!p[off]) {
			put_ch(b, '@');
			for (uint32_t k = off + 1; k < len; k++)
				put_ch(b, p[k] >= 0x20 && p[k] < 0x7f ? (char)p[k] : '?');
		} else {
			char path[sizeof(struct sockaddr_un) + 1];
			uint32_t n = 0;
			while (off + n < len && p[off + n] && n < sizeof(path) - 1) {
				path[n] = (char)p[off + n];
				n++;
			}
			path[n] = 0;
			crac_img_put_escaped(b, path);
		}
		break;
	}
	default:
		crac_img_puts(b, "(family ");
		crac_img_putu(b, family);
		put_ch(b, ')');
	}
}

/* The policy kind that names a socket (as the safety checks do). */
const char *crac_obj_policy_kind(int domain, int type)
{
	if (domain == AF_INET || domain == AF_INET6)
		return type == SOCK_STREAM ? "tcp" : type == SOCK_DGRAM ? "udp" : "socket";
	return domain == AF_UNIX ? "unix" : "socket";
}

/* An IP socket address's port and address bytes (4 or 16; v4 for AF_INET),
 * or 0 for another family. */
static int ip_parts(const void *sa, uint32_t len, unsigned *port, unsigned char addr[16])
{
	uint16_t family = 0;

	if (len >= 2)
		memcpy(&family, sa, 2);
	if (family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in a;
		memcpy(&a, sa, sizeof(a));
		*port = port_of(a.sin_port);
		memcpy(addr, &a.sin_addr, 4);
		return 4;
	}
	if (family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 a;
		memcpy(&a, sa, sizeof(a));
		*port = port_of(a.sin6_port);
		memcpy(addr, &a.sin6_addr, 16);
		return 16;
	}
	return 0;
}

/*
 * Does a TCP socket of this network namespace listen on the port of local
 * address l (inet_diag, IPv4 and IPv6)? 2: one bound to that very address,
 * 1: one bound to every address (0.0.0.0, ::), 0: none; -errno if the
 * kernel cannot tell. Stack buffers only: probes run on several threads.
 */
/* The netlink message at off of the n bytes in buf, its header in *h: 1
 * one to look at, 0 the end of a dump (NLMSG_DONE), or a negative errno
 * (the kernel's NLMSG_ERROR, or -EPROTO for a message that does not fit). */
static long nl_message(const char *buf, long n, long off, struct nlmsghdr *h)
{
	memcpy(h, buf + off, sizeof(*h));
	if (h->nlmsg_len < sizeof(*h) || off + (long)h->nlmsg_len > n)
		return -EPROTO;
	if (h->nlmsg_type == NLMSG_DONE)
		return 0;
	if (h->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr err;
		memset(&err, 0, sizeof(err));
		if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(err))
			memcpy(&err, buf + off + NLMSG_HDRLEN, sizeof(err));
		return err.error < 0 ? err.error : -EPROTO;
	}
	return 1;
}

/* Tests: set by libcrac's start-up from CRAC_PRETEND_MISSING=inet_diag (this
 * file is linked into the loader too, which reads no such switch). */
int crac_obj_no_inet_diag;

static int tcp_listener_on(const void *l, uint32_t ll)
{
	static const unsigned char zero[16];
	unsigned char mine[16], mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	unsigned port = 0;
	int alen = ip_parts(l, ll, &port, mine), best = 0;
	char buf[8192] __attribute__((aligned(8)));

	if (crac_obj_no_inet_diag)
		return -1;   /* tests: as where sock_diag is refused */
	if (!alen)
		return 0;
	if (alen == 4)
		memcpy(mapped + 12, mine, 4);
	for (int fam = 0; fam < 2; fam++) {
		struct {
			struct nlmsghdr h;
			struct inet_diag_req_v2 r;
		} q;
		struct sockaddr_nl sa;
		long nl = sys_socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), n = 0;
		int done = 0;

		if (nl < 0)
			return (int)nl;
		memset(&q, 0, sizeof(q));
		memset(&sa, 0, sizeof(sa));
		sa.nl_family = AF_NETLINK;
		q.h.nlmsg_len = sizeof(q);
		q.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
		q.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		q.r.sdiag_family = fam ? AF_INET6 : AF_INET;
		q.r.sdiag_protocol = IPPROTO_TCP;
		q.r.idiag_states = 1u << 10;   /* TCP_LISTEN */
		n = SYS(SYS_sendto, nl, &q, sizeof(q), 0, &sa, sizeof(sa));
		while (n >= 0 && !done) {
			do
				n = SYS(SYS_recvfrom, nl, buf, sizeof(buf), 0, 0, 0);
			while (n == -EINTR);
			if (n <= 0) {
				n = n < 0 ? n : -EPROTO;
				break;
			}
			for (long off = 0; off + (long)sizeof(struct nlmsghdr) <= n && !done;) {
				struct nlmsghdr h;
				long k = nl_message(buf, n, off, &h);
				if (k < 0) {
					n = k;
					break;
				}
				if (k == 0) {
					done = 1;
				} else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY &&
					   h.nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
					struct inet_diag_msg m;
					memcpy(&m, buf + off + NLMSG_HDRLEN, sizeof(m));
					unsigned char src[16];
					int slen = m.idiag_family == AF_INET ? 4 : 16;
					memcpy(src, m.id.idiag_src, 16);
					if (port_of(m.id.idiag_sport) == port) {
						if (!memcmp(src, zero, (size_t)slen) && best < 1)
							best = 1;
						if ((slen == alen && !memcmp(src, mine, (size_t)slen)) ||
						    (slen == 16 && alen == 4 && !memcmp(src, mapped, 16)))
							best = 2;
					}
				}
				off += NLMSG_ALIGN(h.nlmsg_len);
			}
		}
		sys_close(nl);
		if (n < 0)
			return (int)n;
	}
	return best;
}

/* A Unix address that names nothing stable: unnamed, or autobound by the
 * kernel (an abstract name of five hex digits, new each time). */
static int unix_unstable(const void *sa, uint32_t len)
{
	const unsigned char *p = sa;
	uint32_t off = (uint32_t)offsetof(struct sockaddr_un, sun_path);

	if (len <= off || (len == off + 1 && !p[off]))
		return 1;
	if (p[off] || len != off + 6)
		return 0;
	for (uint32_t k = off + 1; k < len; k++)
		if (!((p[k] >= '0' && p[k] <= '9') || (p[k] >= 'a' && p[k] <= 'f')))
			return 0;
	return 1;
}

/* An end unix_unstable says is new each run, as a glob of what the
 * inventory names it (runtime/inventory.c): "(unnamed)", an empty
 * abstract name "@", an autobound one ("@" and five hex digits) "@?????". */
static void put_unstable_end(struct crac_img_buf *b, const void *sa, uint32_t len)
{
	uint32_t off = (uint32_t)offsetof(struct sockaddr_un, sun_path);

	crac_img_puts(b, len <= off ? "(unnamed)" : len == off + 1 ? "@" : "@?????");
}

/* This namespace's ephemeral port range
 * (/proc/sys/net/ipv4/ip_local_port_range, which IPv6 shares), else
 * Linux's default, 32768-60999. System calls only. */
static void ephemeral_range(unsigned *lo, unsigned *hi)
{
	char t[64];
	unsigned v[2] = { 0, 0 }, k = 0;
	long fd = SYS(SYS_openat, AT_FDCWD, "/proc/sys/net/ipv4/ip_local_port_range", O_RDONLY | O_CLOEXEC, 0, 0, 0);
	long n = fd >= 0 ? SYS(SYS_read, fd, t, sizeof(t) - 1, 0, 0, 0) : -1;

	if (fd >= 0)
		SYS(SYS_close, fd, 0, 0, 0, 0, 0);
	for (long i = 0; i < n && k < 2; i++) {
		if (t[i] >= '0' && t[i] <= '9')
			v[k] = v[k] * 10 + (unsigned)(t[i] - '0');
		else if (v[k])
			k++;
	}
	if (v[0] && v[1] >= v[0] && v[1] < 65536) {
		*lo = v[0];
		*hi = v[1];
	} else {
		*lo = 32768;
		*hi = 60999;
	}
}

void crac_obj_put_connection_glob(struct crac_img_buf *b, int domain, const void *l, uint32_t ll, const void *p,
				  uint32_t pl)
{
	char lt[300], pt[300];
	struct crac_img_buf lb = { lt, 0, sizeof(lt) }, pb = { pt, 0, sizeof(pt) };
	enum { KEEP_NONE, KEEP_LOCAL, KEEP_LOCAL_PORT, KEEP_PEER, KEEP_BOTH } keep = KEEP_BOTH;

	lt[0] = pt[0] = 0;
	put_addr(&lb, l, ll);
	if (pl)
		put_addr(&pb, p, pl);
	else
		crac_img_puts(&pb, "(unnamed)");
	if (!pl) {
		/* no peer address to name: the checks name it by its own (runtime/inventory.c) */
		keep = domain == AF_UNIX && unix_unstable(l, ll) ? KEEP_NONE : KEEP_LOCAL;
	} else if (domain == AF_UNIX) {
		int lu = unix_unstable(l, ll), pu = unix_unstable(p, pl);
		keep = lu && pu ? KEEP_NONE : lu ? KEEP_PEER : pu ? KEEP_LOCAL : KEEP_BOTH;
	} else if (domain == AF_INET || domain == AF_INET6) {
		int on = tcp_listener_on(l, ll);
		unsigned lport = 0, pport = 0;
		unsigned char a[16];
		ip_parts(l, ll, &lport, a);
		ip_parts(p, pl, &pport, a);
		if (on < 0) {   /* the kernel cannot tell: the ephemeral range decides */
			unsigned lo, hi;
			ephemeral_range(&lo, &hi);
			on = (lport < lo || lport > hi) && pport >= lo && pport <= hi ? 2 : 0;
		}
		keep = on == 2 ? KEEP_LOCAL : on == 1 ? KEEP_LOCAL_PORT : KEEP_PEER;
	}
	int quote = (keep != KEEP_PEER && keep != KEEP_NONE && crac_obj_glob_needs_quotes(lt)) ||
		    ((keep == KEEP_PEER || keep == KEEP_BOTH) && crac_obj_glob_needs_quotes(pt));
	if (quote)
		crac_img_puts(b, "\"");
	switch (keep) {
	case KEEP_NONE:
		/* no end names it from run to run: each end as what it is
		 * every time, "(unnamed)" or an autobound "@?????" (a socket
		 * pair with its other end in another process: never '*',
		 * which would cover the program's every Unix socket, those
		 * to named services too); unconnected, '*' as the checks
		 * write it (runtime/checks.c) */
		if (!pl) {
			crac_img_puts(b, "*");
			break;
		}
		put_unstable_end(b, l, ll);
		crac_img_puts(b, "->");
		put_unstable_end(b, p, pl);
		break;
	case KEEP_LOCAL_PORT: {
		/* "*:PORT": whichever address of this host the peer reached */
		size_t colon = strlen(lt);
		while (colon && lt[colon - 1] != ':')
			colon--;
		crac_img_puts(b, "*");
		crac_obj_put_glob_literal(b, lt + (colon ? colon - 1 : 0), sizeof(lt));
		crac_img_puts(b, "->*");
		break;
	}
	case KEEP_LOCAL:
		crac_obj_put_glob_literal(b, lt, sizeof(lt));
		crac_img_puts(b, pl ? "->*" : "");
		break;
	case KEEP_PEER:
		crac_img_puts(b, "*->");
		crac_obj_put_glob_literal(b, pt, sizeof(pt));
		break;
	case KEEP_BOTH:
		crac_obj_put_glob_literal(b, lt, sizeof(lt));
		crac_img_puts(b, "->");
		crac_obj_put_glob_literal(b, pt, sizeof(pt));
		break;
	}
	if (quote)
		crac_img_puts(b, "\"");
}

/* "L -> P) cannot be carried; a policy `KIND GLOB close` ..." for a connection. */
static void refuse_connection(struct crac_img_buf *why, const char *what, int domain, int type,
			      const void *l, uint32_t ll, const void *p, uint32_t pl)
{
	crac_img_puts(why, what);
	crac_img_puts(why, " (");
	put_addr(why, l, ll);
	crac_img_puts(why, " -> ");
	if (pl)
		put_addr(why, p, pl);
	else
		crac_img_puts(why, "(unnamed)");
	crac_img_puts(why, ") cannot be carried; a policy `");
	crac_img_puts(why, crac_obj_policy_kind(domain, type));
	put_ch(why, ' ');
	/* the glob the safety checks suggest too (runtime/checks.c) */
	crac_obj_put_connection_glob(why, domain, l, ll, p, pl);
	crac_img_puts(why, " close` restores it closed: the program sees its peer gone");
}

/* SO_RCVBUF / SO_SNDBUF as the program set them (halved), or 0 when a new socket has the same. */
static uint64_t buffer_sizes(int fd, int domain, int type, int proto)
{
	long fresh = sys_socket(domain, type | SOCK_CLOEXEC, proto);
	uint64_t out = 0;

	if (fresh < 0)
		return 0;
	long r = getopt_int(fd, SOL_SOCKET, SO_RCVBUF), r0 = getopt_int((int)fresh, SOL_SOCKET, SO_RCVBUF);
	long s = getopt_int(fd, SOL_SOCKET, SO_SNDBUF), s0 = getopt_int((int)fresh, SOL_SOCKET, SO_SNDBUF);
	sys_close(fresh);
	if (r > 0 && r0 > 0 && r != r0)
		out |= (uint64_t)(r / 2);
	if (s > 0 && s0 > 0 && s != s0)
		out |= (uint64_t)(s / 2) << 32;
	return out;
}

/*
 * A sock_diag request for Unix sockets sent: the netlink descriptor to read
 * the answer from (the caller closes it), or -errno. flags: NLM_F_REQUEST,
 * with NLM_F_DUMP for every socket in `states`; ino: the one socket, else 0.
 */
static long unix_diag_ask(uint16_t flags, uint32_t states, uint32_t ino, uint32_t show)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} q;
	struct sockaddr_nl sa;
	long nl = sys_socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (nl < 0)
		return nl;
	memset(&q, 0, sizeof(q));
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	q.h.nlmsg_len = sizeof(q);
	q.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.h.nlmsg_flags = flags;
	q.r.sdiag_family = AF_UNIX;
	q.r.udiag_states = states;
	q.r.udiag_ino = ino;
	q.r.udiag_show = show;
	if (ino)
		q.r.udiag_cookie[0] = q.r.udiag_cookie[1] = ~0u;
	long n = SYS(SYS_sendto, nl, &q, sizeof(q), 0, &sa, sizeof(sa));
	if (n < 0) {
		sys_close(nl);
		return n;
	}
	return nl;
}

/*
 * The attributes (struct rtattr) of a sock_diag answer, from *at to end,
 * one a call: true with the next one's header in *ra, its payload in *data
 * and *at moved past it; false at the end, or at an attribute whose length
 * does not fit in what is left (nothing after it is read).
 */
static bool unix_diag_attr_next(const char **at, const char *end, struct rtattr *ra, const char **data)
{
	if (*at + sizeof(*ra) > end)
		return false;
	memcpy(ra, *at, sizeof(*ra));
	if (ra->rta_len < sizeof(*ra) || *at + ra->rta_len > end)
		return false;
	*data = *at + RTA_LENGTH(0);
	*at += RTA_ALIGN(ra->rta_len);
	return true;
}

/*
 * A Unix socket's peer inode and shutdown bits (sock_diag). 0, or -errno
 * when the kernel cannot tell (no unix_diag).
 */
static int unix_peer(uint64_t ino, uint64_t *peer, unsigned *shut)
{
	union {
		struct nlmsghdr h;
		char buf[1024];
	} a;
	long nl = unix_diag_ask(NLM_F_REQUEST, ~0u, (uint32_t)ino, UDIAG_SHOW_PEER), n;

	*peer = 0;
	*shut = 0;
	if (nl < 0)
		return (int)nl;
	do
		n = SYS(SYS_recvfrom, nl, a.buf, sizeof(a.buf), 0, 0, 0);
	while (n == -EINTR);
	sys_close(nl);
	if (n < 0)
		return (int)n;
	if ((uint64_t)n < NLMSG_LENGTH(sizeof(struct unix_diag_msg)) || a.h.nlmsg_len > (uint64_t)n)
		return -EPROTO;
	if (a.h.nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *err = NLMSG_DATA(&a.h);
		return err->error < 0 ? err->error : -EPROTO;
	}
	if (a.h.nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return -EPROTO;
	const struct unix_diag_msg *m = NLMSG_DATA(&a.h);
	const char *at = (const char *)(m + 1), *end = a.buf + a.h.nlmsg_len, *data;
	struct rtattr ra;
	while (unix_diag_attr_next(&at, end, &ra, &data)) {
		if (ra.rta_type == UNIX_DIAG_PEER && ra.rta_len >= RTA_LENGTH(4)) {
			uint32_t v;
			memcpy(&v, data, 4);
			*peer = v;
		} else if (ra.rta_type == UNIX_DIAG_SHUTDOWN && ra.rta_len >= RTA_LENGTH(1)) {
			*shut = (unsigned char)data[0];
		}
	}
	return 0;
}

/* A descriptor of this process (from 3 up, not skipped) whose inode is ino, or -1. */
static int fd_of_inode(const struct crac_obj_capture *c, uint64_t ino)
{
	char dents[2048];
	struct crac_obj_fds fds;
	int found = -1, v;

	if (crac_obj_fds_open(&fds, dents, sizeof(dents)) < 0)
		return -1;
	while (found < 0 && (v = crac_obj_fds_next(&fds)) >= 0) {
		if (v < 3)
			continue;
		int skip = 0;
		for (int k = 0; k < c->n_skip; k++)
			skip |= c->skip[k] == v;
		struct stat st;
		if (!skip && sys_fstat(v, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK && st.st_ino == ino)
			found = v;
	}
	crac_obj_fds_close(&fds);
	return found;
}

/*
 * The length to bind or connect a socket address of len bytes with. A Unix
 * path of sizeof(sun_path) bytes has no NUL: the kernel names such a socket
 * with one byte more than struct sockaddr_un (it counts the NUL it adds),
 * and getsockname(2) and getpeername(2) give that length, which bind(2)
 * and connect(2) refuse (EINVAL): cut to the structure's size, the same
 * path. Images written before this was done hold such lengths too.
 */
static uint32_t addr_len(const void *sa, uint32_t len)
{
	uint16_t family;

	if (len < sizeof(family))
		return len;
	memcpy(&family, sa, sizeof(family));
	return family == AF_UNIX && len > sizeof(struct sockaddr_un) ? (uint32_t)sizeof(struct sockaddr_un) : len;
}

/* ---- capture ------------------------------------------------------------------------ */

static int put_addrs(struct crac_obj_capture *c, struct crac_img_fd *e, const void *l, uint32_t ll, const void *p,
		     uint32_t pl, struct crac_img_buf *why)
{
	struct sock_addrs a;
	int rc;

	memset(&a, 0, sizeof(a));
	ll = addr_len(l, ll);
	if (p)
		pl = addr_len(p, pl);
	a.llen = ll < sizeof(a.l) ? ll : sizeof(a.l);
	a.plen = pl < sizeof(a.p) ? pl : sizeof(a.p);
	memcpy(a.l, l, a.llen);
	if (p)
		memcpy(a.p, p, a.plen);
	else
		a.plen = 0;
	if ((rc = crac_obj_put_blob(c, e, &a, sizeof(a))) < 0)
		crac_img_puts(why, "no room for its address");
	return rc;
}

/* Options of a listener or datagram socket (u[4], u[5]). */
static void capture_options(const struct crac_obj_fd *d, struct crac_img_fd *e, int domain, int type, int proto)
{
	uint32_t o = 0;

	o |= getopt_int(d->fd, SOL_SOCKET, SO_REUSEADDR) > 0 ? O_REUSEADDR : 0;
	o |= getopt_int(d->fd, SOL_SOCKET, SO_REUSEPORT) > 0 ? O_REUSEPORT : 0;
	o |= getopt_int(d->fd, SOL_SOCKET, SO_KEEPALIVE) > 0 ? O_KEEPALIVE : 0;
	o |= getopt_int(d->fd, SOL_SOCKET, SO_BROADCAST) > 0 ? O_BROADCAST : 0;
	if (domain == AF_INET6)
		o |= getopt_int(d->fd, IPPROTO_IPV6, IPV6_V6ONLY) > 0 ? O_V6ONLY : 0;
	if ((domain == AF_INET || domain == AF_INET6) && type == SOCK_STREAM)
		o |= getopt_int(d->fd, IPPROTO_TCP, TCP_NODELAY) > 0 ? O_NODELAY : 0;
	e->u[4] = o;
	e->u[5] = buffer_sizes(d->fd, domain, type, proto);
}

/* A Unix path (or abstract name) to bind again: absolute paths only. */
static int unix_name_ok(const struct sockaddr_un *a, uint32_t len, struct crac_img_fd *e, struct crac_img_buf *why)
{
	uint32_t off = (uint32_t)offsetof(struct sockaddr_un, sun_path);

	if (len <= off || !a->sun_path[0])
		return 0;   /* unnamed or abstract */
	if (a->sun_path[0] != '/') {
		crac_img_puts(why, "a Unix socket bound to a relative path (");
		put_addr(why, a, len);
		crac_img_puts(why, ") is not carried: the restored process may run in another directory");
		return -ENOTSUP;
	}
	char path[sizeof(a->sun_path) + 1];
	uint32_t n = 0;
	while (off + n < len && n < sizeof(a->sun_path) && a->sun_path[n]) {
		path[n] = a->sun_path[n];
		n++;
	}
	path[n] = 0;
	struct stat st;
	if (e && sys_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK)
		e->u[7] = (st.st_mode & 07777) + 1;
	return 0;
}

/* The queued bytes of a pair end (stream: peeked; others: none allowed). */
static int capture_queue(struct crac_obj_capture *c, const struct crac_obj_fd *d, struct crac_img_fd *e,
			 int type, struct crac_img_buf *why)
{
	int inq = 0;
	long rc = sys_ioctl(d->fd, FIONREAD, &inq);

	if (rc < 0)
		inq = 0;
	if (getopt_int(d->fd, SOL_SOCKET, SO_PEEK_OFF) >= 0) {
		crac_img_puts(why, "a Unix socket pair end with SO_PEEK_OFF set is not carried");
		return -ENOTSUP;
	}
	if (inq <= 0)
		return 0;
	if (type != SOCK_STREAM) {
		crac_img_puts(why, "messages queued in a datagram or seqpacket socket pair are not carried");
		return -ENOTSUP;
	}
	if ((uint64_t)inq > (c->scratch_cap ? c->scratch_cap : 1u << 20)) {
		crac_img_puts(why, "more bytes queued in the socket pair than crac carries (1 MiB)");
		return -E2BIG;
	}
	if (c->pages_fd < 0) {
		/* probe: the bytes are read at the checkpoint (queued descriptors refuse it then) */
		e->data_len = (uint64_t)inq;
		return 0;
	}
	struct iovec iov = { c->scratch, (size_t)inq };
	struct msghdr m;
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	do
		rc = SYS(SYS_recvmsg, d->fd, &m, MSG_PEEK | MSG_DONTWAIT, 0, 0, 0);
	while (rc == -EINTR);
	if (rc >= 0 && (m.msg_flags & MSG_CTRUNC)) {
		crac_img_puts(why, "descriptors or credentials queued in the socket pair (SCM_RIGHTS) are not carried");
		return -ENOTSUP;
	}
	if (rc != inq) {
		crac_img_puts(why, "the bytes queued in the socket pair cannot be read without consuming them");
		return rc < 0 ? (int)rc : -EIO;
	}
	if ((rc = crac_obj_put_data(c, e, c->scratch, (uint64_t)inq)) < 0) {
		crac_img_puts(why, "cannot write the bytes queued in it");
		return (int)rc;
	}
	return 0;
}

static int unix_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			struct crac_img_fd *e, int type, int listening, struct crac_img_buf *why,
			const struct sockaddr_un *l, uint32_t ll, const struct sockaddr_un *p, uint32_t pl, int peer_rc)
{
	uint64_t peer = 0;
	unsigned shut = 0;
	int rc;
	uint32_t unnamed = (uint32_t)offsetof(struct sockaddr_un, sun_path);

	/* a datagram socket connected to a name (not a socket pair) connects again */
	int named_peer = type == SOCK_DGRAM && peer_rc == 0 && pl > unnamed;
	if (listening || (type == SOCK_DGRAM && peer_rc < 0) || named_peer) {
		if (type != SOCK_STREAM && type != SOCK_SEQPACKET && type != SOCK_DGRAM)
			goto other;
		if ((rc = unix_name_ok(l, ll, e, why)) < 0 || (named_peer && (rc = unix_name_ok(p, pl, 0, why)) < 0))
			return rc;
		e->u[0] = listening ? R_LISTEN : R_DGRAM;
		capture_options(d, e, AF_UNIX, type, 0);
		return put_addrs(c, e, l, ll, named_peer ? p : 0, pl, why);
	}
	if (type != SOCK_STREAM && type != SOCK_SEQPACKET && type != SOCK_DGRAM)
		goto other;
	if ((rc = unix_peer(d->st.st_ino, &peer, &shut)) < 0) {
		crac_img_puts(why, "the kernel cannot tell where this Unix socket is connected (unix_diag)");
		return rc;
	}
	if (!peer && shut == 3 && type != SOCK_DGRAM) {
		/* its peer is gone: what it still holds, then end of file */
		e->u[0] = R_ORPHAN;
		e->u[2] = (uint64_t)type;
		return capture_queue(c, d, e, type, why);
	}
	if (!peer) {
		crac_img_puts(why, peer_rc < 0 && !shut ? "a Unix socket that neither listens nor is connected (" :
			      "a Unix socket whose peer is closed (");
		put_addr(why, l, ll);
		crac_img_puts(why, ") is not carried");
		return -ENOTSUP;
	}
	int pfd = fd_of_inode(c, peer);
	if (pfd < 0 || ll > unnamed || (peer_rc == 0 && pl > unnamed)) {
		if (peer_rc < 0)
			pl = 0;
		refuse_connection(why, pfd < 0 ? "a Unix socket connected to another process" :
				  "a Unix connection through a named socket", AF_UNIX, type, l, ll, p, pl);
		return -ENOTSUP;
	}
	if (c->pages_fd >= 0 && c->decide) {
		static struct crac_obj_fd t;   /* full capture: only the checkpointing thread runs */
		int dec = crac_obj_read_fd(pfd, &t) == 0 ? c->decide(c->decide_arg, &t) : 0;
		if (dec == CRAC_OBJ_OMIT || (dec > 0 && (dec & 0xffff) && (dec & 0xffff) != CRAC_OBJ_SOCKET)) {
			crac_img_puts(why, "its other end, fd ");
			crac_img_putu(why, (uint64_t)pfd);
			crac_img_puts(why, ", is not carried (a policy closes or leaves it out): close both ends of the pair or neither");
			return -ENOTSUP;
		}
	}
	e->u[0] = R_PAIR;
	e->u[4] = (uint64_t)shut << 16;
	e->u[5] = buffer_sizes(d->fd, AF_UNIX, type, 0);
	e->u[7] = peer;
	(void)i;
	return capture_queue(c, d, e, type, why);
other:
	crac_img_puts(why, "this type of Unix socket is not carried");
	return -ENOTSUP;
}

static int socket_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			  struct crac_img_fd *e, struct crac_img_buf *why)
{
	union {
		struct sockaddr_storage ss;
		struct sockaddr_un un;
	} l, p;
	uint32_t ll = sizeof(l), pl = sizeof(p);
	long domain = getopt_int(d->fd, SOL_SOCKET, SO_DOMAIN), type = getopt_int(d->fd, SOL_SOCKET, SO_TYPE);
	long proto = getopt_int(d->fd, SOL_SOCKET, SO_PROTOCOL), acc = getopt_int(d->fd, SOL_SOCKET, SO_ACCEPTCONN);
	long rc;
	char text[300];
	struct crac_img_buf tb = { text, 0, sizeof(text) };

	if (domain < 0 || type < 0) {
		crac_img_puts(why, "cannot tell what socket it is");
		return domain < 0 ? (int)domain : (int)type;
	}
	memset(&l, 0, sizeof(l));
	memset(&p, 0, sizeof(p));
	if ((rc = SYS(SYS_getsockname, d->fd, &l, &ll, 0, 0, 0)) < 0) {
		crac_img_puts(why, "cannot read its address");
		return (int)rc;
	}
	long peer_rc = SYS(SYS_getpeername, d->fd, &p, &pl, 0, 0, 0);
	if (ll > sizeof(l))
		ll = sizeof(l);
	if (pl > sizeof(p))
		pl = sizeof(p);
	e->u[1] = (uint64_t)domain;
	e->u[2] = (uint64_t)type;
	e->u[3] = proto > 0 ? (uint64_t)proto : 0;
	text[0] = 0;
	put_addr(&tb, &l, ll);

	switch (domain) {
	case AF_INET:
	case AF_INET6:
		if (type == SOCK_STREAM && acc > 0) {
			e->u[0] = R_LISTEN;
		} else if (type == SOCK_STREAM && peer_rc == 0) {
			refuse_connection(why, "an established connection", (int)domain, (int)type, &l, ll, &p, pl);
			return -ENOTSUP;
		} else if (type == SOCK_STREAM) {
			crac_img_puts(why, "a TCP socket that neither listens nor is connected (");
			crac_img_puts(why, text);
			crac_img_puts(why, ": unbound, connecting or closed) is not carried");
			return -ENOTSUP;
		} else if (type == SOCK_DGRAM && (proto == IPPROTO_UDP || proto == 0)) {
			e->u[0] = R_DGRAM;
		} else {
			crac_img_puts(why, "this type of IP socket (raw, ICMP, SCTP, ...) is not carried");
			return -ENOTSUP;
		}
		capture_options(d, e, (int)domain, (int)type, (int)e->u[3]);
		if ((rc = put_addrs(c, e, &l, ll, peer_rc == 0 ? (const void *)&p : 0, pl, why)) < 0)
			return (int)rc;
		if (peer_rc == 0) {
			crac_img_puts(&tb, "->");
			put_addr(&tb, &p, pl);
		}
		break;
	case AF_UNIX:
		if ((rc = unix_capture(c, d, i, e, (int)type, acc > 0, why, &l.un, ll, &p.un, pl, (int)peer_rc)) < 0)
			return (int)rc;
		if (e->u[0] == R_DGRAM && peer_rc == 0 && pl > offsetof(struct sockaddr_un, sun_path)) {
			crac_img_puts(&tb, "->");
			put_addr(&tb, &p, pl);
		}
		if (e->u[0] == R_PAIR || e->u[0] == R_ORPHAN) {
			text[0] = 0;
			tb.len = 0;
			crac_img_puts(&tb, e->u[0] == R_PAIR ? "(socket pair)" : "(socket pair, peer gone)");
		}
		break;
	default:
		crac_img_puts(why, "sockets of this family (netlink, packet, ...) are not carried");
		return -ENOTSUP;
	}
	if ((rc = crac_obj_put_path(c, i, text)) < 0) {
		crac_img_puts(why, "no room for its address");
		return (int)rc;
	}
	return 0;
}

/* ---- restore ------------------------------------------------------------------------ */

static void set_int(long fd, int level, int name, int v)
{
	sys_setsockopt(fd, level, name, &v, sizeof(v));
}

static void restore_options(long fd, const struct crac_img_fd *e)
{
	uint32_t o = (uint32_t)e->u[4];
	uint32_t rcv = (uint32_t)e->u[5], snd = (uint32_t)(e->u[5] >> 32);

	if (o & O_REUSEADDR)
		set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (o & O_REUSEPORT)
		set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (o & O_KEEPALIVE)
		set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	if (o & O_BROADCAST)
		set_int(fd, SOL_SOCKET, SO_BROADCAST, 1);
	if (e->u[1] == AF_INET6)
		set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, (o & O_V6ONLY) ? 1 : 0);
	if (o & O_NODELAY)
		set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (rcv)
		set_int(fd, SOL_SOCKET, SO_RCVBUF, (int)rcv);
	if (snd)
		set_int(fd, SOL_SOCKET, SO_SNDBUF, (int)snd);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	SYS(SYS_nanosleep, &ts, 0, 0, 0, 0, 0);
}

/* The path of a Unix address (NUL-terminated in path, which has room for
 * sizeof(sun_path) + 1 bytes); "" for an abstract or unnamed one. */
static void unix_path_of(const struct sockaddr_un *a, uint32_t len, char *path)
{
	uint32_t off = (uint32_t)offsetof(struct sockaddr_un, sun_path), n = 0;

	while (off + n < len && n < sizeof(a->sun_path) && a->sun_path[n]) {
		path[n] = a->sun_path[n];
		n++;
	}
	path[n] = 0;
}

/* The directory of Unix path `path` ("." for a name without a slash). */
static void unix_dir_of(const char *path, char *dir)
{
	size_t n = 0, slash = (size_t)-1;

	for (; path[n]; n++)
		if (path[n] == '/')
			slash = n;
	if (slash == (size_t)-1) {
		dir[0] = '.';
		dir[1] = 0;
	} else {
		size_t k = slash ? slash : 1;   /* "/sock": its directory is "/" */
		memcpy(dir, path, k);
		dir[k] = 0;
	}
}

/*
 * Can a socket be bound at Unix path `path` (before the point of no
 * return, nothing changed)? Its directory must exist and be writable and
 * searchable by the restoring user (*st: that directory); what is at the
 * path is then looked at by unix_path_free. 0, or -errno and why.
 */
static long unix_dir_ok(const char *path, struct stat *dst, struct crac_img_buf *why)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	struct stat st;

	unix_dir_of(path, dir);
	/* the directory's own path may go through symbolic links (/var/run) */
	long rc = sys_fstatat(AT_FDCWD, dir, &st, 0);
	if (rc == 0 && (st.st_mode & S_IFMT) != S_IFDIR)
		rc = -ENOTDIR;
	if (rc == 0) {
		rc = SYS(SYS_faccessat2, AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS, 0, 0);
		if (rc == -ENOSYS)   /* before Linux 5.8: the real ids, the loader's too */
			rc = SYS(SYS_faccessat, AT_FDCWD, dir, W_OK | X_OK, 0, 0, 0);
		if (rc < 0) {
			crac_img_puts(why, "cannot bind ");
			crac_img_put_escaped(why, path);
			crac_img_puts(why, ": its directory ");
			crac_img_put_escaped(why, dir);
			crac_img_puts(why, rc == -EROFS ? " is on a read-only file system" :
				      " is not writable by this user");
			return rc;
		}
		*dst = st;
		return 0;
	}
	crac_img_puts(why, "cannot bind ");
	crac_img_put_escaped(why, path);
	crac_img_puts(why, ": its directory ");
	crac_img_put_escaped(why, dir);
	crac_img_puts(why, rc == -ENOENT ? " does not exist" : rc == -ENOTDIR ? " is not a directory" :
		      " cannot be looked at");
	return rc;
}

/*
 * Does a Unix socket of this network namespace listen on the socket file
 * *st (sock_diag: the file of every listener, UDIAG_SHOW_VFS)? 1 yes, 0
 * no, -errno when the kernel cannot tell. Asked before a connect(2) tells:
 * that connection reaches the program listening there, which accepts it,
 * finds its peer gone, and an unmodified one may die of SIGPIPE answering
 * it (a restored instance, found by the second restore of its image).
 */
static int unix_listener_on(const struct stat *st)
{
	static char buf[8192] __attribute__((aligned(8)));
	uint32_t kdev = (uint32_t)crac_obj_kdev(st->st_dev);   /* as unix_diag gives it */
	long nl = unix_diag_ask(NLM_F_REQUEST | NLM_F_DUMP, 1u << 10 /* TCP_LISTEN */, 0, UDIAG_SHOW_VFS), n = 0;
	int found = 0, done = 0;

	if (nl < 0)
		return (int)nl;
	while (n >= 0 && !done && !found) {
		do
			n = SYS(SYS_recvfrom, nl, buf, sizeof(buf), 0, 0, 0);
		while (n == -EINTR);
		if (n <= 0) {
			n = n < 0 ? n : -EPROTO;
			break;
		}
		for (long off = 0; off + (long)sizeof(struct nlmsghdr) <= n && !done && !found;) {
			struct nlmsghdr h;
			long k = nl_message(buf, n, off, &h);
			if (k < 0) {
				n = k;
				done = 1;
				break;
			}
			if (k == 0) {
				done = 1;
			} else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY &&
				   h.nlmsg_len >= NLMSG_LENGTH(sizeof(struct unix_diag_msg))) {
				const char *at = buf + off + NLMSG_LENGTH(sizeof(struct unix_diag_msg));
				const char *end = buf + off + h.nlmsg_len, *data;
				struct rtattr ra;
				while (unix_diag_attr_next(&at, end, &ra, &data)) {
					if (ra.rta_type == UNIX_DIAG_VFS && ra.rta_len >= RTA_LENGTH(sizeof(struct unix_diag_vfs))) {
						struct unix_diag_vfs vfs;
						memcpy(&vfs, data, sizeof(vfs));
						found |= vfs.udiag_vfs_ino == (uint32_t)st->st_ino && vfs.udiag_vfs_dev == kdev;
					}
				}
			}
			off += NLMSG_ALIGN(h.nlmsg_len);
		}
	}
	sys_close(nl);
	return found ? 1 : n < 0 ? (int)n : 0;
}

/* The last component of Unix path `path` (its name in its directory). */
static const char *unix_base_of(const char *path)
{
	const char *b = path;

	for (const char *c = path; *c; c++)
		if (*c == '/')
			b = c + 1;
	return b;
}

/* "cannot bind PATH: its directory DIR was replaced since the restore
 * locked it: WHAT"; -ESTALE. */
static long unix_dir_moved(const char *path, const char *what, struct crac_img_buf *why)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

	unix_dir_of(path, dir);
	crac_img_puts(why, "cannot bind ");
	crac_img_put_escaped(why, path);
	crac_img_puts(why, ": its directory ");
	crac_img_put_escaped(why, dir);
	crac_img_puts(why, " was replaced since the restore locked it: ");
	crac_img_puts(why, what);
	return -ESTALE;
}

/*
 * A Unix path to bind: free, or a stale socket file nothing answers on
 * (removed, unless `dry`: the check before the point of no return, which
 * changes nothing). A symbolic link there is never followed, and never
 * removed. dfd (-1: none): the path's directory as the restore opened and
 * locked it; the stale file is removed there, and only if the path still
 * leads to the file looked at in it (the directory replaced meanwhile by
 * someone who can write to its parent: nothing elsewhere is removed).
 * 0, or -errno and why.
 */
static long unix_path_free(const struct sockaddr_un *a, uint32_t len, int type, bool dry, long dfd,
			   struct crac_img_buf *why)
{
	char path[sizeof(a->sun_path) + 1];
	struct stat st;

	unix_path_of(a, len, path);
	long rc;
	int looks = 0;
again:
	rc = sys_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		crac_img_puts(why, "cannot look at ");
		crac_img_put_escaped(why, path);
		return rc;
	}
	if ((st.st_mode & S_IFMT) == S_IFLNK) {
		crac_img_put_escaped(why, path);
		crac_img_puts(why, " is a symbolic link: it is left alone, not followed, and the socket cannot be "
			      "bound there");
		return -EEXIST;
	}
	if ((st.st_mode & S_IFMT) != S_IFSOCK) {
		crac_img_put_escaped(why, path);
		crac_img_puts(why, " exists and is not a socket: it is left alone and the socket cannot be bound there");
		return -EEXIST;
	}
	/* a listener of this network namespace is found without connecting
	 * to it; another's (or where sock_diag cannot tell) by connecting */
	if (unix_listener_on(&st) == 1) {
		crac_img_put_escaped(why, path);
		crac_img_puts(why, " is in use: another process listens there");
		return -EADDRINUSE;
	}
	/* a socket file of another user is not ours to remove, stale or not
	 * (root restoring included: it may be another service's, between
	 * two of its runs) */
	uint64_t me = (uint64_t)sys_geteuid();
	if (st.st_uid != me) {
		crac_img_put_escaped(why, path);
		crac_img_puts(why, " is a socket file of uid ");
		crac_img_putu(why, st.st_uid);
		crac_img_puts(why, ", not of this user (uid ");
		crac_img_putu(why, me);
		crac_img_puts(why, "): it is left alone and the socket cannot be bound there");
		return -EEXIST;
	}
	long s = sys_socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		crac_img_puts(why, "cannot make a socket to try ");
		crac_img_put_escaped(why, path);
		return s;
	}
	do
		rc = SYS(SYS_connect, s, a, len, 0, 0, 0);
	while (rc == -EINTR);
	sys_close(s);
	/* gone since the look: another restore of the image removed the
	 * stale file (and may be binding there now): look again */
	if (rc == -ENOENT && ++looks < 5)
		goto again;
	if (rc == -ECONNREFUSED) {
		/* a socket file nothing listens on: left by the checkpointed
		 * process; removed at the restore (unlinkat removes a link
		 * planted there meanwhile, not what it points to) */
		if (dry)
			return 0;
		if (dfd >= 0) {
			struct stat in;
			if (sys_fstatat(dfd, unix_base_of(path), &in, AT_SYMLINK_NOFOLLOW) < 0 || in.st_dev != st.st_dev ||
			    in.st_ino != st.st_ino)
				return unix_dir_moved(path, "nothing is removed nor bound there", why);
			rc = SYS(SYS_unlinkat, dfd, unix_base_of(path), 0, 0, 0, 0);
		} else {
			rc = SYS(SYS_unlinkat, AT_FDCWD, path, 0, 0, 0, 0);
		}
		if (rc < 0 && rc != -ENOENT) {
			crac_img_puts(why, "cannot remove the stale socket file ");
			crac_img_put_escaped(why, path);
			return rc;
		}
		return 0;
	}
	crac_img_put_escaped(why, path);
	crac_img_puts(why, rc == 0 || rc == -EAGAIN || rc == -EINPROGRESS || rc == -EPROTOTYPE ?
		      " is in use: another process listens there" : ": cannot tell whether another process listens there");
	return rc == 0 || rc == -EAGAIN || rc == -EINPROGRESS || rc == -EPROTOTYPE ? -EADDRINUSE : rc;
}

/* A listener or datagram socket: new socket, options, bind, listen. */
union sock_any {
	struct sockaddr_storage ss;
	struct sockaddr_un un;
};

/* The bound address of entry e from its blob: its length, or -EBADMSG. */
static long bound_addr(const struct crac_img_view *v, const struct crac_img_fd *e, union sock_any *a,
		       struct crac_img_buf *why)
{
	struct sock_addrs sa;

	if (e->blob_len != sizeof(sa)) {
		crac_img_puts(why, "its address in the image is damaged");
		return -EBADMSG;
	}
	memcpy(&sa, v->blobs + e->blob_off, sizeof(sa));
	uint32_t len = sa.llen;
	if (len < 2 || len > sizeof(*a) || len > sizeof(sa.l) || sa.plen > sizeof(sa.p)) {
		crac_img_puts(why, "its address in the image is damaged");
		return -EBADMSG;
	}
	memset(a, 0, sizeof(*a));
	memcpy(a, sa.l, len);
	return addr_len(a, len);
}

/* An IP address with a port (a Unix address with a name: unix_path_free). */
static int ip_named(const struct crac_img_fd *e, const union sock_any *a)
{
	return e->u[1] == AF_INET ? ((const struct sockaddr_in *)a)->sin_port != 0 :
	       e->u[1] == AF_INET6 ? ((const struct sockaddr_in6 *)a)->sin6_port != 0 : 0;
}

/* Binds fd to a (len bytes) as entry e was bound: retries the port a
 * closing socket holds (the checkpointed process exiting): 200 ms at most. */
static long bind_again(long fd, const struct crac_img_fd *e, const union sock_any *a, uint32_t len,
		       struct crac_img_buf *why)
{
	for (int tries = 0;; tries++) {
		long rc = SYS(SYS_bind, fd, a, len, 0, 0, 0);
		if (rc >= 0)
			return 0;
		if (rc == -EADDRINUSE && e->u[1] != AF_UNIX && !(e->u[4] & O_REUSEADDR) && tries < 10) {
			sleep_ms(20);
			continue;
		}
		/* the entry's label names the address */
		crac_img_puts(why, rc == -EADDRINUSE ? "the address is taken: another process holds it" :
			      "cannot bind the address again");
		return rc;
	}
}

/*
 * The sockets the check bound (and made listen) before the point of no
 * return, kept for restore_bound: the port is the restore's from the check
 * on. Bound and closed at once, two restores of one image started together
 * both passed the check and the second failed at the bind, after its point
 * of no return (a 300 MiB image: every time), where `crac start` can no
 * longer start the program cold. Kept only when the loader's
 * close_inherited step spares them (crac_obj_socket_held, then
 * crac_obj_socket_held_kept: not under socket activation); else
 * restore_bound binds as before.
 *
 * A held listener listens from the check on (SOMAXCONN): a client that
 * connects while the restore runs is queued, not refused. When the restore
 * succeeds the held socket is the program's listener (restore_bound), so
 * the queued connections are handed over and the program accepts them as
 * any made while it was stopped. When the restore ends before the program
 * runs (refused, killed, a failure after the point of no return), the held
 * socket is closed with the loader and the kernel resets each queued
 * connection: its client gets ECONNRESET at once, never a hang
 * (tests/cli/robust_port_backlog.bats). Datagrams a held UDP socket
 * received are handed over or dropped alike.
 */
#define HELD_MAX 64
static struct { uint32_t entry; int fd; } held[HELD_MAX];
static int n_held;
static int held_valid;   /* they survived close_inherited */

/*
 * The socket file of each Unix path socket the loader bound before its
 * point of no return (crac_obj_socket_hold_path): its device and inode as
 * the bind made it, so that a restore refused before the point of no
 * return removes it again (crac_obj_socket_unhold), and only if the file
 * at the path is still that one. ino 0: not known, never removed.
 */
static struct { uint64_t dev, ino; char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; } unix_made[HELD_MAX];
static int n_made;

/*
 * The directory of each Unix path the check looked at: the restore binds
 * there only if the path still leads to that directory (a directory of
 * the path replaced meanwhile, say by a symbolic link, by someone who can
 * write to its parent: root restoring is not led to remove a stale socket
 * or bind elsewhere).
 */
static struct { uint32_t entry; uint64_t dev, ino; } unix_dirs[HELD_MAX];
static int n_unix_dirs;

/* Is dir (entry i's Unix path's directory), whose status is *st (NULL: it
 * could not be had), the directory the restore checked? 0, or -ESTALE and
 * why. Entries the check recorded no directory for pass. */
static long unix_dir_checked(uint32_t i, const char *path, const char *dir, const struct stat *st,
			     struct crac_img_buf *why)
{
	for (int k = 0; k < n_unix_dirs; k++) {
		if (unix_dirs[k].entry != i)
			continue;
		if (st && st->st_dev == unix_dirs[k].dev && st->st_ino == unix_dirs[k].ino)
			return 0;
		crac_img_puts(why, "cannot bind ");
		crac_img_put_escaped(why, path);
		crac_img_puts(why, ": its directory ");
		crac_img_put_escaped(why, dir);
		crac_img_puts(why, " was replaced since the restore checked it: the socket is not bound there");
		return -ESTALE;
	}
	return 0;
}

static long unix_dir_same(uint32_t i, const char *path, struct crac_img_buf *why)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	struct stat st;

	unix_dir_of(path, dir);
	return unix_dir_checked(i, path, dir, sys_fstatat(AT_FDCWD, dir, &st, 0) == 0 ? &st : NULL, why);
}

/*
 * Two restores of one image (two `crac restore` runs, say) may bind one
 * Unix path at once: between restore A's bind and its listen, restore B
 * found A's socket file answering nothing (connect refused), took it for
 * the stale file of the checkpointed process, removed it and bound its
 * own: A then listened on a file no longer there, unreachable, and did not
 * know. The second look at the path, the removal of a stale file, the
 * bind and the listen of a Unix path are therefore made holding an
 * exclusive flock(2) on the path's directory (unix_bind_locked; the
 * directory opened without writing anything there; the same directory the
 * check saw, by device and inode, else -ESTALE). B waits for A's listen,
 * then finds A listening and refuses, naming the path. The wait is bounded
 * (UNIX_LOCK_MS): a directory locked longer refuses the restore, saying
 * so. A file system without flock (EINVAL, ENOLCK, ...), or a directory
 * the restoring user cannot read, is not locked: as before.
 *
 * The path is looked at, the stale file removed and the socket bound by
 * the path (bind(2) takes no directory descriptor), so the directory may
 * be replaced after it was locked: the stale file is removed through the
 * locked directory's descriptor, only if the path still led to it there,
 * and the socket file made must be in that directory too, else it is
 * removed again; either refuses the restore (-ESTALE), nothing removed
 * or left bound elsewhere (CRAC_LOADER_TEST_LOCKED_DELAY_MS, tests only:
 * ms slept once the directory is locked, the window made wide).
 *
 * This is done before the loader's point of no return
 * (crac_obj_socket_hold_path), so that B is refused while the restoring
 * command can still do something else; restore_bound only when the socket
 * could not be held.
 *
 * CRAC_LOADER_TEST_LISTEN_DELAY_MS (tests only, loader.c): ms slept between
 * the bind and the listen, the window made wide.
 */
#define UNIX_LOCK_MS 10000
static long test_listen_delay_ms;

void crac_obj_socket_test_listen_delay(long ms)
{
	test_listen_delay_ms = ms;
}

/* CRAC_LOADER_TEST_LOCKED_DELAY_MS (tests only, loader.c): ms slept once
 * the directory is locked, before the stale file's removal and the bind. */
static long test_locked_delay_ms;

void crac_obj_socket_test_locked_delay(long ms)
{
	test_locked_delay_ms = ms;
}

/* Entry i's Unix path's directory, opened and locked: *lock_fd is the
 * descriptor (close it to unlock), or -1 when the file system cannot lock.
 * 0, or -errno and why. */
static long unix_dir_lock(uint32_t i, const char *path, long *lock_fd, struct crac_img_buf *why)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	struct stat st;
	long rc;

	*lock_fd = -1;
	unix_dir_of(path, dir);
	long dfd = SYS(SYS_openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
	if (dfd == -EACCES)
		return 0;   /* writable but not readable (mode 0300): unlocked, as before */
	if (dfd < 0) {
		crac_img_puts(why, "cannot bind ");
		crac_img_put_escaped(why, path);
		crac_img_puts(why, ": cannot open its directory ");
		crac_img_put_escaped(why, dir);
		crac_img_puts(why, " to lock it");
		return dfd;
	}
	/* the directory opened is the one the check saw */
	if ((rc = unix_dir_checked(i, path, dir, sys_fstatat(dfd, "", &st, AT_EMPTY_PATH) == 0 ? &st : NULL,
				   why)) < 0) {
		sys_close(dfd);
		return rc;
	}
	for (long waited = 0;; waited += 10) {
		rc = SYS(SYS_flock, dfd, LOCK_EX | LOCK_NB, 0, 0, 0, 0);
		if (rc == 0) {
			*lock_fd = dfd;
			return 0;
		}
		if (rc != -EWOULDBLOCK && rc != -EINTR) {
			sys_close(dfd);   /* no flock here: unlocked, as before */
			return 0;
		}
		if (waited >= UNIX_LOCK_MS) {
			sys_close(dfd);
			crac_img_puts(why, "cannot bind ");
			crac_img_put_escaped(why, path);
			crac_img_puts(why, ": its directory ");
			crac_img_put_escaped(why, dir);
			crac_img_puts(why, " stayed locked by another restore binding there for 10 s");
			return -ETIMEDOUT;
		}
		sleep_ms(10);
	}
}

/* Removes the socket file at path if it is still the one made (dev, ino):
 * never another file put there since. */
static void unix_unlink_made(const char *path, uint64_t dev, uint64_t ino)
{
	struct stat st;

	if (ino && sys_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK &&
	    st.st_dev == dev && st.st_ino == ino)
		SYS(SYS_unlinkat, AT_FDCWD, path, 0, 0, 0, 0);
}

/*
 * fd, a new socket of entry i with its options set, bound to the entry's
 * Unix path (a, len) and, for a listener, listening, holding the flock of
 * the path's directory (unix_dir_lock): the directory the check saw, a
 * stale socket file there removed first (unix_path_free), the new file's
 * mode the image's. *made: the device and inode of the socket file made
 * (ino 0: not known). A listen that fails removes the file made. 0, or
 * -errno and why.
 */
static long unix_bind_locked(uint32_t i, long fd, const struct crac_img_fd *e, const union sock_any *a, uint32_t len,
			     const char *path, struct stat *made, struct crac_img_buf *why)
{
	long lock_fd = -1, old_umask = -1, rc;

	made->st_dev = made->st_ino = 0;
	if ((rc = unix_dir_same(i, path, why)) < 0 || (rc = unix_dir_lock(i, path, &lock_fd, why)) < 0)
		goto out;
	for (long ms = test_locked_delay_ms; ms > 0; ms -= 100)
		sleep_ms(ms < 100 ? ms : 100);
	if ((rc = unix_path_free(&a->un, len, (int)e->u[2], false, lock_fd, why)) < 0)
		goto out;
	/* A Unix socket's file gets its mode at the bind, from the umask:
	 * set for that one call (the loader is single-threaded), never
	 * changed afterwards through the path, which another user who can
	 * write to its directory could have replaced by a symlink. */
	if (e->u[7])
		old_umask = SYS(SYS_umask, ~(e->u[7] - 1) & 0777, 0, 0, 0, 0, 0);
	rc = bind_again(fd, e, a, len, why);
	if (old_umask >= 0)
		SYS(SYS_umask, old_umask, 0, 0, 0, 0, 0);
	if (rc < 0)
		goto out;
	/* the file the bind made (another restore of the image does not
	 * touch the path while we hold the lock) */
	if (sys_fstatat(AT_FDCWD, path, made, AT_SYMLINK_NOFOLLOW) < 0 || (made->st_mode & S_IFMT) != S_IFSOCK)
		made->st_dev = made->st_ino = 0;
	/* bound in the directory locked, not elsewhere: the path may have
	 * been led to another directory since it was locked (the socket
	 * file made there is removed again) */
	struct stat in;
	if (lock_fd >= 0 && (sys_fstatat(lock_fd, unix_base_of(path), &in, AT_SYMLINK_NOFOLLOW) < 0 ||
			     !made->st_ino || in.st_dev != made->st_dev || in.st_ino != made->st_ino)) {
		unix_unlink_made(path, made->st_dev, made->st_ino);
		made->st_dev = made->st_ino = 0;
		rc = unix_dir_moved(path, "the socket is not bound there", why);
		goto out;
	}
	for (long ms = test_listen_delay_ms; ms > 0; ms -= 100)
		sleep_ms(ms < 100 ? ms : 100);
	if (e->u[0] == R_LISTEN && (rc = SYS(SYS_listen, fd, SOMAXCONN, 0, 0, 0, 0)) < 0) {
		crac_img_puts(why, "cannot listen on ");
		put_addr(why, a, len);
		unix_unlink_made(path, made->st_dev, made->st_ino);
	}
out:
	if (lock_fd >= 0)
		sys_close(lock_fd);   /* listening: another restore finds it in use */
	return rc;
}

/* The socket held for entry i, taken out of the table; -1 if none. */
static long held_take(uint32_t i)
{
	for (int k = 0; held_valid && k < n_held; k++)
		if (held[k].entry == i && held[k].fd >= 0) {
			long fd = held[k].fd;
			held[k].fd = -1;
			return fd;
		}
	return -1;
}

int crac_obj_socket_held(int *fds, int max)
{
	int n = 0;

	for (int k = 0; k < n_held && n < max; k++)
		if (held[k].fd >= 0)
			fds[n++] = held[k].fd;
	return n;
}

void crac_obj_socket_held_kept(void)
{
	held_valid = 1;
}

/*
 * Before the point of no return: can the listening or bound IP socket (or
 * Unix socket with an abstract name) of entry e have its address again? A
 * socket of its domain, type and options is bound to it (and listens, for
 * a listener), and kept for the restore (held[]): a port another process
 * holds (a second instance restored from the same image, a cold one) then
 * refuses the restore while the restoring command can still do something
 * else (crac start starts the program cold), instead of after it, when the
 * restored process can only stop.
 * A Unix path is only looked at here (nothing bound, nothing removed: the
 * state is untouched if this or a later entry's check refuses the
 * restore): its directory must exist and be writable, and the path be
 * free or a socket file nothing listens on (stale: removed at the bind);
 * any other file, a symbolic link (never followed) or a socket in use
 * refuses the restore here, naming the path. It is bound once every entry
 * passed: crac_obj_socket_hold_path.
 */
int crac_obj_socket_check(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why)
{
	union sock_any a;
	long len, rc;

	if (e->kind != CRAC_OBJ_SOCKET || e->same_as != CRAC_IMG_NO_FD ||
	    (e->u[0] != R_LISTEN && e->u[0] != R_DGRAM) ||
	    (e->u[1] != AF_INET && e->u[1] != AF_INET6 && e->u[1] != AF_UNIX))
		return 0;
	if ((len = bound_addr(v, e, &a, why)) < 0)
		return (int)len;
	if (e->u[1] == AF_UNIX) {
		/* a path: its directory, and what is there now; a name in
		 * the abstract namespace is bound and held as a port is
		 * (below): it has no file to look at, and a second instance
		 * holding it failed the restore at its bind, after the point
		 * of no return */
		char path[sizeof(a.un.sun_path) + 1];
		unix_path_of(&a.un, (uint32_t)len, path);
		if (!path[0] && len > (long)offsetof(struct sockaddr_un, sun_path))
			goto hold;
		if (!path[0])
			return 0;   /* unnamed */
		struct stat dst = { 0 };
		if ((rc = unix_dir_ok(path, &dst, why)) < 0)
			return (int)rc;
		if ((rc = unix_path_free(&a.un, (uint32_t)len, (int)e->u[2], true, -1, why)) < 0)
			return (int)rc;
		if (n_unix_dirs < HELD_MAX) {
			unix_dirs[n_unix_dirs].entry = (uint32_t)(e - v->fds);
			unix_dirs[n_unix_dirs].dev = dst.st_dev;
			unix_dirs[n_unix_dirs++].ino = dst.st_ino;
		}
		return 0;
	}
	if (!ip_named(e, &a))
		return 0;
hold:;
	long fd = sys_socket(e->u[1], e->u[2] | SOCK_CLOEXEC, e->u[3]);
	if (fd < 0) {
		crac_img_puts(why, "cannot make the socket");
		return (int)fd;
	}
	restore_options(fd, e);
	rc = bind_again(fd, e, &a, (uint32_t)len, why);
	/* a listener listens now: a socket that is only bound does not keep
	 * another with SO_REUSEADDR from binding the port too */
	if (rc == 0 && e->u[0] == R_LISTEN && (rc = SYS(SYS_listen, fd, SOMAXCONN, 0, 0, 0, 0)) < 0) {
		crac_img_puts(why, "cannot listen on ");
		put_addr(why, &a, (uint32_t)len);
	}
	/* kept above every descriptor of the image (crac_obj_place moves
	 * descriptors onto the image's numbers) */
	long top = v->h->n_fds ? v->fds[v->h->n_fds - 1].fd : 2, hfd;
	if (rc == 0 && n_held < HELD_MAX && (hfd = sys_fcntl(fd, F_DUPFD_CLOEXEC, top + 1)) >= 0) {
		held[n_held].entry = (uint32_t)(e - v->fds);
		held[n_held++].fd = (int)hfd;
	}
	sys_close(fd);
	return (int)rc;
}

/*
 * Before the point of no return, once every entry passed
 * crac_obj_socket_check: the listening or bound Unix socket of entry e
 * with a path is bound there and kept for the restore (held[]), as a port
 * is, under the directory's flock (unix_bind_locked: the stale socket file
 * removed, the bind, the listen). Of two restores of one image started
 * together, the second thus finds the path in use and is refused here,
 * naming it, while the restoring command can still do something else;
 * bound after the point of no return (restore_bound), it could only stop.
 * The socket file made is recorded (unix_made[]): a restore refused before
 * the point of no return removes it again (crac_obj_socket_unhold). A
 * socket that cannot be held (the table full, no descriptor number above
 * the image's) is not bound now: restore_bound binds it, as before. 0, or
 * -errno and why (an entry of another kind: 0).
 */
int crac_obj_socket_hold_path(const struct crac_img_view *v, const struct crac_img_fd *e, struct crac_img_buf *why)
{
	union sock_any a;
	char path[sizeof(a.un.sun_path) + 1];
	struct stat made;
	long len, rc;

	if (e->kind != CRAC_OBJ_SOCKET || e->same_as != CRAC_IMG_NO_FD ||
	    (e->u[0] != R_LISTEN && e->u[0] != R_DGRAM) || e->u[1] != AF_UNIX)
		return 0;
	if ((len = bound_addr(v, e, &a, why)) < 0)
		return (int)len;
	unix_path_of(&a.un, (uint32_t)len, path);
	if (!path[0] || n_held >= HELD_MAX || n_made >= HELD_MAX)
		return 0;   /* abstract (held by the check), unnamed, or bound by restore_bound */
	uint32_t i = (uint32_t)(e - v->fds);
	long fd = sys_socket(e->u[1], e->u[2] | SOCK_CLOEXEC, e->u[3]);
	if (fd < 0) {
		crac_img_puts(why, "cannot make the socket");
		return (int)fd;
	}
	/* kept above every descriptor of the image (crac_obj_place moves
	 * descriptors onto the image's numbers): moved there before it is
	 * bound, so that a socket that cannot be kept (the soft
	 * RLIMIT_NOFILE is raised only at the restore) changes nothing */
	long top = v->h->n_fds ? v->fds[v->h->n_fds - 1].fd : 2;
	long hfd = sys_fcntl(fd, F_DUPFD_CLOEXEC, top + 1);
	sys_close(fd);
	if (hfd < 0)
		return 0;
	restore_options(hfd, e);
	if ((rc = unix_bind_locked(i, hfd, e, &a, (uint32_t)len, path, &made, why)) < 0) {
		sys_close(hfd);
		return (int)rc;
	}
	held[n_held].entry = i;
	held[n_held++].fd = (int)hfd;
	unix_made[n_made].dev = made.st_dev;
	unix_made[n_made].ino = made.st_ino;
	memcpy(unix_made[n_made++].path, path, sizeof(path));
	return 0;
}

void crac_obj_socket_unhold(void)
{
	for (int k = 0; k < n_made; k++)
		unix_unlink_made(unix_made[k].path, unix_made[k].dev, unix_made[k].ino);
	n_made = 0;
}

static long restore_bound(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	union sock_any a;
	long rc, len;

	if ((len = bound_addr(r->v, e, &a, why)) < 0)
		return len;
	/* bound (and listening) since the check: the port was ours already */
	long fd = held_take(i);
	if (fd >= 0)
		return crac_obj_place(r, i, fd);
	fd = sys_socket(e->u[1], e->u[2] | SOCK_CLOEXEC, e->u[3]);
	if (fd < 0) {
		crac_img_puts(why, "cannot make the socket");
		return fd;
	}
	restore_options(fd, e);
	if (e->u[1] == AF_UNIX && a.un.sun_path[0]) {
		/* a path the check could not hold: bound now, as it would have */
		char path[sizeof(a.un.sun_path) + 1];
		struct stat made;
		unix_path_of(&a.un, (uint32_t)len, path);
		rc = unix_bind_locked(i, fd, e, &a, (uint32_t)len, path, &made, why);
	} else {
		int named = e->u[1] == AF_UNIX ? len > (long)offsetof(struct sockaddr_un, sun_path) : ip_named(e, &a);
		rc = named ? bind_again(fd, e, &a, (uint32_t)len, why) : 0;
		if (rc == 0 && e->u[0] == R_LISTEN && (rc = SYS(SYS_listen, fd, SOMAXCONN, 0, 0, 0, 0)) < 0) {
			crac_img_puts(why, "cannot listen on ");
			put_addr(why, &a, (uint32_t)len);
		}
	}
	if (rc < 0) {
		sys_close(fd);
		return rc;
	}
	return crac_obj_place(r, i, fd);
}

/* Queues a pair end's bytes again: written into the other end. */
static long requeue(struct crac_obj_restore *r, const struct crac_img_fd *e, long writer, struct crac_img_buf *why)
{
	if (!e->data_len)
		return 0;
	uint64_t size = (e->data_len + 4095) & ~4095ull;
	void *buf = (void *)sys_mmap(0, size, 3 /* PROT_READ | PROT_WRITE */, 0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */,
				     -1, 0);
	long rc;
	if ((long)buf < 0 && (long)buf > -4096) {
		crac_img_puts(why, "no memory for its queued bytes");
		return (long)buf;
	}
	if ((rc = crac_obj_read_data(r, e, buf, e->data_len)) < 0) {
		crac_img_puts(why, "cannot read its queued bytes from the image");
	} else {
		for (uint64_t done = 0; done < e->data_len;) {
			rc = SYS(SYS_sendto, writer, (char *)buf + done, e->data_len - done,
				 MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
			if (rc == -EINTR)
				continue;
			if (rc <= 0) {
				crac_img_puts(why, "its queued bytes do not fit in the new socket pair");
				rc = rc < 0 ? rc : -EIO;
				break;
			}
			done += (uint64_t)rc;
			rc = 0;
		}
	}
	sys_munmap(buf, size);
	return rc;
}

/* A pair made again: two new ends, not on each other's numbers. */
static long make_pair(int type, long sv[2], uint32_t target0, struct crac_img_buf *why)
{
	int fds[2];
	long rc = SYS(SYS_socketpair, AF_UNIX, type | SOCK_CLOEXEC, 0, fds, 0, 0);

	if (rc < 0) {
		crac_img_puts(why, "cannot make a new socket pair");
		return rc;
	}
	sv[0] = fds[0];
	sv[1] = fds[1];
	if (sv[1] == (long)target0) {
		/* placing the first end would close the second */
		long moved = sys_fcntl(sv[1], F_DUPFD_CLOEXEC, 3);
		sys_close(sv[1]);
		sv[1] = moved;
		if (moved < 0) {
			sys_close(sv[0]);
			crac_img_puts(why, "cannot make a new socket pair");
			return moved;
		}
	}
	return 0;
}

static long shut_how(unsigned bits)
{
	/* RCV_SHUTDOWN 1, SEND_SHUTDOWN 2 */
	return bits == 3 ? SHUT_RDWR : bits == 2 ? SHUT_WR : SHUT_RD;
}

static long restore_pair(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i], *f = 0;
	uint32_t j = 0;
	long sv[2], rc;

	for (uint32_t k = 0; k < r->v->h->n_fds && !f; k++) {
		const struct crac_img_fd *x = &r->v->fds[k];
		if (k != i && x->kind == CRAC_OBJ_SOCKET && x->same_as == CRAC_IMG_NO_FD && x->u[0] == R_PAIR &&
		    x->obj == e->u[7] && x->u[7] == e->obj && x->u[2] == e->u[2]) {
			f = x;
			j = k;
		}
	}
	if (!f) {
		crac_img_puts(why, "the other end of its socket pair is missing from the image");
		return -EBADMSG;
	}
	if ((rc = make_pair((int)e->u[2], sv, (uint32_t)e->fd, why)) < 0)
		return rc;
	restore_options(sv[0], e);
	restore_options(sv[1], f);
	if ((rc = crac_obj_place(r, i, sv[0])) < 0) {
		sys_close(sv[1]);
		crac_img_puts(why, "cannot put the socket pair at its number");
		return rc;
	}
	if ((rc = crac_obj_place(r, j, sv[1])) < 0) {
		crac_img_puts(why, "cannot put the other end of the socket pair at fd ");
		crac_img_putu(why, (uint64_t)f->fd);
		return rc;
	}
	/* each end's queued bytes are written by the other end; then the shutdowns */
	if ((rc = requeue(r, e, f->fd, why)) < 0 || (rc = requeue(r, f, e->fd, why)) < 0)
		return rc;
	unsigned se = (unsigned)(e->u[4] >> 16) & 3, sf = (unsigned)(f->u[4] >> 16) & 3;
	if (se)
		SYS(SYS_shutdown, e->fd, shut_how(se), 0, 0, 0, 0);
	if (sf)
		SYS(SYS_shutdown, f->fd, shut_how(sf), 0, 0, 0, 0);
	return 0;
}

/* A stream or seqpacket end whose peer is gone: its bytes, then end of file. */
static long restore_orphan(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	long sv[2], rc;

	if ((rc = make_pair((int)e->u[2], sv, (uint32_t)e->fd, why)) < 0)
		return rc;
	rc = requeue(r, e, sv[1], why);
	sys_close(sv[1]);
	if (rc < 0) {
		sys_close(sv[0]);
		return rc;
	}
	return crac_obj_place(r, i, sv[0]);
}

/* Second pass: a datagram socket connects again, every socket being bound now. */
static long socket_finish(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	const struct crac_img_fd *e = &r->v->fds[i];
	struct sock_addrs sa;
	long rc;

	if (e->u[0] != R_DGRAM || e->blob_len != sizeof(sa))
		return 0;
	memcpy(&sa, r->v->blobs + e->blob_off, sizeof(sa));
	if (!sa.plen)
		return 0;
	if (sa.plen < 2 || sa.plen > sizeof(sa.p)) {
		crac_img_puts(why, "its peer's address in the image is damaged");
		return -EBADMSG;
	}
	sa.plen = addr_len(sa.p, sa.plen);
	do
		rc = SYS(SYS_connect, e->fd, sa.p, sa.plen, 0, 0, 0);
	while (rc == -EINTR);
	if (rc < 0) {
		crac_img_puts(why, "cannot connect again to ");
		put_addr(why, sa.p, sa.plen);
		crac_img_puts(why, rc == -ECONNREFUSED || rc == -ENOENT ? " (nothing is there now)" : "");
	}
	return rc;
}

static long socket_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	switch (r->v->fds[i].u[0]) {
	case R_LISTEN:
	case R_DGRAM:
		return restore_bound(r, i, why);
	case R_PAIR:
		return restore_pair(r, i, why);
	case R_ORPHAN:
		return restore_orphan(r, i, why);
	}
	crac_img_puts(why, "unknown kind of socket in the image");
	return -EBADMSG;
}

const struct crac_obj_ops crac_obj_socket_ops = {
	.name = "socket",
	.capture = socket_capture,
	.restore = socket_restore,
	.finish = socket_finish,
};

/* ---- a connection a policy closed ---------------------------------------------------- */

static int closed_capture(struct crac_obj_capture *c, const struct crac_obj_fd *d, uint32_t i,
			  struct crac_img_fd *e, struct crac_img_buf *why)
{
	/* only the flags (the table fills them) */
	(void)c, (void)d, (void)i, (void)e, (void)why;
	return 0;
}

static long closed_restore(struct crac_obj_restore *r, uint32_t i, struct crac_img_buf *why)
{
	long sv[2], rc;

	if ((rc = make_pair(SOCK_STREAM, sv, (uint32_t)r->v->fds[i].fd, why)) < 0)
		return rc;
	sys_close(sv[1]);   /* its peer is gone: reads see end of file, writes EPIPE */
	return crac_obj_place(r, i, sv[0]);
}

const struct crac_obj_ops crac_obj_closed_ops = {
	.name = "closed",
	.capture = closed_capture,
	.restore = closed_restore,
};
