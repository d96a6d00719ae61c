/* SPDX-License-Identifier: MIT */
/*
 * test_policy_glob.c - the globs a refusal suggests (objects/glob.c,
 * objects/socket.c crac_obj_put_connection_glob) parse as a policy rule
 * (runtime/policy.c) and match the item they were made for and the same
 * item of the next run: another ephemeral port, another temporary's random
 * name. The rule is loaded with crac_policy_add and matched against the
 * inventory's own name of a new item (crac__inventory_take), as a
 * checkpoint does; and the safety checks (sim engine: runtime/checks.c)
 * and the image engine's probe (socket.c) suggest the same rule.
 */
#include "harness.h"

#include <crac.h>

#include "objects/objects.h"
#include "runtime/checks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <sched.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <locale.h>
#include <time.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/crac-test-glob-XXXXXX";

/* crac_obj_put_name_glob(name) as text */
static const char *name_glob(const char *name)
{
	static char out[9000];
	struct crac_img_buf b = { out, 0, sizeof(out) };
	out[0] = 0;
	crac_obj_put_name_glob(&b, name);
	return out;
}

/* The glob of rule "KIND GLOB ACTION" as policy.c reads it (quotes
 * removed), for fnmatch: what the tokenizer keeps of a double-quoted word. */
static const char *unquoted(const char *glob)
{
	static char out[9000];
	size_t n = strlen(glob);
	if (n >= 2 && glob[0] == '"' && glob[n - 1] == '"')
		snprintf(out, sizeof(out), "%.*s", (int)(n - 2), glob + 1);
	else
		snprintf(out, sizeof(out), "%s", glob);
	return out;
}

/* Does rule `kind glob close`, loaded as a policy, decide close for the
 * inventory item of this process named `name` of kind `kind`? The rule
 * must parse. */
static bool rule_matches_name(const char *kind, const char *glob, const char *name)
{
	char rule[9100], err[256] = "";
	struct inv_item it;
	struct policy_match m;

	crac_policy_clear();
	snprintf(rule, sizeof(rule), "%s %s close", kind, glob);
	int rc = crac_policy_add(rule, err, sizeof(err));
	CHECKF(rc == 0, "rule \"%s\" does not parse: %s", rule, err);
	memset(&it, 0, sizeof(it));
	it.cls = strcmp(kind, "mapping") ? INV_FD : INV_MAPPING;
	it.kind = kind;
	snprintf(it.name, sizeof(it.name), "%s", name);
	crac__policy_match(&it, &m);
	crac_policy_clear();
	return rc == 0 && m.action == POL_CLOSE;
}

/* The inventory's name of fd (how a checkpoint matches it). */
static bool inventory_name(int fd, char *out, size_t n)
{
	struct inventory inv;
	bool found = false;

	if (crac__inventory_take(&inv, NULL) < 0) {
		crac__inventory_free(&inv);
		return false;
	}
	for (size_t i = 0; i < inv.count; i++)
		if (inv.items[i].cls == INV_FD && inv.items[i].fd == fd) {
			/* (a name longer than out cannot match what the test expects) */
			found = snprintf(out, n, "%s", inv.items[i].name) < (int)n;
		}
	crac__inventory_free(&inv);
	return found;
}

/* Does the suggested rule for connection fd `glob_fd` close the connection
 * at fd `other` (a new one, of the next run)? */
static bool rule_matches_fd(const char *kind, const char *glob, int other)
{
	char name[600];
	if (!inventory_name(other, name, sizeof(name))) {
		CHECKF(0, "fd %d is not in the inventory", other);
		return false;
	}
	return rule_matches_name(kind, glob, name);
}

