#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# crac inspect's L (loaded lazily where userfaultfd allows) is the loader's
# own plan (review of session 6): the mappings it marks are the ones the
# loader gives to userfaultfd, small anonymous mappings with pages stored
# included (unless CRAC_LAZY_SMALL=off); a full image and an incremental
# one (whose references count as stored).

bats_require_minimum_version 1.5.0

load common

setup() {
	image_setup inslazy CRAC_IMAGE_COMPRESS CRAC_IMAGE_INCREMENTAL CRAC_LAZY_SMALL
	INCR="$CRAC_BUILD_DIR/tests/image_incr"
	# the plan of the image alone: no mapping made eager by a working set
	# that shows the program going through it (lazy_working_set.bats)
	export CRAC_WORKING_SET=lazy
}

teardown() {
	common_teardown
}

# agree DIR [ENV...]: inspect's L rows (text and JSON) are as many as the
# mappings the loader fills by userfaultfd, under the same environment
agree() {
	local dir=$1
	shift
	run clean env "$@" "$CRAC" inspect "$dir"
	[ "$status" -eq 0 ]
	local rows
	rows=$(echo "$output" | grep -Ec "^  [0-9a-f]+ [0-9a-f]+ .*K L ")
	run clean env "$@" "$CRAC" inspect --json "$dir"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | python3 -c 'import json,sys; print(sum(m["lazy"] for m in json.load(sys.stdin)["mappings"]))')" = "$rows" ]
	run --separate-stderr clean env "$@" "$CRAC" restore --stats "$dir"
	echo "inspect: $rows L; restore: $status $output / $stderr"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok stage "* ]]
	if ! echo "$stderr" | grep -q " by userfaultfd"; then
		skip "the loader used no userfaultfd here: $stderr"
	fi
	local loader
	loader=$(echo "$stderr" | grep -Eo "[0-9]+ by userfaultfd" | head -1)
	[ "${loader%% *}" -eq "$rows" ]
	[ "$rows" -gt 0 ]
}

@test "inspect's L is the loader's plan: small anonymous mappings too, references counted, CRAC_LAZY_SMALL=off" {
	run --separate-stderr clean env CRAC_IMAGE_INCREMENTAL=1 "$INCR" "$T/i0" "$T/i1" "$T/i2" 8
	echo "$output / $stderr"
	[ "$status" -eq 0 ]
	agree "$T/i0"
	agree "$T/i2"
	agree "$T/i0" CRAC_LAZY_SMALL=off
	agree "$T/i2" CRAC_LAZY_SMALL=off
}

@test "an image with under 4 MiB to load lazily: inspect marks no L and says why, the loader fills nothing by userfaultfd" {
	# (image_lazy with a 1 MiB mapping: inspect's plan without the 4 MiB
	# rule marked it L while the loader read it at once)
	local d="$T/small"
	run clean "$CRAC_BUILD_DIR/tests/image_lazy" "$d" 1
	echo "status $status: $output"
	[ "$status" -eq 0 ]
	run clean "$CRAC" inspect "$d"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -Eq "^mappings: .*\(none lazy: under 4 MiB would be, read at once\)$"
	! echo "$output" | grep -Eq "^  [0-9a-f]+ [0-9a-f]+ .*K L " || false
	run clean "$CRAC" inspect --json "$d"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | python3 -c 'import json,sys; print(sum(m["lazy"] for m in json.load(sys.stdin)["mappings"]))')" = 0 ]
	run --separate-stderr clean "$CRAC" restore --stats "$d" -- read
	echo "$output / $stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok read" ]
	echo "$stderr" | grep -q " 0 by userfaultfd"
}
