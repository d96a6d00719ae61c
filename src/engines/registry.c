/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the engines built into the library, by name.
 *
 * sim, pause and image are always built (a strong reference, so that they
 * are linked from the static library too). Engines that live in optional
 * parts of the tree are referenced weakly: defining the symbol is enough to
 * make the engine available.
 */
#include "core/internal.h"

#include <string.h>

extern const struct crac_engine crac__engine_image;   /* always built (x86-64) */
extern const struct crac_engine crac__engine_criu __attribute__((weak));
extern const struct crac_engine crac__engine_external __attribute__((weak));

#define MAX_ENGINES 5

static const struct crac_engine *engine_list[MAX_ENGINES + 1];
static const char *engine_names[MAX_ENGINES + 1];

static void fill_once(void)
{
	const struct crac_engine *candidates[MAX_ENGINES] = {
		&crac__engine_sim, &crac__engine_pause, &crac__engine_image,
		&crac__engine_criu, &crac__engine_external,
	};
	size_t n = 0;

	for (size_t i = 0; i < MAX_ENGINES; i++) {
		if (!candidates[i])
			continue;   /* weak symbol not defined in this build */
		engine_list[n] = candidates[i];
		engine_names[n] = candidates[i]->name;
		n++;
	}
}

static void init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, fill_once);
}

const struct crac_engine *crac__engine_find(const char *name)
{
	init();
	for (size_t i = 0; name && engine_list[i]; i++)
		if (strcmp(engine_list[i]->name, name) == 0)
			return engine_list[i];
	return NULL;
}

const char *const *crac_engines(void)
{
	init();
	return engine_names;
}
