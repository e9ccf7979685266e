# tests/ - unit tests (C), integration tests (real peers), fuzz targets.
TEST_EXTENSIONS = .py .sh
PY_LOG_COMPILER = /usr/bin/python3
SH_LOG_COMPILER = /bin/bash
AM_TESTS_ENVIRONMENT = \
	BACKSTOP_BIN='$(abs_top_builddir)/backstop'; export BACKSTOP_BIN; \
	BACKSTOP_SRCDIR='$(abs_top_srcdir)'; export BACKSTOP_SRCDIR; \
	BACKSTOP_BUILDDIR='$(abs_top_builddir)'; export BACKSTOP_BUILDDIR; \
	PYTHONPATH='$(abs_top_srcdir)/tests/lib'; export PYTHONPATH;

UNIT_LDADD = $(BACKSTOP_LIBS)

include tests/unit/local.mk
include tests/integration/local.mk
include tests/fuzz/local.mk

# the rest of tests/ that a release tarball needs: the suite's driver and
# dependency list, the quick start (demo_quickstart.py runs it), benchmarks
EXTRA_DIST += tests/run-all.sh tests/deps.sh tests/demo.sh \
	tests/bench/README.md tests/bench/content_bench.sh tests/bench/content_fixtures.py \
	tests/bench/idle_bench.py tests/bench/relay_bench.sh tests/bench/smtp_blast.c \
	tests/bench/spf_bench.py tests/bench/spf_stall_bench.py tests/bench/tls_bench.sh \
	tests/bench/bounce_bench.sh tests/bench/bench_lib.sh tests/bench/report_bench.sh
EXTRA_DIST += tests/bench/workers_bench.sh tests/bench/tls_blast.c
