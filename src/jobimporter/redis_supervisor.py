"""Runs the embedded ``redis-server`` for as long as it has users (see ``redis_server``).

``python -m jobimporter.redis_supervisor USERS_LOCK STDERR_FILE REDIS_SERVER [ARGS...]``

Starts Redis as its child, with a parent-death signal so Redis shuts down (cleanly, on SIGTERM)
if this supervisor is killed. Then it waits for the exclusive lock on ``USERS_LOCK``, which it gets
only once no process holds its shared lock any more, and shuts Redis down. It exits when Redis does.
Standard library only: it must start fast and stay small.
"""

from __future__ import annotations

import ctypes
import fcntl
import signal
import subprocess
import sys
import time

_POLL_S = 0.05
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM (a clean Redis shutdown) when the supervisor dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's own SIGTERM handler still stops Redis
        pass


def main(argv: list[str]) -> int:
    users_path, stderr_path, *command = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(stderr_path, "wb") as stderr:
        server = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (this process runs no threads)
        )  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    with open(users_path, "ab") as users:
        while server.poll() is None:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(_POLL_S)
                continue
            server.terminate()  # the last user is gone: SIGTERM is Redis's clean shutdown (AOF flushed)
            break
        try:
            return server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            return server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
