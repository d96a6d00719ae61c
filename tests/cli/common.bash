# common.bash - helpers shared by the bats tests (`load common`).

# clean CMD...: runs CMD with only fds 0-2 open. The image engine's safety
# check refuses descriptors an image cannot keep, and bats holds a few open.
clean() {
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec "$@"
	)
}
