"""bench_proc - what the Python benchmarks that hold thousands of clients
(tests/bench/idle_bench.py, soak_bench.py) share: loopback ports seen
through ss(8), /proc figures of a process, RLIMIT_NOFILE, a fresh smtp-sink
as the backend, and backstop started on an INI text in front of it.

Not the integration harness (harness.py): the benchmarks run by hand, as
any user that can raise RLIMIT_NOFILE, and print figures rather than
checks. A failure to run ends the script with die(): exit status 1 and a
line on stderr named after the script.
"""
import os
import random
import re
import resource
import subprocess
import sys
import time
from procs import stop_process


def die(msg):
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0] or "bench"
    print("%s: %s" % (name, msg), file=sys.stderr)
    sys.exit(1)


def listening(port):
    out = subprocess.run(["ss", "-Htln", "sport = :%d" % port], capture_output=True, text=True).stdout
    return bool(out.strip())


def free_port():
    for _ in range(200):
        p = random.randint(10000, 32000)   # below the ephemeral range (32768-)
        if not listening(p):
            return p
    die("no free port")


def wait_listen(port, proc, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if listening(port):
            return True
        time.sleep(0.05)
    return False


def status_kb(pid, key):
    """A kB figure of /proc/PID/status (VmRSS, VmHWM), -1 when gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def established_to(port):
    """Established TCP connections whose remote end is 127.0.0.1:port."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "dport = :%d" % port],
                         capture_output=True, text=True).stdout
    return len([l for l in out.splitlines() if l.strip()])


def raise_nofile(want):
    """RLIMIT_NOFILE up to want (the hard limit too, as root); the soft
    limit set. Children (backstop) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))   # root only
            return want
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


class Sink:
    """smtp-sink on a free loopback port, counting sessions (-c) with a
    backlog of backlog."""

    def __init__(self, workdir, backlog, sink="/usr/sbin/smtp-sink"):
        self.port = free_port()
        self.out = os.path.join(workdir, "sink.out")
        cmd = [sink]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]      # smtp-sink refuses to run as root
        cmd += ["-c", "127.0.0.1:%d" % self.port, str(backlog)]
        self.proc = subprocess.Popen(cmd, stdout=open(self.out, "wb"),
                                     stderr=open(os.path.join(workdir, "sink.err"), "wb"))
        if not wait_listen(self.port, self.proc, 10):
            die("smtp-sink did not start")

    def sessions(self):
        """Sessions the sink has counted (its -c counter; updated at session end)."""
        with open(self.out, "rb") as f:
            data = f.read().decode("ascii", "replace")
        m = re.findall(r"sess=(\d+)", data)
        return int(m[-1]) if m else 0

    def stop(self):
        stop_process(self.proc)


def start_backstop(binary, workdir, ini_text, ports, sink):
    """backstop -f on workdir/backstop.ini (ini_text), its log in
    workdir/backstop.log; waits until every port in ports listens and the
    sink has counted backstop's start-up probe. Returns (process, the
    sink's session count after the probe: the baseline)."""
    ini = os.path.join(workdir, "backstop.ini")
    with open(ini, "w") as f:
        f.write(ini_text)
    log = os.path.join(workdir, "backstop.log")
    # backstop inherits the raised RLIMIT_NOFILE
    bs = subprocess.Popen([binary, "-f", "-c", ini], stdout=subprocess.DEVNULL,
                          stderr=open(log, "wb"))
    for i, port in enumerate(ports):
        if not wait_listen(port, bs, 10 if i == 0 else 5):
            die("backstop did not start:\n" + open(log).read())
    # the start-up probe: wait until the sink has counted it, then take
    # the sink's count as the baseline
    end = time.monotonic() + 5
    while sink.sessions() < 1 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.3)
    return bs, sink.sessions()
