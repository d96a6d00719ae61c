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

# require_image_engine: skips the test, with the reason, when `crac --version`
# does not list the image engine. Needs $CRAC.
require_image_engine() {
	local engines
	engines="$("$CRAC" --version | sed -n 's/^engines://p')"
	case " $engines " in
	*" image "*) ;;
	*) skip "the image engine is not built (crac --version lists engines:$engines)" ;;
	esac
}
