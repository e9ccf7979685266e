/*
 * fuzz_session - arbitrary client bytes through the real session command
 * loop (proxy/session*.c, smtp/, filters/) in front of a well-behaved fake
 * backend, in one process over loopback TCP (fuzz_peers.h). The first byte
 * picks the backend's behaviour (refusals at MAIL/RCPT/DATA/end of data,
 * XCLIENT or XFORWARD offered, XCLIENT refused); the rest is what the
 * client sends, pipelined, before it half-closes.
 *
 * Checks: no crash, leak or undefined behaviour (ASan/UBSan), no hang
 * (every session ends within backstop's timers), and never more 250
 * replies to an end of data than the backend accepted (invariant 1).
 */
#include "tests/fuzz/fuzz_peers.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fp_init("xclient = auto");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t rxlen;
	const char *rx;

	if (size < 1 || size > 32768)
		return 0;
	memset(&fp_script, 0, sizeof fp_script);
	fp_script.mode = data[0];
	/* what the previous sessions learnt about the backend: from the input
	 * too, so that a run does not depend on the ones before it */
	if ((data[0] & 0x40) != 0) {
		struct backend_caps caps;
		memset(&caps, 0, sizeof caps);
		caps.xclient = (data[0] & 0x08) != 0;
		caps.pipelining = true;
		backend_known_learnt(&fp_worker.backend_known, false, &caps);
	} else {
		backend_known_forget(&fp_worker.backend_known, false);
	}
	rx = fp_exchange(data + 1, size - 1, &rxlen);
	if (fp_count_accepts(rx, rxlen) > fp_backend_accepts) {
		fprintf(stderr, "fuzz_session: %u end-of-data 250 to the client, %u accepted by the backend\n",
		    fp_count_accepts(rx, rxlen), fp_backend_accepts);
		abort();
	}
	return 0;
}
