/*
 * fuzz_backend - arbitrary backend replies through the real backend client
 * (proxy/backend.c: be_parse's reply framing, stale replies, the STARTTLS
 * boundary, be_reply's dialogue) behind a real session, in one process over
 * loopback TCP (fuzz_peers.h). The client is a fixed pipelined script (two
 * transactions, then QUIT). The input is the backend's byte stream, cut
 * into chunks at each "\n--\n" (four bytes): chunk 0 is the greeting, and
 * each line backstop sends (or the final dot) gets the next chunk; when
 * backstop waits and nothing moves, the backend sends the next chunk
 * anyway; after the last one it closes (byte 0 bit 0: with an RST).
 * [backend] tls = opportunistic, so a reply offering STARTTLS and a 220 to
 * it start a TLS handshake on what follows.
 *
 * Checks: no crash, leak or undefined behaviour, no hang, and never a 250
 * to the client's end of data before the backend answered that dot with a
 * '2' (invariant 1: a stale or forged 250 accepts nothing), and no command
 * to the backend before that answer (fuzz_peers.h).
 */
#include "tests/fuzz/fuzz_peers.h"

static const char client_script[] =
    "EHLO client.example.org\r\n"
    "MAIL FROM:<a@example.org> SIZE=100\r\n"
    "RCPT TO:<b@example.net>\r\n"
    "RCPT TO:<c@example.net>\r\n"
    "DATA\r\n"
    "Subject: one\r\n\r\nhello\r\n..dot\r\n.\r\n"
    "MAIL FROM:<a@example.org>\r\n"
    "RCPT TO:<b@example.net>\r\n"
    "DATA\r\n"
    "Subject: two\r\n\r\nbye\r\n.\r\n"
    "QUIT\r\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fp_init("xclient = auto\ntls = opportunistic");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t rxlen, pos = 1;
	const char *rx;

	if (size < 1 || size > 16384)
		return 0;
	memset(&fp_script, 0, sizeof fp_script);
	fp_script.scripted = true;
	fp_script.close_with_rst = data[0] & 1;
	if ((data[0] & 2) != 0) {
		struct backend_caps caps;
		memset(&caps, 0, sizeof caps);
		caps.xclient = (data[0] & 4) != 0;
		caps.pipelining = true;
		backend_known_learnt(&fp_worker.backend_known, false, &caps);
	} else {
		backend_known_forget(&fp_worker.backend_known, false);
	}
	while (pos <= size && fp_script.nchunks < FP_MAX_CHUNKS) {
		const uint8_t *sep = memmem(data + pos, size - pos, "\n--\n", 4);
		size_t end = sep ? (size_t)(sep - data) : size;
		fp_script.chunk[fp_script.nchunks] = data + pos;
		fp_script.chunk_len[fp_script.nchunks++] = end - pos;
		if (sep == NULL)
			break;
		pos = end + 4;
	}
	rx = fp_exchange((const uint8_t *)client_script, sizeof client_script - 1, &rxlen);
	if (fp_count_accepts(rx, rxlen) > fp_backend_accepts) {
		fprintf(stderr, "fuzz_backend: %u end-of-data 250 to the client, backend accepted %u\n",
		    fp_count_accepts(rx, rxlen), fp_backend_accepts);
		abort();
	}
	return 0;
}
