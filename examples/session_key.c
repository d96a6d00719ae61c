/* SPDX-License-Identifier: MIT */
/*
 * session_key.c - a resource that keeps a session key out of images.
 *
 * A service holds a symmetric key for its sessions. An image of the process
 * must not contain it (images are files: copied, cached, shared), and two
 * instances restored from one image must not share it. So:
 *   - the key lives in a buffer marked with crac_secret_region(): image
 *     engines write it as zeros, and `crac inspect` lists it;
 *   - before_checkpoint wipes it (explicit_bzero) and marks it invalid, so
 *     nothing uses it while the snapshot is being taken;
 *   - after_restore derives a fresh one from crac_random_bytes(), which is
 *     never shared between instances. It also runs after an aborted
 *     checkpoint (the key was wiped, so a new one is needed then too).
 * Users of the key take the lock and check `valid`.
 *
 * Build: part of the crac build (examples/), or
 *   cc session_key.c -lcrac -o session_key
 * Run: ./session_key            (uses the sim engine: no image is written)
 *      CRAC_ENGINE=pause ./session_key   (then: crac restore --pid PID)
 */
#include <crac.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_LEN 32

struct session_key {
	pthread_mutex_t lock;
	int valid;
	unsigned generation;             /* how many keys this process made */
	unsigned char key[KEY_LEN];      /* the secret region */
};

static struct session_key sk = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Makes a new key. Lock held. */
static int derive_key(struct session_key *k)
{
	int rc = crac_random_bytes(k->key, sizeof(k->key));

	k->valid = rc == 0;
	if (rc == 0)
		k->generation++;
	return rc;
}

static int key_before_checkpoint(const crac_event *ev, void *arg)
{
	struct session_key *k = arg;

	(void)ev;
	pthread_mutex_lock(&k->lock);
	explicit_bzero(k->key, sizeof(k->key));   /* not optimised away */
	k->valid = 0;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int key_after_restore(const crac_event *ev, void *arg)
{
	struct session_key *k = arg;
	int rc;

	(void)ev;
	pthread_mutex_lock(&k->lock);
	rc = derive_key(k);
	pthread_mutex_unlock(&k->lock);
	return rc == 0 ? 0 : crac_fail(rc, "cannot derive a new session key");
}

/* Registers the resource and makes the first key. */
static int session_key_init(struct session_key *k)
{
	struct crac_resource_def def = {
		.name = "session-key",
		.before_checkpoint = key_before_checkpoint,
		.after_restore = key_after_restore,
		.arg = k,
		/* After the application's own resources (which may still use
		 * the key to close sessions cleanly) and before the safety
		 * checks. */
		.priority = CRAC_PRIO_SECURITY,
	};
	int rc;

	if ((rc = crac_secret_region(k->key, sizeof(k->key))) < 0)
		return rc;
	pthread_mutex_lock(&k->lock);
	rc = derive_key(k);
	pthread_mutex_unlock(&k->lock);
	if (rc < 0)
		return rc;
	return crac_register(NULL, &def, NULL);
}

/* A short, non-secret fingerprint to show that the key changed (a real
 * service would never print anything derived from its key). */
static unsigned long fingerprint(struct session_key *k)
{
	unsigned long h = 5381;

	pthread_mutex_lock(&k->lock);
	for (int i = 0; i < KEY_LEN; i++)
		h = h * 33 + k->key[i];
	if (!k->valid)
		h = 0;
	pthread_mutex_unlock(&k->lock);
	return h & 0xffffff;
}

int main(void)
{
	crac_report *rep = NULL;
	char id[37];
	int rc;

	if ((rc = session_key_init(&sk)) < 0) {
		fprintf(stderr, "session_key: %s\n", strerror(-rc));
		return 1;
	}
	crac_instance_uuid(id);
	printf("instance %s: key #%u, fingerprint %06lx\n", id, sk.generation, fingerprint(&sk));

	/* NULL options: engine from $CRAC_ENGINE, else "sim". */
	rc = crac_checkpoint_restore(NULL, &rep);
	if (rep) {
		crac_report_print(rep, stderr);
		crac_report_free(rep);
	}
	if (rc < 0) {
		fprintf(stderr, "session_key: checkpoint failed: %s\n", strerror(-rc));
		return 1;
	}
	crac_instance_uuid(id);
	printf("%s, instance %s: key #%u, fingerprint %06lx\n",
	       rc == CRAC_RESTORED ? "restored" : rc == CRAC_ABORTED ? "aborted" : "continued",
	       id, sk.generation, fingerprint(&sk));
	crac_secret_forget(sk.key);
	return 0;
}
