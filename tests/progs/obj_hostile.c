/* SPDX-License-Identifier: MIT */
/*
 * obj_hostile - a descriptor whose image entry a test then edits
 * (tests/progs/obj_edit.c), to see what the loader does with an objects
 * table that names what it should not.
 *
 *   obj_hostile DIR PATH
 *
 * Opens PATH read-only as fd 5, checkpoints into DIR with the image engine
 * (the original exits 0 there); a restored instance prints
 * "fd 5: TYPE" (regular, directory, character device, fifo, other or
 * closed) and exits 0.
 */
#include "obj_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat st;

	if (argc != 3) {
		fprintf(stderr, "usage: obj_hostile DIR PATH\n");
		return 2;
	}
	int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, 5) < 0) {
		perror(argv[2]);
		return 1;
	}
	close(fd);
	(void)fails;
	checkpoint(argv[1], NULL);
	const char *type = fstat(5, &st) < 0 ? "closed" : S_ISREG(st.st_mode) ? "regular" :
			   S_ISDIR(st.st_mode) ? "directory" : S_ISCHR(st.st_mode) ? "character device" :
			   S_ISFIFO(st.st_mode) ? "fifo" : "other";
	printf("fd 5: %s\n", type);
	return 0;
}
