/* SPDX-License-Identifier: MIT */
/*
 * proc_attrs - a program that changes process attributes the kernel keeps
 * per task, has `crac run` checkpoint it (SIGUSR1 to its parent: run it
 * with --checkpoint-on SIGUSR1), and prints them as it sees them: once
 * before the checkpoint ("before"), once in each restored copy ("after").
 *
 *   proc_attrs WHAT...    WHAT is any of
 *     pdeathsig    prctl(PR_SET_PDEATHSIG, SIGUSR2)
 *     subreaper    prctl(PR_SET_CHILD_SUBREAPER, 1)
 *     personality  personality(ADDR_COMPAT_LAYOUT | ADDR_NO_RANDOMIZE)
 *     nnp          prctl(PR_SET_NO_NEW_PRIVS, 1)
 *     caps         drops CAP_NET_RAW and CAP_SYS_TIME from its effective,
 *                  permitted and bounding sets (root only)
 *     seccomp      a seccomp filter that fails sysinfo(2) with EPERM
 *     seccomp-prctl  a seccomp filter that fails prctl(2) with EPERM
 *                  (last: no prctl works after it; PR_GET_SECCOMP
 *                  neither, so only /proc tells the filter is there)
 *     timerslack   prctl(PR_SET_TIMERSLACK, 123456)
 *     thread       a second thread sets its own: PR_SET_PDEATHSIG SIGUSR1,
 *                  timer slack 777777, no_new_privs (the main thread's are
 *                  not changed by it), and prints them as "PHASE thread-*"
 *                  (a thread the restore recreates by a clone)
 *
 *   proc_attrs --filtered CMD ARGS...
 *       runs CMD under the same seccomp filter (a restore under it)
 *
 * Each output line is "PHASE NAME VALUE": pdeathsig, subreaper,
 * personality (hex), nnp, capeff, capprm, capbnd (hex, of
 * /proc/self/status), seccomp (Seccomp_filters), sysinfo (0 or the errno),
 * timerslack, tid (the main thread's).
 */
#include <errno.h>
#include <pthread.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

static void status_field(const char *key, char *out, size_t cap)
{
	char line[512];
	size_t kl = strlen(key);
	FILE *f = fopen("/proc/self/status", "r");

	snprintf(out, cap, "-");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			char *v = line + kl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = 0;
			snprintf(out, cap, "%s", v);
			break;
		}
	fclose(f);
}

static void show(const char *phase)
{
	int sig = 0, sub = 0;
	char eff[64], prm[64], bnd[64], filters[64];
	struct sysinfo si;

	prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
	prctl(PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0);
	status_field("CapEff", eff, sizeof(eff));
	status_field("CapPrm", prm, sizeof(prm));
	status_field("CapBnd", bnd, sizeof(bnd));
	status_field("Seccomp_filters", filters, sizeof(filters));
	int si_rc = sysinfo(&si) == 0 ? 0 : errno;
	printf("%s pdeathsig %d\n%s subreaper %d\n%s personality %x\n%s nnp %d\n%s capeff %s\n%s capprm %s\n"
	       "%s capbnd %s\n%s seccomp %s\n%s sysinfo %d\n%s timerslack %d\n",
	       phase, sig, phase, sub, phase, (unsigned)personality(0xffffffff), phase,
	       prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), phase, eff, phase, prm, phase, bnd, phase, filters, phase,
	       si_rc, phase, prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
	printf("%s tid %d\n", phase, (int)syscall(SYS_gettid));
	fflush(stdout);
}

static int drop_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	const int drop[] = { CAP_NET_RAW, CAP_SYS_TIME };

	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	for (size_t k = 0; k < sizeof(drop) / sizeof(drop[0]); k++) {
		if (prctl(PR_CAPBSET_DROP, drop[k], 0, 0, 0) < 0)
			return -1;
		d[drop[k] / 32].effective &= ~(1u << (drop[k] % 32));
		d[drop[k] / 32].permitted &= ~(1u << (drop[k] % 32));
		d[drop[k] / 32].inheritable &= ~(1u << (drop[k] % 32));
	}
	return (int)syscall(SYS_capset, &h, d);
}

/* A seccomp filter that fails system call nr with EPERM. */
static int filter_nr(long nr)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof(f) / sizeof(f[0])), f };
	int rc = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
	if (rc < 0 && errno == EACCES) {
		/* without CAP_SYS_ADMIN a filter needs no_new_privs */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			return -1;
		rc = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
	}
	return rc;
}

static int filter_sysinfo(void)
{
	return filter_nr(SYS_sysinfo);
}

static pid_t orig_pid;
static pthread_barrier_t set_up;

/* The second thread: its own attributes, shown before and after. */
static void *other(void *arg)
{
	int sig = 0;

	(void)arg;
	prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 777777, 0, 0, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	pthread_barrier_wait(&set_up);
	while (getpid() == orig_pid)
		usleep(10000);
	prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
	printf("after thread-pdeathsig %d\nafter thread-timerslack %d\nafter thread-nnp %d\n", sig,
	       prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	fflush(stdout);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t thread;
	int with_thread = 0;

	if (argc > 2 && !strcmp(argv[1], "--filtered")) {
		if (filter_sysinfo() < 0) {
			perror("proc_attrs: seccomp filter");
			return 2;
		}
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		return 127;
	}
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		int rc = !strcmp(w, "pdeathsig")     ? prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0)
			 : !strcmp(w, "subreaper")   ? prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
			 : !strcmp(w, "personality") ? personality(ADDR_COMPAT_LAYOUT | ADDR_NO_RANDOMIZE)
			 : !strcmp(w, "nnp")         ? prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
			 : !strcmp(w, "caps")        ? drop_caps()
			 : !strcmp(w, "seccomp")     ? filter_sysinfo()
			 : !strcmp(w, "seccomp-prctl") ? filter_nr(SYS_prctl)
			 : !strcmp(w, "timerslack")  ? prctl(PR_SET_TIMERSLACK, 123456, 0, 0, 0)
			 : !strcmp(w, "thread")      ? (with_thread = 1, 0)
						     : (errno = EINVAL, -1);
		if (rc < 0) {
			fprintf(stderr, "proc_attrs: %s: %s\n", w, strerror(errno));
			return 2;
		}
	}
	orig_pid = getpid();
	if (with_thread) {
		pthread_barrier_init(&set_up, NULL, 2);
		pthread_create(&thread, NULL, other, NULL);
		pthread_barrier_wait(&set_up);
	}
	show("before");
	pid_t orig = orig_pid;
	kill(getppid(), SIGUSR1);   /* crac run --checkpoint-on SIGUSR1 */
	for (int k = 0; k < 3000 && getpid() == orig; k++)
		usleep(10000);
	if (getpid() == orig) {
		fprintf(stderr, "proc_attrs: not restored within 30 s\n");
		return 1;
	}
	if (with_thread)
		pthread_join(thread, NULL);
	show("after");
	/* crac run's control thread logs the restore report as the program
	 * goes on: give it time to, before exiting */
	usleep(500000);
	return 0;
}
