#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The external engine follows systemd-logind (issue 14 item 2), on a private
# D-Bus bus (dbus-daemon) with python3-dbusmock's logind template standing
# in for logind, reached through DBUS_SYSTEM_BUS_ADDRESS:
#   - at start the process takes a delay inhibitor lock ("sleep", "crac");
#   - PrepareForSleep(true): the before-callbacks run, and only once they
#     are done is the lock released;
#   - PrepareForSleep(false): the after-callbacks run (outcome RESTORED,
#     generation + 1) and a new lock is taken for the next sleep;
#   - a failing before-callback still releases the lock (outcome ABORTED);
#   - a PrepareForSleep(false) that comes right after the lock was released,
#     before the park began, resumes it (it was dropped: the process stayed
#     parked until CRAC_EXTERNAL_PARK_MS, and said no snapshot happened).
# Needs the Debian packages dbus-daemon and python3-dbusmock (skips with
# the reason otherwise) and a libcrac built with libsystemd (libsystemd-dev).

load common
load ext_common

setup() {
	CRAC="$CRAC_BUILD_DIR/crac"
	PROG="$CRAC_BUILD_DIR/tests/ext_prog"
	T="$(mktemp -d /tmp/crac-bats-logind.XXXXXX)"
	export CRAC_CONTROL_DIR="$T/ctl"
	unset CRAC_CONTROL CRAC_EXTERNAL_HOOK CRAC_EXTERNAL_PARK_MS CRAC_EXTERNAL_GENERATION_FILE
	export CRAC_ENGINE=external CRAC_EXTERNAL_LOGIND=1 CRAC_EXTERNAL_WATCH=0
	PID= BUS_PID= MOCK_PID=
	command -v dbus-daemon >/dev/null || skip "no dbus-daemon (Debian package dbus-daemon)"
	command -v dbus-send >/dev/null || skip "no dbus-send (Debian package dbus-bin)"
	PY=
	for p in python3 /usr/bin/python3; do
		if command -v "$p" >/dev/null && "$p" -c 'import dbusmock, dbus' 2>/dev/null; then
			PY=$p
			break
		fi
	done
	[ -n "$PY" ] || skip "no python3 with dbusmock (Debian package python3-dbusmock)"
	# a libcrac without libsystemd says so: nothing to test then
	DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/none" timeout 5 "$PROG" </dev/null >/dev/null 2>"$T/probe" &
	local probe=$!
	for _ in $(seq 100); do grep -q 'logind' "$T/probe" && break; sleep 0.02; done
	kill "$probe" 2>/dev/null; wait "$probe" 2>/dev/null || true
	if grep -q 'the logind path is not built' "$T/probe"; then
		skip "libcrac was built without libsystemd (libsystemd-dev): $(cat "$T/probe")"
	fi
	start_bus
}

teardown() {
	for p in $PID $MOCK_PID $BUS_PID; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}

# A private bus and the logind mock on it.
start_bus() {
	dbus-daemon --session --address="unix:path=$T/bus" --nofork --nopidfile \
		</dev/null >"$T/bus.out" 2>"$T/bus.err" &
	BUS_PID=$!
	export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/bus"
	wait_sock "$T/bus" 5
	"$PY" -m dbusmock --template logind </dev/null >"$T/mock.out" 2>"$T/mock.err" &
	MOCK_PID=$!
	for _ in $(seq 250); do
		dbus-send --bus="$DBUS_SYSTEM_BUS_ADDRESS" --print-reply --dest=org.freedesktop.login1 \
			/org/freedesktop/login1 org.freedesktop.login1.Manager.ListInhibitors \
			>/dev/null 2>&1 && return 0
		sleep 0.04
	done
	cat "$T/bus.err" "$T/mock.err" >&2
	return 1
}

