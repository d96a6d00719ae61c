/* SPDX-License-Identifier: MIT */
/*
 * test_obj_procself.c - a descriptor entry marked as a file of the restored
 * process's own /proc (CRAC_OBJ_F_PROC_SELF, objects/file.c) is taken with
 * no identity compared only when it names one file right in /proc/self:
 * an image is code, and /proc/self/root/..., /proc/self/cwd/... or
 * /proc/self/../.. would name any file of the restoring user.
 */
#include "harness.h"
#include "objects/objects.h"

#include <errno.h>
#include <string.h>

static int check(const char *path)
{
	static char strtab[512];
	struct crac_img_fd e;
	struct crac_img_view v;
	char msg[512];
	struct crac_img_buf why = { msg, 0, sizeof(msg) };

	memset(&e, 0, sizeof(e));
	memset(&v, 0, sizeof(v));
	strtab[0] = 0;
	snprintf(strtab + 1, sizeof(strtab) - 1, "%s", path);
	v.strtab = strtab;
	v.strtab_size = sizeof(strtab);
	e.kind = CRAC_OBJ_FILE;
	e.path = 1;
	e.u[0] = 12345;   /* a device no /proc file has: an identity check would refuse */
	e.u[1] = 1;
	e.u[6] = CRAC_OBJ_F_PROC_SELF;
	msg[0] = 0;
	int rc = crac_obj_file_check(&v, &e, &why);
	if (rc)
		printf("  %s: %d (%s)\n", path, rc, msg);
	return rc;
}

static void test_own_files_taken(void)
{
	CHECK_EQ(check("/proc/self/stat"), 0);
	CHECK_EQ(check("/proc/self/status"), 0);
}

static void test_anything_else_refused(void)
{
	CHECK(check("/proc/self/root/etc/passwd") < 0);
	CHECK(check("/proc/self/cwd/x") < 0);
	CHECK(check("/proc/self/../self/stat") < 0);
	CHECK(check("/proc/self/task/1/stat") < 0);
	CHECK(check("/proc/1/stat") < 0);
	CHECK(check("/etc/passwd") < 0);
	CHECK(check("/proc/self/") < 0);
}

int main(void)
{
	RUN(test_own_files_taken);
	RUN(test_anything_else_refused);
	return t_done();
}
