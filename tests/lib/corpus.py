"""corpus - where the shared bounce corpus is: sisimai's set-of-emails
maildir (../shared/corpora/sisimai-set-of-emails/maildir beside the
checkout), for the tests that replay it (bounce_corpus.py,
bounce_report.py; tests/unit/test_bounce_corpus looks the same way).
"""
import os

from harness import in_ci, srcdir

MISSING = ("the corpus ../shared/corpora/sisimai-set-of-emails/maildir/bsd is missing "
           "(or set BACKSTOP_CORPORA to the directory holding sisimai-set-of-emails)")


def sisimai_maildir():
    """The maildir (with bsd/ and not/), or None. shared/ sits beside the
    checkout (CI: ../shared); a clone made elsewhere on the machine finds
    it beside any parent; BACKSTOP_CORPORA names it first."""
    cands = [os.environ.get("BACKSTOP_CORPORA", "")]
    d = os.path.abspath(srcdir())
    while True:
        cands.append(os.path.join(os.path.dirname(d), "shared", "corpora"))
        if os.path.dirname(d) == d:
            break
        d = os.path.dirname(d)
    for c in cands:
        d = os.path.join(c, "sisimai-set-of-emails", "maildir")
        if c and os.path.isdir(os.path.join(d, "bsd")):
            return os.path.abspath(d)
    return None


def require_sisimai_maildir(t):
    """sisimai_maildir(), or the end of test t: the corpus is required, so
    missing under CI=true is a failure, elsewhere a skip."""
    d = sisimai_maildir()
    if d is None:
        if in_ci():
            t.check("corpus present", False, MISSING)
            t.done()
        t.skip(MISSING)
    return d
