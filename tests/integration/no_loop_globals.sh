#!/bin/bash
# no_loop_globals - issue 14, "one owner for a loop's state": what one
# event loop owns lives in struct worker (proxy/worker.h) and is passed
# explicitly; file-scope mutable state is allowed only where it is truly
# process-wide and says why.
#
# The check: every writable data object (.data*, .bss*, .tdata, .tbss,
# except .data.rel.ro*, which is read-only after relocation: the const
# tables `nm` shows as d/D in a PIE build) of libproxy.a and libfilters.a
# must be listed in tests/integration/loop_globals.allow, with its reason.
# objdump -t rather than nm: it names each symbol's section, which is what
# tells a const pointer table from a writable variable.
#
# It also fails on an allowlist entry whose symbol is gone (the list only
# shrinks honestly), on an entry without a reason, and - first of all - it
# shows that it can fail: a planted file-scope static in an object of its
# own must be reported.
#
# Environment (set by the harness): BACKSTOP_BUILDDIR, BACKSTOP_SRCDIR.
# Exit: 0 pass, 1 fail, 99 error (no objdump, no libraries).
set -u

builddir=${BACKSTOP_BUILDDIR:-.}
srcdir=${BACKSTOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
allow=${LOOP_GLOBALS_ALLOW:-$srcdir/tests/integration/loop_globals.allow}
libs=("$builddir/libproxy.a" "$builddir/libfilters.a")

command -v objdump >/dev/null || { echo "ERROR: objdump (binutils) is needed"; exit 99; }
for l in "${libs[@]}"; do
	[ -f "$l" ] || { echo "ERROR: $l not built"; exit 99; }
done
[ -f "$allow" ] || { echo "ERROR: $allow missing"; exit 99; }

# writable_objects ARCHIVE... - "object.o symbol" for every writable data
# object; a compiler's numbered name for a function's static (warned.0,
# clang's warned.1) loses its number
writable_objects() {
	objdump -t "$@" | awk '
		/^[^ ]+\.o: +file format/ { obj = $1; sub(/:$/, "", obj); next }
		/^[0-9a-f]+ / {
			# columns: value, flags (7 chars, may hold spaces), section, size, name
			line = $0
			sect = substr(line, length($1) + 10)
			split(sect, f, /[ \t]+/)
			s = f[1]; name = f[3]
			# objects; thread-local ones carry no O flag (their type is TLS)
			if (substr(line, length($1) + 8, 1) != "O" && !(s ~ /^\.t(data|bss)$/ && name !~ /^\./))
				next
			if (s ~ /^\.data\.rel\.ro/ || s !~ /^\.(data|bss|tdata|tbss)/)
				next
			# bookkeeping of a sanitizer build (the ODR indicators of ASan)
			if (name ~ /^(__odr_asan|__asan_|__ubsan_|__sancov_)/)
				next
			sub(/\.[0-9]+$/, "", name)
			print obj, name
		}' | sort -u
}

fail=0

# 1. the check can fail: a planted static is reported
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'static int planted_loop_state;\nint planted(void) { return ++planted_loop_state; }\n' > "$tmp/planted.c"
if ! ${CC:-cc} -c -o "$tmp/planted.o" "$tmp/planted.c" || ! ar cr "$tmp/libplanted.a" "$tmp/planted.o"; then
	echo "ERROR: cannot compile the planted object"
	exit 99
fi
if writable_objects "$tmp/libplanted.a" | grep -qx 'planted.o planted_loop_state'; then
	echo "ok: a planted file-scope static is found"
else
	echo "FAIL: the check does not see a planted file-scope static"
	fail=1
fi

# 2. every entry has a reason
bad=$(grep -v '^[[:space:]]*\(#\|$\)' "$allow" | awk 'NF < 3')
if [ -n "$bad" ]; then
	echo "FAIL: allowlist entries without a reason (object symbol reason...):"
	echo "$bad"
	fail=1
fi

found=$(writable_objects "${libs[@]}")
allowed=$(grep -v '^[[:space:]]*\(#\|$\)' "$allow" | awk '{print $1, $2}' | sort -u)

# 3. nothing writable outside the allowlist
extra=$(comm -23 <(echo "$found") <(echo "$allowed"))
if [ -n "$extra" ]; then
	echo "FAIL: file-scope mutable state outside struct worker (proxy/worker.h) and not in"
	echo "      $allow - move it into the loop's owner, or list it with why it is process-wide:"
	echo "$extra" | sed 's/^/  /'
	fail=1
fi

# 4. no stale entries
stale=$(comm -13 <(echo "$found") <(echo "$allowed"))
if [ -n "$stale" ]; then
	echo "FAIL: allowlist entries whose symbol is gone (remove them):"
	echo "$stale" | sed 's/^/  /'
	fail=1
fi

n=$(echo "$found" | grep -c .)
[ $fail -eq 0 ] && echo "PASS: $n writable data objects, each listed with its reason"
exit $fail
