/* SPDX-License-Identifier: MIT */
/*
 * env_instances - helper for tests/cli/env_instances.bats: instances made
 * from one process state must not share randomness or identity.
 *
 *   env_instances fork N     forks N children from one warmed-up state
 *                            (generator seeded, identity drawn); each runs
 *                            a sim round and prints one line
 *   env_instances image DIR  warms up, checkpoints with the image engine
 *                            into DIR (the original exits); every restored
 *                            instance prints one line
 *
 * The line:
 *   instance id=<uuid> gen=<generation> bytes=<32 hex> u64=<16 hex> u64b=<16 hex>
 */
#include <crac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void print_instance(void)
{
	char uuid[37];
	uint8_t b[16];
	uint64_t gen = 0;

	crac_instance_uuid(uuid);
	crac_instance_id(NULL, &gen);
	crac_random_bytes(b, sizeof(b));
	printf("instance id=%s gen=%llu bytes=", uuid, (unsigned long long)gen);
	for (int i = 0; i < 16; i++)
		printf("%02x", b[i]);
	uint64_t u1 = crac_random_u64();
	uint64_t u2 = crac_random_u64();
	printf(" u64=%016llx u64b=%016llx\n", (unsigned long long)u1, (unsigned long long)u2);
	fflush(stdout);
}

static int checkpoint(const char *engine, const char *dir)
{
	struct crac_options o;
	crac_report *rep = NULL;
	int rc;

	crac_options_init(&o);
	o.engine = engine;
	o.image_dir = dir;
	rc = crac_checkpoint_restore(&o, &rep);
	if (rep) {
		crac_report_print(rep, stderr);
		crac_report_free(rep);
	}
	return rc;
}

static void warm_up(void)
{
	uint8_t id[16];
	/* The generator and the identity exist before the copies are made. */
	(void)crac_random_u64();
	crac_instance_id(id, NULL);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "fork")) {
		int n = atoi(argv[2]), bad = 0;
		warm_up();
		fflush(NULL);
		for (int i = 0; i < n; i++) {
			pid_t pid = fork();
			if (pid < 0)
				return 2;
			if (pid == 0) {
				int rc = checkpoint("sim", NULL);
				if (rc != CRAC_RESTORED) {
					fprintf(stderr, "env_instances: sim round returned %d\n", rc);
					_exit(1);
				}
				print_instance();
				_exit(0);
			}
		}
		for (int i = 0; i < n; i++) {
			int st;
			if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				bad++;
		}
		return bad ? 1 : 0;
	}
	if (argc == 3 && !strcmp(argv[1], "image")) {
		warm_up();
		int rc = checkpoint("image", argv[2]);
		if (rc != CRAC_RESTORED) {
			fprintf(stderr, "env_instances: image checkpoint returned %d\n", rc);
			return 1;
		}
		print_instance();
		return 0;
	}
	fprintf(stderr, "usage: env_instances fork N | env_instances image DIR\n");
	return 2;
}