static void test_literal_names(void)
{
	/* escaped, quoted where the tokenizer needs it */
	CHECK(!strcmp(name_glob("/srv/plain.txt"), "/srv/plain.txt"));
	CHECK(!strcmp(name_glob("/srv/x*y?[1]\\z"), "/srv/x\\*y\\?\\[1\\]\\\\z"));
	CHECK(!strcmp(name_glob("/srv/a b"), "\"/srv/a b\""));
	CHECK(!strcmp(name_glob("/srv/a#b"), "\"/srv/a#b\""));
	CHECK(!strcmp(name_glob("/srv/say \"hi\""), "\"/srv/say ?hi?\""));
	CHECK(!strcmp(name_glob("\"q"), "?q"));
	const char *names[] = { "/srv/plain.txt", "/srv/x*y?[1]\\z", "/srv/a b", "/srv/a#b", "/srv/[ab] #1 *",
				"/srv/say \"hi\"", "\"q" };
	for (size_t k = 0; k < sizeof(names) / sizeof(*names); k++) {
		const char *g = name_glob(names[k]);
		CHECKF(rule_matches_name("file", g, names[k]), "%s: glob %s does not match it", names[k], g);
		CHECKF(fnmatch(unquoted(g), "/srv/other", 0) != 0, "%s: glob %s matches another name", names[k], g);
	}
	/* not deleted, or no random part: as they are */
	CHECK(!strcmp(name_glob("/tmp/.ZendSem.XARx7Y"), "/tmp/.ZendSem.XARx7Y"));
	CHECK(!strcmp(name_glob("/dev/zero (deleted)"), "\"/dev/zero (deleted)\""));
	CHECK(!strcmp(name_glob("/var/app/data.db (deleted)"), "\"/var/app/data.db (deleted)\""));
	CHECK(!strcmp(name_glob("/SYSV0000abcd (deleted)"), "\"/SYSV0000abcd (deleted)\""));
	/* deleted outside a directory for temporaries: replaced by an upgrade, its name stays */
	CHECK(!strcmp(name_glob("/usr/bin/python3 (deleted)"), "\"/usr/bin/python3 (deleted)\""));
	CHECK(!strcmp(name_glob("/srv/app/.lock.XARx7Y (deleted)"), "\"/srv/app/.lock.XARx7Y (deleted)\""));
}

static void test_deleted_temporaries(void)
{
	/* php's opcache lock: mkstemp("/tmp/.ZendSem.XXXXXX"), then unlinked */
	const char *g = name_glob("/tmp/.ZendSem.XARx7Y (deleted)");
	CHECKF(!strcmp(g, "\"/tmp/.ZendSem.* (deleted)\""), "%s", g);
	CHECK(rule_matches_name("file", g, "/tmp/.ZendSem.XARx7Y (deleted)"));
	CHECK(rule_matches_name("file", g, "/tmp/.ZendSem.q00Ncb (deleted)"));
	CHECK(!rule_matches_name("file", g, "/tmp/.ZendSem.q00Ncb"));
	CHECK(!rule_matches_name("file", g, "/tmp/.Other.q00Ncb (deleted)"));
	/* O_TMPFILE: "#INODE" */
	g = name_glob("/var/tmp/#1234567 (deleted)");
	CHECKF(!strcmp(g, "\"/var/tmp/#* (deleted)\""), "%s", g);
	CHECK(rule_matches_name("file", g, "/var/tmp/#98 (deleted)"));
	/* a whole random name (python's tempfile: tmpXXXXXXXX): as it is
	 * (test_broad_globs); a stable part first, in /var/tmp and /dev/shm too */
	g = name_glob("/tmp/tmpk3j_x9a1 (deleted)");
	CHECKF(!strcmp(g, "\"/tmp/tmpk3j_x9a1 (deleted)\""), "%s", g);
	g = name_glob("/var/tmp/app-Ab12Cd (deleted)");
	CHECKF(!strcmp(g, "\"/var/tmp/app-* (deleted)\""), "%s", g);
	g = name_glob("/dev/shm/sem.q00Ncb (deleted)");
	CHECKF(!strcmp(g, "\"/dev/shm/sem.* (deleted)\""), "%s", g);
	CHECK(rule_matches_name("file", g, "/dev/shm/sem.Zz9y8x (deleted)"));
	/* a real temporary, deleted, and the next one */
	char path[256], path2[256];
	snprintf(path, sizeof(path), "%s/.lock.XXXXXX", tmpdir);
	snprintf(path2, sizeof(path2), "%s/.lock.XXXXXX", tmpdir);
	int a = mkstemp(path), b = mkstemp(path2);
	REQUIRE(a >= 0 && b >= 0);
	unlink(path);
	unlink(path2);
	char name[600];
	REQUIRE(inventory_name(a, name, sizeof(name)));
	g = name_glob(name);
	CHECKF(rule_matches_fd("file", g, b), "%s (from %s) does not match fd %d", g, name, b);
	close(a);
	close(b);
}

/*
 * A suggested glob covers the item it was made for and the same item of
 * the next run, never the program's other files: a rule that closes a
 * deleted temporary must not close every deleted file in /tmp. A name that
 * is random as a whole (nothing stable before its random letters) stays
 * literal.
 */
