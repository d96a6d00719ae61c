#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The zoo (issue 11 §3): python3, unmodified under `crac run` with no policy
# file: heavy imports (asyncio, decimal, email, http.client, json, sqlite3,
# ssl, xml), a warm dict and 4 pool threads started before the checkpoint;
# checkpointed from outside, restored twice one after the other and twice
# at once; each answer is computed by a pool thread of the restored copy.
# (python3 -m http.server: python3_http.bats.) See common.bash.

load common

setup() { zoo_setup; zoo_python; }
teardown() { zoo_teardown; }

zoo_expect() { echo "answer $1 $((3 * $1)) 100000 threads=5"; }

@test "zoo: python3 (heavy imports, 4 threads) restored twice, and twice at once, answers from its pool" {
	zoo_stdin_test 60 "$ZOO_PY" "$ZOO_PROGS/zoo.py"
}
