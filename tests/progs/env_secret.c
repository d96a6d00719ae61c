/* SPDX-License-Identifier: MIT */
/*
 * env_secret - helper for tests/cli/env_secret.bats: a secret that must
 * never reach an image file.
 *
 *   env_secret IMAGE_DIR
 *
 * Makes two random 64-character hex strings at run time (so neither is in
 * the binary): a secret, in a buffer marked with crac_secret_region(), and
 * a public marker in an ordinary heap buffer (the test's positive control:
 * it must be found in the image). Prints both with write(2) straight from
 * their buffers, so no stdio buffer ever holds a copy, then checkpoints with
 * the image engine into IMAGE_DIR; the original process exits there.
 *
 * In a restored instance the after_restore callback reports whether the
 * secret region came back as zeros, prints the public marker again (it must
 * be intact) and derives a new secret:
 *   restored: secret zeroed=yes
 *   restored public=<the same 64 characters>
 */
#include <crac.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEXLEN 64

static char *secret;        /* HEXLEN bytes, registered as secret */
static char *public_marker; /* HEXLEN bytes, ordinary memory */

/*
 * Fills dst with HEXLEN hex characters from fresh random bytes, one
 * character at a time, so the string exists nowhere but in dst (the random
 * bytes are wiped).
 */
static int fill_hex(char *dst)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[HEXLEN / 2];

	if (crac_random_bytes(raw, sizeof(raw)) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++) {
		dst[2 * i] = hex[raw[i] >> 4];
		dst[2 * i + 1] = hex[raw[i] & 15];
	}
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

static void put(const char *label, const char *buf, size_t len)
{
	if (write(1, label, strlen(label)) < 0 || write(1, buf, len) < 0 || write(1, "\n", 1) < 0)
		exit(3);
}

static int after_restore(const crac_event *ev, void *arg)
{
	int zero = 1;

	(void)arg;
	if (ev->outcome != CRAC_RESTORED)
		return 0;
	for (int i = 0; i < HEXLEN; i++)
		zero &= secret[i] == 0;
	printf("restored: secret zeroed=%s\n", zero ? "yes" : "no");
	fflush(stdout);
	put("restored public=", public_marker, HEXLEN);
	return fill_hex(secret) == 0 ? 0 : crac_fail(-EIO, "cannot derive a new secret");
}

int main(int argc, char **argv)
{
	struct crac_options o;
	crac_report *rep = NULL;
	struct crac_resource_def d = { .name = "env-secret", .after_restore = after_restore };
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: env_secret IMAGE_DIR\n");
		return 2;
	}
	secret = malloc(HEXLEN);
	public_marker = malloc(HEXLEN);
	if (!secret || !public_marker || fill_hex(secret) || fill_hex(public_marker))
		return 2;
	if (crac_secret_region(secret, HEXLEN) != 0 || crac_register(NULL, &d, NULL) != 0)
		return 2;
	put("secret=", secret, HEXLEN);
	put("public=", public_marker, HEXLEN);

	crac_options_init(&o);
	o.engine = "image";
	o.image_dir = argv[1];
	rc = crac_checkpoint_restore(&o, &rep);
	if (rep) {
		crac_report_print(rep, stderr);
		crac_report_free(rep);
	}
	if (rc != CRAC_RESTORED) {
		fprintf(stderr, "env_secret: checkpoint returned %d\n", rc);
		return 1;
	}
	return 0;
}