static void test_broad_globs(void)
{
	static const char *const others[] = {
		"/tmp/important.db (deleted)", "/tmp/spill/chunk-0001 (deleted)", "/tmp/zzzzzz (deleted)",
		"/tmp/tmpzz81qq0p (deleted)", "/var/tmp/journal (deleted)", "/dev/shm/.other (deleted)",
		"/dev/shm/.QQQQQQ (deleted)", "/tmp/._/x (deleted)", "/tmp/-_q/queue (deleted)",
	};
	static const char *const names[] = {
		"/tmp/abc123 (deleted)", "/tmp/tmpk3j_x9a1 (deleted)", "/var/tmp/Ab12Cd (deleted)",
		"/dev/shm/.XARx7Y (deleted)", "/tmp/._XARx7Y (deleted)", "/tmp/-_abcdef (deleted)",
		"/tmp/spill/a1b2c3d4 (deleted)",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		const char *g = name_glob(names[i]);
		CHECKF(rule_matches_name("file", g, names[i]), "%s: glob %s does not match it", names[i], g);
		CHECKF(!strchr(unquoted(g), '*'), "%s: glob %s: a wildcard with nothing stable before it", names[i],
		       g);
		for (size_t j = 0; j < sizeof(others) / sizeof(*others); j++)
			CHECKF(!rule_matches_name("file", g, others[j]), "%s: glob %s covers %s too", names[i], g,
			       others[j]);
	}
	/* a stable part with a letter or digit: '*' for the random part,
	 * covering that prefix's temporaries only */
	const char *g = name_glob("/tmp/x.abc123 (deleted)");
	CHECKF(!strcmp(g, "\"/tmp/x.* (deleted)\""), "%s", g);
	for (size_t j = 0; j < sizeof(others) / sizeof(*others); j++)
		CHECKF(!rule_matches_name("file", g, others[j]), "glob %s covers %s", g, others[j]);
	/* wildcard characters in the stable part are literal */
	g = name_glob("/tmp/[a-z]*.XARx7Y (deleted)");
	CHECKF(!strcmp(g, "\"/tmp/\\[a-z\\]\\*.* (deleted)\""), "%s", g);
	CHECK(rule_matches_name("file", g, "/tmp/[a-z]*.q00Ncb (deleted)"));
	CHECK(!rule_matches_name("file", g, "/tmp/b.XARx7Y (deleted)"));
	CHECK(!rule_matches_name("file", g, "/tmp/[a-z]x.XARx7Y (deleted)"));
}

/* Control characters, a double quote, UTF-8, bytes that are no UTF-8: the
 * rule parses, stays one line with no control character (a message shows
 * one escaped, "\n", which fnmatch would read as 'n'), and matches the
 * name; in the C locale and a UTF-8 one (the program's, setlocale). */
static void test_hostile_names(void)
{
	static const char *const names[] = {
		"/srv/a\nb", "/srv/a\rb", "/srv/tab\there", "/srv/bell\a\x7f", "/srv/x\n* close\nany",
		"/srv/caf\xc3\xa9/\xe2\x80\xae.txt", "/srv/\xff\xfe\x80\xc3", "/srv/\"\n\"", "/srv/\\\n#*?[",
		"/tmp/q\nzz.XARx7Y (deleted)", "/tmp/\xc3\xa9t\xc3\xa9.XARx7Y (deleted)",
	};
	const char *locales[] = { "C", "C.UTF-8" };
	for (size_t l = 0; l < 2; l++) {
		if (!setlocale(LC_ALL, locales[l]))
			continue;
		for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
			const char *g = name_glob(names[i]);
			bool ctl = false;
			for (const char *c = g; *c; c++)
				ctl |= (unsigned char)*c < 0x20 || *c == 0x7f;
			CHECKF(!ctl, "glob for name #%zu holds a control character", i);
			CHECKF(rule_matches_name("file", g, names[i]), "%s: glob for name #%zu does not match it",
			       locales[l], i);
			CHECKF(!rule_matches_name("file", g, "/srv/other"), "glob for name #%zu matches /srv/other", i);
		}
	}
	setlocale(LC_ALL, "C");
	/* the temporary's next run still matches */
	CHECK(rule_matches_name("file", name_glob("/tmp/q\nzz.XARx7Y (deleted)"), "/tmp/q\nzz.q00Ncb (deleted)"));
}

