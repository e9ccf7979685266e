/*
 * dmarc_eval - the DMARC verdict for one message (see dmarc_eval.h).
 *
 * RFC 7489 6.6.2 step 5: the message passes when at least one
 * authenticated identifier (SPF's domain, a DKIM d=) passed and aligns
 * with the From domain in the record's mode. A passing unaligned signature
 * does not help, a failing aligned one does not hurt; order is irrelevant.
 *
 * 6.6.2, last paragraphs: "If neither passes and one or both of them fail
 * due to a temporary error, the Receiver ... cannot apply the advertised
 * DMARC policy." Only a temporary error on an identifier that would align
 * counts: an unaligned one could not have passed DMARC anyway, and letting
 * it turn a fail into temperror would give a forger a 4xx instead of a 5xx.
 *
 * 6.6.4: pct= limits the share of failing messages the policy is enacted
 * on; a message sampled out of "reject" is quarantined, one sampled out of
 * "quarantine" gets no DMARC action. The draw is the caller's: in 0..99,
 * the message is in the sample when draw < pct (pct=0: never, 100: always).
 */
#include <string.h>

#include "filters/dmarc_eval.h"

static void verdict_without_policy(struct dmarc_verdict *out,
    enum dmarc_result result, const char *reason)
{
	out->result = result;
	out->requested = DMARC_POLICY_NONE;
	out->applied = DMARC_POLICY_NONE;
	out->policy_dmarc = NULL;
	out->reason = reason;
}

/* sampled - 6.6.4: the policy enacted when pct= leaves the message out. */
static enum dmarc_policy sampled(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

void dmarc_evaluate(const struct dmarc_input *in, struct dmarc_verdict *out)
{
	const struct dmarc_record *rec = in->record;
	bool temp = false;

	memset(out, 0, sizeof *out);
	if (in->from_domain == NULL ||
	    !dmarc_domain_normalize(in->from_domain, strlen(in->from_domain), out->header_from)) {
		verdict_without_policy(out, DMARC_RESULT_NONE,
		    "From domain is not an ASCII domain name");
		return;
	}
	switch (in->discovery) {
	case DMARC_DISCOVERY_EMPTY:
		verdict_without_policy(out, DMARC_RESULT_NONE, "no DMARC record");
		return;
	case DMARC_DISCOVERY_TEMPERROR:
		verdict_without_policy(out, DMARC_RESULT_TEMPERROR,
		    "DMARC record lookup failed temporarily");
		return;
	case DMARC_DISCOVERY_MULTIPLE:
		verdict_without_policy(out, DMARC_RESULT_PERMERROR, "several DMARC records");
		return;
	case DMARC_DISCOVERY_INVALID:
		verdict_without_policy(out, DMARC_RESULT_PERMERROR,
		    "invalid DMARC record (no valid p= and no rua=)");
		return;
	case DMARC_DISCOVERY_FOUND:
		if (rec == NULL) {
			verdict_without_policy(out, DMARC_RESULT_PERMERROR, "no record given");
			return;
		}
		break;
	}

	out->policy_is_sp = in->record_at_org;
	out->requested = in->record_at_org ? rec->sp : rec->p;

	if (in->spf_domain && dmarc_aligned(in->from_domain, in->spf_domain, rec->aspf_strict)) {
		if (in->spf == DMARC_AUTH_PASS)
			out->spf_aligned = true;
		else if (in->spf == DMARC_AUTH_TEMPERROR)
			temp = true;
	}
	for (size_t k = 0; k < in->ndkim; k++) {
		const struct dmarc_dkim_sig *sig = &in->dkim[k];
		if (sig->result == DMARC_AUTH_FAIL || sig->domain == NULL)
			continue;
		if (!dmarc_aligned(in->from_domain, sig->domain, rec->adkim_strict))
			continue;
		if (sig->result == DMARC_AUTH_PASS)
			out->dkim_aligned = true;
		else
			temp = true;
	}

	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_RESULT_PASS;
		out->applied = DMARC_POLICY_NONE;
		out->reason = out->dkim_aligned ? "aligned DKIM pass" : "aligned SPF pass";
	} else if (temp) {
		out->result = DMARC_RESULT_TEMPERROR;
		out->applied = DMARC_POLICY_NONE;
		out->reason = "aligned SPF or DKIM check failed temporarily";
	} else {
		out->result = DMARC_RESULT_FAIL;
		out->applied = out->requested;
		out->reason = "no aligned SPF or DKIM pass";
		if (in->pct_draw % 100 >= rec->pct && out->requested != DMARC_POLICY_NONE) {
			out->sampled_out = true;
			out->applied = sampled(out->requested);
		}
	}
	out->policy_dmarc = dmarc_policy_name(out->applied);
}

const char *dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_NONE:
		return "none";
	case DMARC_RESULT_PASS:
		return "pass";
	case DMARC_RESULT_FAIL:
		return "fail";
	case DMARC_RESULT_TEMPERROR:
		return "temperror";
	case DMARC_RESULT_PERMERROR:
		return "permerror";
	}
	return "permerror";
}
