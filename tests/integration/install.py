#!/usr/bin/python3
"""install: `make install DESTDIR=...` from the build directory puts the
daemon in sbindir, the example configuration in sysconfdir/backstop (and,
as the reference copy, in pkgdatadir), the certificate helper in
pkgdatadir, the manual pages in man5/man8 and backstop.service in the
configured systemd unit directory, with the configured paths filled in.
The installed binary accepts the installed configuration (-t). A second
install keeps an edited configuration; uninstall removes everything else,
and the configuration too once it is the shipped one again.

The installed unit passes `systemd-analyze verify` (its ExecStart pointed
at the DESTDIR copy, its man: pages found there) and its exposure
(`systemd-analyze security --offline=true`) stays at or below
MAX_EXPOSURE. Its CapabilityBoundingSet and NoNewPrivileges are enough for
what start-up needs, tried with setpriv(1) on the installed binary: bind a
port below 1024, read a key only [server] user can read, drop to nobody.
Its SystemCallFilter= lines (expanded with systemd-analyze syscall-filter)
allow the drop and setfsuid/setfsgid. [log] destination = file works as
the unit runs it: LogsDirectory= (mode LogsDirectoryMode=, group Group=)
the only writable place in a read-only file system (ProtectSystem=strict,
emulated with a read-only bind mount), root with the unit's capabilities
(no CAP_CHOWN, no CAP_DAC_OVERRIDE) and gid, the unit's UMask=: the file is
created as the user, mode 0640; renamed and SIGHUP, a new one; a file made
by logrotate's create reopened at the next start; -t agrees."""
import filecmp
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
from harness import *

# systemd-analyze security's overall figure for backstop.service (2.3 with
# systemd 252): what is left is running as root until the drop, and the
# network; UMask=0027 (0.1) makes the log file 0640 for its group. A change
# to the unit that raises it must raise this too.
MAX_EXPOSURE = 2.3

t = Test("install", need=("make",), watchdog=170)
build = os.environ.get("BACKSTOP_BUILDDIR") or os.path.dirname(os.path.abspath(t.bin))
src = srcdir()
dest = t.tmpdir("destdir")


def make_vars(makefile):
    """The installation directories of the configured Makefile, expanded."""
    raw = {}
    for line in open(makefile):
        m = re.match(r"^(\w+) = (.*)$", line.rstrip("\n"))
        if m:
            raw[m.group(1)] = m.group(2)

    def expand(v, depth=0):
        return re.sub(r"\$[{(](\w+)[})]",
                      lambda m: expand(raw.get(m.group(1), ""), depth + 1) if depth < 10 else "", v)
    return {k: expand(raw[k]) for k in ("prefix", "sbindir", "sysconfdir", "pkgdatadir", "mandir",
                                        "systemdsystemunitdir") if k in raw}