/*
 * A name so long (or so full of characters to escape) that its glob would
 * not fit in a rule's word: policy.c keeps PATH_MAX - 1 bytes of it, and a
 * glob cut right after its '*' ("/tmp/...x.*" without " (deleted)") would
 * match the live file and every name with that prefix. It is written
 * literally then (cut, it matches nothing).
 */
static void test_long_names(void)
{
	static char name[PATH_MAX], live[PATH_MAX];
	/* "/tmp/" + 2043 '[' + "ab.": escaped, 4094 bytes; then the '*' */
	size_t at = (size_t)snprintf(name, sizeof(name), "/tmp/");
	for (int k = 0; k < 2043; k++)
		name[at++] = '[';
	snprintf(name + at, sizeof(name) - at, "ab.XARx7Y");
	snprintf(live, sizeof(live), "%s", name);
	snprintf(name + strlen(name), sizeof(name) - strlen(name), " (deleted)");
	const char *g = name_glob(name);
	CHECKF(!rule_matches_name("file", g, live), "the glob for a deleted temporary matches the live file");
	char other[PATH_MAX];
	snprintf(other, sizeof(other), "%.*sanything/else", (int)(at + 3), live);
	CHECKF(!rule_matches_name("file", g, other), "the glob matches another name with its prefix");
	/* a long name that fits keeps its wildcard */
	at = (size_t)snprintf(name, sizeof(name), "/tmp/");
	for (int k = 0; k < 3000; k++)
		name[at++] = 'd';
	snprintf(name + at, sizeof(name) - at, ".XARx7Y (deleted)");
	g = name_glob(name);
	CHECK(strchr(unquoted(g), '*') != NULL);
	CHECK(rule_matches_name("file", g, name));
	name[at + 1] = 'Q';
	CHECK(rule_matches_name("file", g, name));
	CHECK(!rule_matches_name("file", g, live));
}

/* Matching a rule whose glob has many '*' against a long name is bounded
 * (no backtracking that grows with the number of stars): fnmatch's '*'
 * tried at each place, each tried once. */
static void test_match_bounded(void)
{
	static char glob[3000], name[PATH_MAX];
	size_t at = 0;
	for (int k = 0; k < 1000; k++) {
		glob[at++] = '*';
		glob[at++] = 'a';
	}
	glob[at++] = 'b';
	glob[at] = 0;
	memset(name, 'a', 4000);
	name[4000] = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(!rule_matches_name("file", glob, name));
	/* "*a*a...*a" alone against a name of a's: matched */
	glob[at - 1] = 0;
	CHECK(rule_matches_name("file", glob, name));
	/* '?' and classes between the stars */
	for (size_t k = 1; k + 1 < at; k += 4)
		glob[k] = '?';
	CHECK(rule_matches_name("file", glob, name));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECKF(s < 2.0, "three matches of a 1000-star glob took %.2f s", s);
}

/* crac_obj_put_connection_glob for a connected fd, as text */
static const char *conn_glob(int fd)
{
	static char out[700];
	struct crac_img_buf b = { out, 0, sizeof(out) };
	struct sockaddr_storage l, p;
	socklen_t ll = sizeof(l), pl = sizeof(p);
	int domain = 0;
	socklen_t ol = sizeof(domain);

	out[0] = 0;
	if (getsockname(fd, (struct sockaddr *)&l, &ll) < 0 || getpeername(fd, (struct sockaddr *)&p, &pl) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &ol) < 0)
		return "(no addresses)";
	crac_obj_put_connection_glob(&b, domain, &l, ll, &p, pl);
	return out;
}

/* A TCP listener on addr (port 0: any), its port in *port. */
static int listener(int family, const char *addr, unsigned *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &a->sin_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &a->sin6_addr);
		len = sizeof(*a);
	}
	if (s < 0 || bind(s, (struct sockaddr *)&ss, len) < 0 || listen(s, 8) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	len = sizeof(ss);
	getsockname(s, (struct sockaddr *)&ss, &len);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
			: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return s;
}

/* A client connected to host:port, and the server's end in *server. */
static int connected(int family, const char *host, unsigned port, int l, int *server)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &a->sin_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &a->sin6_addr);
		len = sizeof(*a);
	}
	if (c < 0 || connect(c, (struct sockaddr *)&ss, len) < 0) {
		if (c >= 0)
			close(c);
		return -1;
	}
	*server = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	return c;
}

