/* SPDX-License-Identifier: MIT */
/*
 * test_env_identity.c - crac_instance_id / crac_instance_uuid / crac_uuid:
 * stable between restores, fresh (and a valid version-4 UUID) after each,
 * and the same identity the after_restore event carries.
 */
#include "crac.h"
#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

static crac_event ev_after;

static int rec_after(const crac_event *ev, void *arg)
{
	(void)arg;
	ev_after = *ev;
	return 0;
}

static int sim_round(void)
{
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "sim";
	return crac_checkpoint_restore(&o, NULL);
}

/* xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx, lower case. */
static int valid_v4(const char *u)
{
	if (strlen(u) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (u[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)u[i]) || isupper((unsigned char)u[i])) {
			return 0;
		}
	}
	return u[14] == '4' && strchr("89ab", u[19]) != NULL;
}

/* The text form of 16 bytes, as crac_instance_uuid should print them. */
static void hex_uuid(const uint8_t id[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10],
		 id[11], id[12], id[13], id[14], id[15]);
}

static void test_args(void)
{
	CHECK_EQ(crac_instance_id(NULL, NULL), 0);
	CHECK_EQ(crac_instance_uuid(NULL), -EINVAL);
	CHECK_EQ(crac_uuid(NULL), -EINVAL);
}

static void test_stable_without_restore(void)
{
	uint8_t a[16], b[16];
	uint64_t ga, gb;
	char u1[37], u2[37], hx[37];

	CHECK_EQ(crac_instance_id(a, &ga), 0);
	CHECK_EQ(crac_instance_id(b, &gb), 0);
	CHECK(memcmp(a, b, 16) == 0);
	CHECK_EQ(ga, gb);
	CHECK_EQ(crac_instance_uuid(u1), 0);
	CHECK_EQ(crac_instance_uuid(u2), 0);
	CHECK(strcmp(u1, u2) == 0);
	CHECKF(valid_v4(u1), "not a v4 UUID: %s", u1);
	hex_uuid(a, hx);
	CHECKF(strcmp(hx, u1) == 0, "uuid %s vs id %s", u1, hx);
}

static void test_fresh_after_restore(void)
{
	crac_resource *h = NULL;
	struct crac_resource_def d = { .name = "id-recorder", .after_restore = rec_after };
	uint8_t before[16], after[16];
	uint64_t g0, g1;
	char u[37], hx[37];

	REQUIRE(crac_register(NULL, &d, &h) == 0);
	crac_instance_id(before, &g0);
	CHECK_EQ(sim_round(), CRAC_RESTORED);
	crac_instance_id(after, &g1);
	CHECK(memcmp(before, after, 16) != 0);
	CHECK_EQ(g1, g0 + 1);
	/* The event carried the same identity the API returns now. */
	CHECK(memcmp(ev_after.instance_id, after, 16) == 0);
	CHECK_EQ(ev_after.generation, g1);
	CHECK_EQ(crac_instance_uuid(u), 0);
	CHECKF(valid_v4(u), "not a v4 UUID after restore: %s", u);
	hex_uuid(after, hx);
	CHECK(strcmp(hx, u) == 0);

	/* An aborted round is no new instance. */
	struct crac_options o;
	crac_options_init(&o);
	o.engine = "sim";
	o.flags = CRAC_DRY_RUN;
	CHECK_EQ(crac_checkpoint_restore(&o, NULL), CRAC_CONTINUED);
	crac_instance_id(before, &g0);
	CHECK(memcmp(before, after, 16) == 0);
	CHECK_EQ(g0, g1);
	CHECK_EQ(crac_unregister(h), 0);
}

static void test_uuid(void)
{
	char u[64][37];

	for (int i = 0; i < 64; i++) {
		CHECK_EQ(crac_uuid(u[i]), 0);
		CHECKF(valid_v4(u[i]), "not a v4 UUID: %s", u[i]);
		for (int j = 0; j < i; j++)
			CHECKF(strcmp(u[i], u[j]) != 0, "repeated UUID %s", u[i]);
	}
}

int main(void)
{
	RUN(test_args);
	RUN(test_stable_without_restore);
	RUN(test_fresh_after_restore);
	RUN(test_uuid);
	return t_done();
}