# inhibitors: the mock's lock list, one "what who mode" per line
# (dbus-send, from dbus-bin: quicker than starting python for every look)
inhibitors() {
	dbus-send --bus="$DBUS_SYSTEM_BUS_ADDRESS" --print-reply --dest=org.freedesktop.login1 \
		/org/freedesktop/login1 org.freedesktop.login1.Manager.ListInhibitors |
	awk '/struct {/ { n = 0; s = "" } /string "/ { n++; v = $2; gsub(/"/, "", v)
	     if (n == 1 || n == 2) s = s v " "; if (n == 4) print s v }'
}

# sleep_signal true|false: logind announces a sleep / its end
sleep_signal() {
	"$PY" -c '
import dbus, sys
o = dbus.SystemBus().get_object("org.freedesktop.login1", "/org/freedesktop/login1")
o.EmitSignal("org.freedesktop.login1.Manager", "PrepareForSleep", "b", [sys.argv[1] == "true"],
             dbus_interface="org.freedesktop.DBus.Mock")' "$1"
}

# wait_lock yes|no: until the crac delay lock is (not) held, up to 10 s
wait_lock() {
	for _ in $(seq 250); do
		if inhibitors | grep -qx 'sleep crac delay'; then
			[ "$1" = yes ] && return 0
		else
			[ "$1" = no ] && return 0
		fi
		sleep 0.04
	done
	echo "inhibitors: $(inhibitors)" >&2
	return 1
}

@test "logind: delay lock taken; PrepareForSleep(true) runs before_checkpoint and releases it when done; (false) runs after_restore and locks again" {
	start_prog --slow-before 1500
	wait_lock yes
	! grep -q '^before' "$T/out" || false

	sleep_signal true
	wait_for '^before alpha '
	# alpha's callback is still running: the lock is still held
	inhibitors | grep -qx 'sleep crac delay'
	grep -qx 'before beta gen=0 engine=external' "$T/out"
	# once it is done, the lock goes: the platform may sleep / snapshot
	wait_lock no
	! grep -q '^after' "$T/out" || false

	sleep_signal false
	wait_for '^after beta '
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
	grep -qE '^after beta gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
	# ready for the next sleep
	wait_lock yes

	# and again: a second cycle, generation 2
	sleep_signal true
	wait_for '^before beta gen=1 '
	wait_lock no
	sleep_signal false
	wait_for '^after beta gen=2 '
	wait_lock yes
}

@test "logind: a failing before_checkpoint still releases the lock; after_restore says ABORTED; the next sleep is followed again" {
	start_prog --fail-before
	wait_lock yes
	sleep_signal true
	wait_for '^after beta '
	grep -qE '^after alpha gen=0 engine=external outcome=3 unannounced=0 ' "$T/out"
	wait_lock no
	grep -q 'crac: external: logind: .*alpha refuses on purpose' "$T/err"
	sleep_signal false
	wait_lock yes
	# nothing was parked: no second after_restore
	sleep 0.3
	[ "$(grep -c '^after alpha' "$T/out")" -eq 1 ]
}

@test "logind: CRAC_EXTERNAL_LOGIND=1 with no bus says why in one line" {
	DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/no-such-bus" start_prog
	wait_line "$T/err" logind 2
	cat "$T/err"
	grep -q "^crac: external: logind: cannot connect to the system bus at unix:path=$T/no-such-bus: " "$T/err"
}

@test "logind: PrepareForSleep(false) right after the lock is released, before the park began, still resumes it" {
	# 1.5 s between the lock's release and the park's waker (test hook);
	# a park deadline of 30 s, beyond wait_for's 10 s
	CRAC_EXTERNAL_TEST_PARK_DELAY_MS=1500 CRAC_EXTERNAL_PARK_MS=30000 start_prog
	wait_lock yes
	sleep_signal true
	wait_for '^before beta '
	wait_lock no
	sleep_signal false
	wait_for '^after beta '
	grep -qE '^after alpha gen=1 engine=external outcome=2 unannounced=0 ' "$T/out"
	! grep -q 'CRAC_EXTERNAL_PARK_MS' "$T/err" || false
	wait_lock yes
}