/* One listener, two connections (the second: the next run's, another
 * ephemeral port): the accepted end's glob keeps want_accepted (the
 * service's end), the client's want_client; each matches both runs'
 * connections of its side and not the other side's. */
static void tcp_case(int family, const char *bind_addr, const char *host, const char *want_accepted,
		     const char *want_client)
{
	unsigned port = 0;
	int l = listener(family, bind_addr, &port);
	if (l < 0) {
		printf("# %s: cannot listen (%s), not tested\n", bind_addr, strerror(errno));
		return;
	}
	int s1 = -1, s2 = -1;
	int c1 = connected(family, host, port, l, &s1), c2 = connected(family, host, port, l, &s2);
	REQUIRE(c1 >= 0 && c2 >= 0 && s1 >= 0 && s2 >= 0);
	char wa[200], wc[200], ga[700], gc[700];
	snprintf(wa, sizeof(wa), want_accepted, port);
	snprintf(wc, sizeof(wc), want_client, port);
	snprintf(ga, sizeof(ga), "%s", conn_glob(s1));
	snprintf(gc, sizeof(gc), "%s", conn_glob(c1));
	CHECKF(!strcmp(ga, wa), "accepted end: %s, expected %s", ga, wa);
	CHECKF(!strcmp(gc, wc), "client end: %s, expected %s", gc, wc);
	CHECKF(rule_matches_fd("tcp", ga, s1) && rule_matches_fd("tcp", ga, s2), "%s: not both accepted ends", ga);
	CHECKF(!rule_matches_fd("tcp", ga, c1) && !rule_matches_fd("tcp", ga, c2), "%s: matches a client end", ga);
	CHECKF(rule_matches_fd("tcp", gc, c1) && rule_matches_fd("tcp", gc, c2), "%s: not both client ends", gc);
	CHECKF(!rule_matches_fd("tcp", gc, s1) && !rule_matches_fd("tcp", gc, s2), "%s: matches an accepted end", gc);
	close(c1);
	close(c2);
	close(s1);
	close(s2);
	close(l);
}

static void test_tcp_connections(void)
{
	tcp_case(AF_INET, "127.0.0.1", "127.0.0.1", "127.0.0.1:%u->*", "*->127.0.0.1:%u");
	/* bound to every address: the peer may reach any of this host's */
	tcp_case(AF_INET, "0.0.0.0", "127.0.0.1", "*:%u->*", "*->127.0.0.1:%u");
	/* IPv6: its brackets escaped */
	tcp_case(AF_INET6, "::1", "::1", "\\[::1\\]:%u->*", "*->\\[::1\\]:%u");
	/* IPv4 through a dual-stack listener: a mapped address */
	tcp_case(AF_INET6, "::", "::ffff:127.0.0.1", "*:%u->*", "*->\\[::ffff:127.0.0.1\\]:%u");
}

/* Where the kernel cannot say which end listens (sock_diag refused:
 * crac_obj_no_inet_diag), this namespace's ephemeral range does:
 * in a net namespace of its own (root) whose range is 20000-20999, a
 * service on port 7001 (below Linux's default range, as is the client's
 * port here) is still the end kept. */
static void test_tcp_ephemeral_range(void)
{
	if (geteuid() != 0) {
		printf("# not root: no net namespace of our own, not tested\n");
		return;
	}
	int pfd[2];
	REQUIRE(pipe(pfd) == 0);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		char out[1500] = "";
		close(pfd[0]);
		int fd, s = -1;
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
		if (unshare(CLONE_NEWNET) < 0 || (fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_WRONLY)) < 0 ||
		    write(fd, "20000 20999", 11) != 11 || close(fd) < 0 ||
		    (s = socket(AF_INET, SOCK_DGRAM, 0)) < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
		    (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr)) < 0) {
			snprintf(out, sizeof(out), "SKIP %s", strerror(errno));
		} else {
			struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7001) };
			inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
			int l = socket(AF_INET, SOCK_STREAM, 0), srv = -1;
			int one = 1;
			setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 2) < 0) {
				snprintf(out, sizeof(out), "SKIP listen: %s", strerror(errno));
			} else {
				int c = connected(AF_INET, "127.0.0.1", 7001, l, &srv);
				crac_obj_no_inet_diag = 1;   /* (CRAC_PRETEND_MISSING=inet_diag at start-up) */
				char ga[700];
				snprintf(ga, sizeof(ga), "%s", c >= 0 && srv >= 0 ? conn_glob(srv) : "(no connection)");
				snprintf(out, sizeof(out), "%s|%s", ga, c >= 0 ? conn_glob(c) : "");
			}
		}
		ssize_t w = write(pfd[1], out, strlen(out));
		_exit(w < 0);
	}
	close(pfd[1]);
	char got[1500];
	ssize_t n = read(pfd[0], got, sizeof(got) - 1);
	close(pfd[0]);
	waitpid(pid, NULL, 0);
	REQUIRE(n > 0);
	got[n] = 0;
	if (!strncmp(got, "SKIP", 4)) {
		printf("# %s: not tested\n", got);
		return;
	}
	CHECKF(!strcmp(got, "127.0.0.1:7001->*|*->127.0.0.1:7001"), "accepted|client ends: %s", got);
}

