"""procs: stopping a child process, for the harness and the benches."""
import subprocess


def stop_process(proc, grace=5):
    """SIGTERM proc if it still runs, SIGKILL after grace seconds, reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
