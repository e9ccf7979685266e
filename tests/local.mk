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