static void test_unix_connections(void)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char want[400];
	/* a path with a blank: quoted */
	snprintf(un.sun_path, sizeof(un.sun_path), "%s/app #1.sock", tmpdir);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(l >= 0 && bind(l, (struct sockaddr *)&un, sizeof(un)) == 0 && listen(l, 4) == 0);
	int c[2], s[2];
	for (int k = 0; k < 2; k++) {
		c[k] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		REQUIRE(c[k] >= 0 && connect(c[k], (struct sockaddr *)&un, sizeof(un)) == 0);
		s[k] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		REQUIRE(s[k] >= 0);
	}
	/* the second client autobound: an abstract name, new each time */
	struct sockaddr_un none = { .sun_family = AF_UNIX };
	int ab = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(ab >= 0 && bind(ab, (struct sockaddr *)&none, sizeof(sa_family_t)) == 0);
	REQUIRE(connect(ab, (struct sockaddr *)&un, sizeof(un)) == 0);
	int sab = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	REQUIRE(sab >= 0);

	char ga[700], gc[700];
	snprintf(ga, sizeof(ga), "%s", conn_glob(s[0]));
	snprintf(gc, sizeof(gc), "%s", conn_glob(c[0]));
	snprintf(want, sizeof(want), "\"%s->*\"", un.sun_path);
	CHECKF(!strcmp(ga, want), "accepted end: %s, expected %s", ga, want);
	snprintf(want, sizeof(want), "\"*->%s\"", un.sun_path);
	CHECKF(!strcmp(gc, want), "client end: %s, expected %s", gc, want);
	CHECKF(!strcmp(conn_glob(ab), gc), "autobound client end: %s, expected %s", conn_glob(ab), gc);
	CHECKF(!strcmp(conn_glob(sab), ga), "end accepted from an autobound client: %s", conn_glob(sab));
	CHECK(rule_matches_fd("unix", ga, s[0]) && rule_matches_fd("unix", ga, s[1]));
	CHECK(rule_matches_fd("unix", gc, c[0]) && rule_matches_fd("unix", gc, c[1]));
	CHECK(!rule_matches_fd("unix", ga, c[1]) && !rule_matches_fd("unix", gc, s[1]));
	/* a socket pair (its other end in another process: a child's):
	 * both ends unnamed, as they are each run; never '*', which would
	 * cover the connections to named services too */
	int sp[2], sp2[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2) == 0);
	char gp[700];
	snprintf(gp, sizeof(gp), "%s", conn_glob(sp[0]));
	CHECKF(!strcmp(gp, "(unnamed)->(unnamed)"), "socket pair: %s", gp);
	CHECK(rule_matches_fd("unix", gp, sp[0]) && rule_matches_fd("unix", gp, sp2[1]));
	for (int k = 0; k < 2; k++)
		CHECKF(!rule_matches_fd("unix", gp, s[k]) && !rule_matches_fd("unix", gp, c[k]),
		       "the socket pair's glob %s covers a connection to %s", gp, un.sun_path);
	CHECK(!rule_matches_fd("unix", gp, ab) && !rule_matches_fd("unix", gp, sab));
	/* two autobound ends (a client of an autobound server): "@?????" each,
	 * matching the next run's names */
	int asrv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un aname;
	socklen_t alen = sizeof(aname);
	REQUIRE(asrv >= 0 && bind(asrv, (struct sockaddr *)&none, sizeof(sa_family_t)) == 0 && listen(asrv, 2) == 0);
	REQUIRE(getsockname(asrv, (struct sockaddr *)&aname, &alen) == 0);
	int acl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(acl >= 0 && bind(acl, (struct sockaddr *)&none, sizeof(sa_family_t)) == 0);
	REQUIRE(connect(acl, (struct sockaddr *)&aname, alen) == 0);
	int aacc = accept4(asrv, NULL, NULL, SOCK_CLOEXEC);
	REQUIRE(aacc >= 0);
	snprintf(gp, sizeof(gp), "%s", conn_glob(acl));
	CHECKF(!strcmp(gp, "@?????" "->" "@?????"), "autobound to autobound: %s", gp);
	CHECK(rule_matches_fd("unix", gp, acl) && rule_matches_fd("unix", gp, aacc));
	CHECK(!rule_matches_fd("unix", gp, s[0]) && !rule_matches_fd("unix", gp, c[0]) &&
	      !rule_matches_fd("unix", gp, sp[0]));
	close(acl);
	close(aacc);
	close(asrv);
	for (int k = 0; k < 2; k++) {
		close(sp2[k]);
		close(c[k]);
		close(s[k]);
		close(sp[k]);
	}
	close(ab);
	close(sab);
	close(l);
	unlink(un.sun_path);
}

