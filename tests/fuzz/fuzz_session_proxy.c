/*
 * fuzz_session_proxy - fuzz_session with [server] proxy_protocol = on
 * (loopback trusted): the client's bytes start with what should be a
 * PROXY protocol header, so the session's first phase (proxy/
 * session_proxy.c) and the hand-over of the bytes after the header to the
 * SMTP side run on arbitrary input. The first byte picks the backend's
 * behaviour as in fuzz_session; the seeds carry v1 and v2 headers followed
 * by SMTP dialogues.
 *
 * Checks: no crash, leak or undefined behaviour, no hang; nothing is sent
 * to the client before a complete header (a client whose bytes are not a
 * valid header receives nothing at all); never more 250 replies to an end
 * of data than the backend accepted.
 */
/* first: it sets the feature macros (memmem) before any system header */
#include "tests/fuzz/fuzz_peers.h"
#include "smtp/proxy_proto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* the server section again, after the backend keys fp_init writes */
	fp_init("xclient = auto\n[server]\nproxy_protocol = on\nproxy_trusted = 127.0.0.1\n"
	    "proxy_timeout = 1s");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_proto_result hdr;
	size_t rxlen;
	const char *rx;

	if (size < 1 || size > 32768)
		return 0;
	memset(&fp_script, 0, sizeof fp_script);
	fp_script.mode = data[0];
	backend_known_forget(&fp_worker.backend_known, false);
	rx = fp_exchange(data + 1, size - 1, &rxlen);
	if (proxy_proto_parse(data + 1, size - 1, &hdr) != PROXY_PROTO_DONE && rxlen > 0) {
		fprintf(stderr, "fuzz_session_proxy: %zu bytes sent to a client without a valid header\n",
		    rxlen);
		abort();
	}
	if (fp_count_accepts(rx, rxlen) > fp_backend_accepts) {
		fprintf(stderr, "fuzz_session_proxy: %u end-of-data 250 to the client, %u accepted by the"
		    " backend\n", fp_count_accepts(rx, rxlen), fp_backend_accepts);
		abort();
	}
	return 0;
}
