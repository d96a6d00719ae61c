/* SPDX-License-Identifier: MIT */
/*
 * random.c - randomness that does not repeat across restored instances.
 *
 * The danger: every instance restored from one image starts with the same
 * memory, so any generator state kept in memory (a user-space CSPRNG, a
 * xorshift, libc's random() table) produces the same numbers in every
 * instance: identical "random" session ids, nonces, backoff jitter.
 *
 * crac_random_bytes() keeps no state at all: it reads getrandom(2) on every
 * call. The kernel's pool is not part of the image, so two instances (or a
 * process and its fork) can never return the same bytes, and there is
 * nothing to reseed. It costs a system call per call (~0.3 us for small
 * buffers), which is fine for keys, ids and nonces.
 *
 * crac_random_u64() is the fast one: a per-thread xoshiro256** generator
 * (Blackman and Vigna's algorithm; this is our own implementation), seeded
 * from getrandom on first use. Each thread remembers the value of a global
 * "reseed epoch" it was seeded under; crac__random_restored() (every
 * restore) and fork (pthread_atfork, in the child) increment the epoch, so
 * every thread reseeds from getrandom on its next call. The common path is
 * one relaxed atomic load, a compare and the generator step. It is not a
 * cryptographic generator: its output reveals its state.
 *
 * libc's generators (rand/srand, random/srandom, the drand48 family) are
 * reseeded only when the application asks with crac_random_reseed_libc(1),
 * through a built-in resource (priority CRAC_PRIO_RUNTIME) whose
 * after_restore runs in restored instances (outcome CRAC_RESTORED; not
 * after an abort, not in an original process that keeps running).
 *
 * Deterministic generators seeded on purpose. A program that called
 * srand(42) to get a reproducible sequence (simulations, tests, replay)
 * expects the same numbers after a restore as before; reseeding behind its
 * back would silently break that, which is why reseeding libc is opt-in
 * (crac_random_reseed_libc(0) is the default) and why generator states the
 * application owns (initstate/setstate tables, random_r/drand48_r/rand_r
 * buffers, its own PRNGs) are never touched: the application reseeds them in
 * its own after_restore callback if it wants per-instance streams. Only the
 * crac generators are always per-instance, because that is their contract.
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- crac_random_bytes ---------------------------------------------------- */

/* Fallback for kernels without getrandom(2) (before 3.17). */
static int read_urandom(uint8_t *p, size_t len)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? -errno : -EIO;
			close(fd);
			return e;
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
	return 0;
}

/* Fills p[0..len) from the kernel. 0 or a negative errno. */
static int kernel_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		/* flags 0: blocks only until the pool is initialised at boot,
		 * then never; long requests may return short (loop). */
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOSYS)
				return read_urandom(p, len);
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int crac_random_bytes(void *buf, size_t len)
{
	if (!buf)
		return len ? -EINVAL : 0;
	return kernel_random(buf, len);
}

/* ---- crac_random_u64 ------------------------------------------------------ */

/* Starts at 1 so that a thread's epoch 0 means "never seeded". */
static _Atomic uint64_t reseed_epoch = 1;

struct thread_gen {
	uint64_t s[4];      /* xoshiro256** state, never all zero */
	uint64_t epoch;     /* reseed_epoch it was seeded under; 0: not yet */
	uint64_t seedings;  /* for tests */
};
static __thread struct thread_gen gen;

static void bump_epoch(void)
{
	atomic_fetch_add_explicit(&reseed_epoch, 1, memory_order_relaxed);
}

static void register_atfork(void)
{
	/* A forked child has a copy of the parent's per-thread state: make it
	 * reseed, as after a restore. */
	pthread_atfork(NULL, NULL, bump_epoch);
}

/* splitmix64: used only to spread a weak fallback seed over the state. */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void seed_thread(uint64_t epoch)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, register_atfork);
	if (kernel_random(gen.s, sizeof(gen.s)) < 0) {
		/* No kernel randomness at all (no getrandom, no /dev/urandom):
		 * still make threads and instances differ. */
		uint64_t x = (uint64_t)crac__now_ns(CLOCK_REALTIME) ^
			((uint64_t)crac__now_ns(CLOCK_MONOTONIC) << 17) ^
			((uint64_t)syscall(SYS_gettid) << 40) ^ (uint64_t)(uintptr_t)&gen ^ epoch;
		for (int i = 0; i < 4; i++)
			gen.s[i] = splitmix64(&x);
	}
	if (!(gen.s[0] | gen.s[1] | gen.s[2] | gen.s[3]))
		gen.s[0] = 1;   /* the one state xoshiro cannot leave */
	gen.epoch = epoch;
	gen.seedings++;
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t crac_random_u64(void)
{
	uint64_t epoch = atomic_load_explicit(&reseed_epoch, memory_order_relaxed);
	uint64_t *s = gen.s;

	if (__builtin_expect(gen.epoch != epoch, 0))
		seed_thread(epoch);

	/* xoshiro256**: output scrambler, then the linear state update. */
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

void crac__random_restored(void)
{
	bump_epoch();
}

uint64_t crac__random_thread_seedings(void)
{
	return gen.seedings;
}

/* ---- libc's generators (opt-in) ------------------------------------------ */

static pthread_mutex_t libc_lock = PTHREAD_MUTEX_INITIALIZER;
static crac_resource *libc_res;   /* registered resource, NULL if disabled */

static int reseed_libc(const crac_event *ev, void *arg)
{
	struct {
		unsigned rand_seed;
		unsigned random_seed;
		unsigned short seed48_v[3];
	} seeds;
	int rc;

	(void)arg;
	if (ev->outcome != CRAC_RESTORED)
		return 0;   /* no new instance: keep the sequences going */
	rc = kernel_random(&seeds, sizeof(seeds));
	if (rc < 0)
		return crac_fail(rc, "cannot reseed libc's generators: no kernel randomness");
	/* In glibc rand() and random() share one state; seeding both keeps this
	 * right on libcs where they do not. */
	srand(seeds.rand_seed);
	srandom(seeds.random_seed);
	seed48(seeds.seed48_v);   /* all 48 bits of the drand48 state */
	explicit_bzero(&seeds, sizeof(seeds));
	return 0;
}

int crac_random_reseed_libc(int enable)
{
	int rc = 0;

	pthread_mutex_lock(&libc_lock);
	if (enable && !libc_res) {
		struct crac_resource_def def = {
			.name = "crac-libc-random",
			.after_restore = reseed_libc,
			.priority = CRAC_PRIO_RUNTIME,
		};
		rc = crac_register(NULL, &def, &libc_res);
		if (rc < 0)
			libc_res = NULL;
	} else if (!enable && libc_res) {
		rc = crac_unregister(libc_res);
		libc_res = NULL;
	}
	pthread_mutex_unlock(&libc_lock);
	return rc;
}