/* The rule the report line for fd suggests ("... policy `RULE` ...", "a policy: `RULE`"). */
static bool suggested_rule(int fd, char *out, size_t n)
{
	crac_report *rep = NULL;
	char res[32];
	bool found = false;

	snprintf(res, sizeof(res), "fd %d", fd);
	crac_check(&rep);
	for (size_t i = 0; i < crac_report_count(rep); i++) {
		const struct crac_failure *f = crac_report_get(rep, i);
		const char *p = strstr(f->message, "policy");
		if (p)
			p = strchr(p, '`');
		if (!strcmp(f->resource, res) && p) {
			p++;
			snprintf(out, n, "%.*s", (int)strcspn(p, "`"), p);
			found = true;
		}
	}
	crac_report_free(rep);
	return found;
}

/* The rule the safety checks (sim engine) and the image engine suggest
 * for fd: both want. */
static void both_suggest(int fd, const char *want)
{
	char sim[300] = "", image[300] = "";

	setenv("CRAC_ENGINE", "sim", 1);
	CHECK(suggested_rule(fd, sim, sizeof(sim)));
	unsetenv("CRAC_ENGINE");
	CHECK(suggested_rule(fd, image, sizeof(image)));
	CHECKF(!strcmp(sim, want), "the checks suggest `%s`, expected `%s`", sim, want);
	CHECKF(!strcmp(image, want), "the image engine suggests `%s`, expected `%s`", image, want);
}

/* The safety checks (sim engine) and the image engine's probe suggest the
 * same rule for a connection, and for a deleted temporary. */
static void test_checks_and_probe_agree(void)
{
	unsigned port = 0;
	int l = listener(AF_INET, "127.0.0.1", &port), s = -1;
	REQUIRE(l >= 0);
	int c = connected(AF_INET, "127.0.0.1", port, l, &s);
	REQUIRE(c >= 0 && s >= 0);
	char want[100];
	snprintf(want, sizeof(want), "tcp 127.0.0.1:%u->* close", port);
	both_suggest(s, want);
	snprintf(want, sizeof(want), "tcp *->127.0.0.1:%u close", port);
	both_suggest(c, want);
	close(c);
	close(s);
	close(l);

	char path[256];
	snprintf(path, sizeof(path), "%s/.ZendSem.XXXXXX", tmpdir);
	int t = mkstemp(path);
	REQUIRE(t >= 0);
	unlink(path);
	snprintf(want, sizeof(want), "file \"%s/.ZendSem.* (deleted)\" close", tmpdir);
	both_suggest(t, want);
	close(t);
}

int main(void)
{
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	if (!mkdtemp(tmpdir))
		t_skip_all("cannot create a temporary directory");
	RUN(test_literal_names);
	RUN(test_deleted_temporaries);
	RUN(test_broad_globs);
	RUN(test_hostile_names);
	RUN(test_long_names);
	RUN(test_match_bounded);
	RUN(test_tcp_connections);
	RUN(test_tcp_ephemeral_range);
	RUN(test_unix_connections);
	RUN(test_checks_and_probe_agree);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	(void)!system(cmd);
	return t_done();
}