def make(*targets):
    """make in the build directory, alone: not the jobserver of a `make
    check` this test may run under."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "-C", build, "DESTDIR=" + dest] + list(targets), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def low_free_port():
    """A free port below 1024 on 127.0.0.1 (only root, or CAP_NET_BIND_SERVICE,
    can bind it)."""
    for port in random.sample(range(600, 1000), 100):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    return None


v = make_vars(os.path.join(build, "Makefile"))
D = lambda path: dest + path
sbin = D(v["sbindir"]) + "/backstop"
conf = D(v["sysconfdir"]) + "/backstop/backstop.ini"
unit = D(v["systemdsystemunitdir"]) + "/backstop.service"
pages = [D(v["mandir"]) + "/man8/backstop.8", D(v["mandir"]) + "/man5/backstop.ini.5"]
shared = [D(v["pkgdatadir"]) + "/backstop.ini", D(v["pkgdatadir"]) + "/make-self-signed.sh"]

with t.case("make install DESTDIR"):
    rc, out = make("install")
    t.check("make install exits 0", rc == 0, out[-3000:])
    t.check("the daemon is in sbindir (%s), executable" % v["sbindir"],
            os.access(sbin, os.X_OK), files_under(dest))
    t.check("the example configuration is %s/backstop/backstop.ini, the shipped file" % v["sysconfdir"],
            os.path.exists(conf) and filecmp.cmp(conf, os.path.join(src, "backstop.ini"), shallow=False),
            files_under(dest))
    t.check("the reference copy and the certificate helper are in %s" % v["pkgdatadir"],
            all(os.path.exists(f) for f in shared) and os.access(shared[1], os.X_OK), files_under(dest))
    t.check("the manual pages are in %s/man8 and man5" % v["mandir"],
            all(os.path.exists(p) for p in pages), files_under(dest))
    t.check("backstop.service is in %s" % v["systemdsystemunitdir"], os.path.exists(unit), files_under(dest))
    installed = files_under(dest)
    t.check("nothing else is installed", len(installed) == 7, installed)
    text = "".join(open(f, errors="replace").read() for f in [unit] + pages if os.path.exists(f))
    t.check("no @placeholder@ is left in the unit and the pages",
            not re.search(r"@\w+@", text), re.findall(r"@\w+@", text))
    if os.path.exists(unit):
        t.check("the unit runs the installed path: ExecStart=%s/backstop -f" % v["sbindir"],
                re.search(r"^ExecStart=%s/backstop -f$" % re.escape(v["sbindir"]), open(unit).read(), re.M),
                open(unit).read())
    if os.path.exists(pages[0]):
        t.check("backstop(8) names the configured default configuration file",
                (v["sysconfdir"] + "/backstop/backstop.ini").replace("-", "\\-") in open(pages[0]).read()
                or (v["sysconfdir"] + "/backstop/backstop.ini") in open(pages[0]).read(), v["sysconfdir"])

with t.case("the installed binary checks the installed configuration"):
    r = subprocess.run([sbin, "-t", "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    t.check("as root, the installed configuration is refused until [server] user is set",
            r.returncode == 1 and "[server] user is not set" in out, out)
    r = subprocess.run([sbin, "-t", "-c", conf, "-o", "server.user=nobody"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    t.check("%s -t -c %s -o server.user=nobody: configuration OK" % (sbin, conf),
            r.returncode == 0 and "configuration OK" in out, out)
    r = subprocess.run([sbin, "-V"], stdout=subprocess.PIPE, timeout=10)
    t.check("-V prints the version", re.match(rb"backstop \d", r.stdout), r.stdout)

with t.case("systemd-analyze on the installed unit"):
    if not shutil.which("systemd-analyze"):
        t.check("systemd-analyze installed (tests/deps.sh installs systemd)", False)
    else:
        # the unit as installed, with its commands at their DESTDIR place
        # (verify checks that they exist and are executable)
        vdir = t.tmpdir("verify")
        body = open(unit).read().replace("=" + v["sbindir"] + "/", "=" + D(v["sbindir"]) + "/")
        with open(os.path.join(vdir, "backstop.service"), "w") as f:
            f.write(body)
        env = dict(os.environ, MANPATH=D(v["mandir"]) + ":", SYSTEMD_LOG_LEVEL="notice")
        r = subprocess.run(["systemd-analyze", "verify", "--man=yes", os.path.join(vdir, "backstop.service")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=60)
        out = r.stdout.decode("utf-8", "replace")
        t.check("systemd-analyze verify: exit 0, nothing said", r.returncode == 0 and out.strip() == "", out)
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                            os.path.join(vdir, "backstop.service")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode("utf-8", "replace")
        m = re.search(r"Overall exposure level for backstop.service: (\d+\.\d+)", out)
        log("systemd-analyze security: %s" % (m.group(0) if m else out[-500:]))
        t.check("exposure %s <= %.1f" % (m.group(1) if m else "?", MAX_EXPOSURE),
                m and float(m.group(1)) <= MAX_EXPOSURE, out[-4000:])

with t.case("the unit's capabilities are enough to start"):
    body = open(unit).read()
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", body, re.M)
    t.check("the unit limits capabilities", caps, body)
    t.check("the unit sets NoNewPrivileges", re.search(r"^NoNewPrivileges=yes$", body, re.M), body)
    port = low_free_port()
    t.check("a free port below 1024 and setpriv(1)", port and shutil.which("setpriv"), port)
    if caps and port and shutil.which("setpriv"):
        keep = ",".join("+" + c[len("CAP_"):].lower() for c in caps.group(1).split())
        d = t.tmpdir("caps")
        subprocess.run(["sh", shared[1], "localhost", d], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        nobody = pwd.getpwnam("nobody")
        os.chown(os.path.join(d, "backstop.key"), nobody.pw_uid, nobody.pw_gid)   # 0600: nobody's
        bs = t.backstop({"server": {"listen": "127.0.0.1:%d" % port, "user": "nobody"},
                         "backend": {"address": "127.0.0.1:%d" % dead_port()},
                         "tls": {"certificate": os.path.join(d, "backstop.crt"),
                                 "key": os.path.join(d, "backstop.key")}}, start=False)
        cmd = ["setpriv", "--bounding-set", "-all," + keep, "--inh-caps", "-all", "--no-new-privs",
               sbin, "-f", "-c", bs.conf]
        logf = open(bs.logfile, "ab")
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        t.defer(lambda: proc.poll() is None and proc.kill())
        poll(lambda: proc.poll() is not None or "started;" in bs.log(), 10)
        if t.check("with only %s: binds port %d, reads nobody's 0600 key, runs as nobody" % (keep, port),
                   proc.poll() is None and re.search(r"running as user nobody", bs.log()), bs.log()[-2000:]):
            proc.send_signal(signal.SIGTERM)
            t.check("and stops with status 0", proc.wait(10) == 0, bs.log()[-1000:])
        logf.close()

def unit_values(body, key):
    return [m.group(1).strip() for m in re.finditer(r"^%s=(.*)$" % re.escape(key), body, re.M)]


def syscalls(name, depth=0):
    """A system call, or systemd's expansion of a group (@name) as this
    systemd has it: a set of names."""
    if not name.startswith("@"):
        return {name}
    r = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=30)
    out = set()
    for line in r.stdout.decode().splitlines()[1:]:   # the first line is the group's name
        w = line.split("#")[0].strip()
        if w and depth < 8:
            out |= syscalls(w, depth + 1)
    return out


with t.case("the unit's system call filter allows the drop and opening the log file as the user"):
    body = open(unit).read()
    allowed, first = set(), True
    for f in unit_values(body, "SystemCallFilter"):
        names = set().union(*(syscalls(w) for w in f.lstrip("~").split()))
        if f.startswith("~"):
            allowed -= names
        elif first:
            allowed = names   # an allow list: what later lines add and take away
        else:
            allowed |= names
        first = False
    need = ("setgroups", "setresgid", "setresuid", "setfsuid", "setfsgid", "openat", "fstat")
    t.check("allowed: %s" % " ".join(need), allowed and all(n in allowed for n in need),
            [n for n in need if n not in allowed])

with t.case("[log] destination = file as the unit runs backstop"):
    body = open(unit).read()
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", body, re.M)
    logs = unit_values(body, "LogsDirectory")
    mode = (unit_values(body, "LogsDirectoryMode") or ["0755"])[-1]
    group = (unit_values(body, "Group") or [None])[-1]
    umask = (unit_values(body, "UMask") or ["0022"])[-1]
    t.check("the unit has LogsDirectory=backstop (the default [log] file's directory)",
            logs == ["backstop"], logs)
    t.check("UMask=%s leaves a created log file 0640" % umask, 0o640 & ~int(umask, 8) == 0o640, umask)
    nobody = pwd.getpwnam("nobody")
    # the unit's Group= (backstop) stands for [server] user's group: nobody's here
    gid = nobody.pw_gid if group else 0
    varlog = t.tmpdir("varlog")          # /var/log: read-only under ProtectSystem=strict
    ldir = os.path.join(varlog, "backstop")
    os.mkdir(ldir)
    os.chown(ldir, 0, gid)               # as systemd makes it: User= (root), Group=
    os.chmod(ldir, int(mode, 8))
    lpath = os.path.join(ldir, "backstop.log")
    keep = ",".join("+" + c[len("CAP_"):].lower() for c in caps.group(1).split()) if caps else "-all"
    bs = t.backstop({"server": {"user": "nobody"}, "backend": {"address": "127.0.0.1:%d" % dead_port()},
                     "log": {"destination": "file", "file": lpath, "level": "info"}}, start=False)

    def as_unit(*args):
        """backstop args as the unit runs it: its umask, gid, capabilities,
        and only the log directory writable below varlog."""
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount --bind -o ro "$1" "$1" && mount --bind "$2" "$2" && mount -o remount,bind,rw "$2" && umask "$3" && shift 3 && exec "$@"',
                "sh", varlog, ldir, umask, "setpriv", "--regid=%d" % gid, "--clear-groups",
                "--bounding-set", "-all," + keep, "--inh-caps", "-all", "--no-new-privs", sbin] + list(args)

    def run_unit():
        logf = open(bs.logfile, "ab")
        proc = subprocess.Popen(as_unit("-f", "-c", bs.conf), stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        t.defer(lambda: proc.poll() is None and proc.kill())
        t.defer(logf.close)
        return proc

    def logged(what):
        try:
            return what in open(lpath).read()
        except OSError:
            return False

    proc = run_unit()
    started = poll(lambda: proc.poll() is not None or logged("started;"), 10)
    if t.check("started, logging to %s" % lpath, proc.poll() is None and logged("running as user nobody"),
               (bs.log()[-2000:], os.listdir(ldir))):
        st = os.stat(lpath)
        t.check("the file was created by nobody (group %d), mode 0640" % gid,
                st.st_uid == nobody.pw_uid and st.st_gid == gid and st.st_mode & 0o777 == 0o640,
                (st.st_uid, st.st_gid, oct(st.st_mode)))
        os.rename(lpath, lpath + ".1")
        proc.send_signal(signal.SIGHUP)
        t.check("renamed, SIGHUP: a new file, nobody's",
                poll(lambda: logged("reload: configuration"), 5) and os.stat(lpath).st_uid == nobody.pw_uid,
                open(lpath + ".1").read()[-1000:])
        proc.send_signal(signal.SIGTERM)
        t.check("stops with status 0", proc.wait(10) == 0, bs.log()[-1000:])
    # logrotate's "create 0640 nobody adm", then a restart: root without
    # CAP_DAC_OVERRIDE opens it as its owner
    if os.path.exists(lpath):
        os.unlink(lpath)
    with open(lpath, "w"):
        pass
    os.chown(lpath, nobody.pw_uid, 4)
    os.chmod(lpath, 0o640)
    r = subprocess.run(as_unit("-t", "-c", bs.conf), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    t.check("-t as the unit runs it: configuration OK", r.returncode == 0 and "configuration OK" in out, out)
    proc = run_unit()
    poll(lambda: proc.poll() is not None or logged("started;"), 10)
    if t.check("restarted with logrotate's 0640 file: writing to it",
               proc.poll() is None and logged("running as user nobody"), bs.log()[-2000:]):
        proc.send_signal(signal.SIGTERM)
        t.check("stops with status 0", proc.wait(10) == 0, bs.log()[-1000:])

with t.case("install again, uninstall"):
    with open(conf, "a") as f:
        f.write("; edited by the postmaster\n")
    rc, out = make("install")
    t.check("a second make install exits 0", rc == 0, out[-3000:])
    t.check("it keeps the edited configuration, and says so",
            open(conf).read().endswith("; edited by the postmaster\n") and "kept" in out, out[-2000:])
    rc, out = make("uninstall")
    left = files_under(dest)
    t.check("make uninstall removes everything but the edited configuration",
            rc == 0 and left == [os.path.relpath(conf, dest)], (rc, left, out[-2000:]))
    shutil.copyfile(os.path.join(src, "backstop.ini"), conf)
    rc, out = make("uninstall")
    t.check("... and the configuration too once it is the shipped one",
            rc == 0 and files_under(dest) == [], files_under(dest))

t.done()
