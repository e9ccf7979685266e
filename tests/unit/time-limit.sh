#!/bin/sh
# time-limit.sh SECONDS PROGRAM [ARGS] - run a unit test under a time limit
# (automake's LOG_COMPILER) and say so in its log when the limit killed it:
# an exit status of 124 alone does not tell a reader what happened.
limit=$1; shift
timeout -k 10 "$limit" "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "FAIL: $1 killed after UNIT_TIME_LIMIT=${limit}s (tests/unit/local.mk)"
fi
exit "$rc"
