"""haproxy - HAProxy in front of backstop for the tests that put it behind
a load balancer (proxy_protocol.py, pool_haproxy.py): `haproxy -db` (in
the foreground, its log on stdout into a file) on a configuration the test
writes, checked first with `haproxy -c`, stopped with the test.

    class MyHAProxy(HAProxy):
        def __init__(self, ...):
            HAProxy.__init__(self, t, "haproxy")
            self.start(HAProxy.tcp_defaults("2s") + ["frontend fe", ...])
            if not poll(ready, 5):
                t.error("haproxy did not listen:\n%s" % self.log())
"""
import os
import subprocess
from procs import stop_process


class HAProxy:
    def __init__(self, t, name):
        """name: the test's temporary directory for it (configuration,
        log, sockets the configuration places there)."""
        self.t = t
        self.dir = t.tmpdir(name)
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        self.logfile = os.path.join(self.dir, "haproxy.log")
        self.proc = None
        self.out = None

    @staticmethod
    def tcp_defaults(connect_timeout, global_lines=()):
        """The global and defaults sections both tests use: TCP mode, the
        log on stdout (raw, one tcplog line per connection)."""
        return (["global", "    log stdout format raw local0"] + ["    " + l for l in global_lines] +
                ["defaults", "    mode tcp", "    log global", "    option tcplog",
                 "    timeout connect %s" % connect_timeout, "    timeout client 30s",
                 "    timeout server 30s"])

    def start(self, lines):
        """Write the configuration, have haproxy -c accept it (else the
        test's fixture error), start haproxy -db on it."""
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = subprocess.run(["haproxy", "-c", "-f", self.cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            self.t.error("haproxy -c refused the test's configuration:\n%s" % r.stdout.decode())
        self.out = open(self.logfile, "ab")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.cfg], stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.t.defer(self.stop)

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        stop_process(self.proc)
        if self.out is not None:
            self.out.close()
            self.out = None
