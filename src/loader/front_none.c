/* SPDX-License-Identifier: MIT */
/*
 * front_none.c - crac-loader's front_dispatch: the loader run as itself
 * (by crac-cli, `crac start` or a test) takes its arguments as they come.
 * The crac command links front.c instead.
 */
int front_dispatch(int argc, char **argv, char **envp);

int front_dispatch(int argc, char **argv, char **envp)
{
	(void)argc, (void)argv, (void)envp;
	return 0;
}
