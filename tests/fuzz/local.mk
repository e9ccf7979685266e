# libFuzzer targets: built by "make fuzz" with clang (FUZZ_CC), run by
# tests/fuzz/run.sh for a bounded time each.
FUZZ_TARGETS = smtp_line smtp_cmd smtp_addr smtp_reply smtp_data batv_tag
FUZZ_SMTP_SRCS = $(srcdir)/smtp/smtp_line.c $(srcdir)/smtp/smtp_cmd.c \
	$(srcdir)/smtp/smtp_addr.c $(srcdir)/smtp/smtp_reply.c \
	$(srcdir)/smtp/smtp_data.c $(srcdir)/smtp/smtp_server.c
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$(srcdir) -I$(builddir) $(OPENSSL_CFLAGS)

fuzz: $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)

tests/fuzz/fuzz_%: $(srcdir)/tests/fuzz/fuzz_%.c $(FUZZ_SMTP_SRCS)
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SMTP_SRCS) \
		$(if $(findstring batv,$*),$(srcdir)/filters/batv_tag.c $(OPENSSL_LIBS))

CLEANFILES += $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)
EXTRA_DIST += tests/fuzz
.PHONY: fuzz
