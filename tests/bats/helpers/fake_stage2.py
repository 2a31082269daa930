"""Stand-in for stage two in the bats tests: reports what stage one handed over.

FAKE_SHOW_ENV lists variables to print; FAKE_GROUP is written, as the real
stage two records its payload's process group, to WRAPPER_PAYLOAD_GROUP_FILE
if stage one names one;
FAKE_MODE=signal blocks SIGTERM,
writes `ready` to FAKE_READY and exits 42 once SIGTERM arrives (99 after 20 s
without it); otherwise it exits FAKE_EXIT (default 0)."""
import json
import os
import signal
import sys

for arg in sys.argv[1:]:
    print("ARG " + json.dumps(arg))
for name in os.environ.get("FAKE_SHOW_ENV", "").split():
    print("ENV %s=%s" % (name, json.dumps(os.environ.get(name))))
print("CWD " + os.getcwd())
if os.environ.get("FAKE_GROUP") and os.environ.get("WRAPPER_PAYLOAD_GROUP_FILE"):
    with open(os.environ["WRAPPER_PAYLOAD_GROUP_FILE"], "w") as group:
        group.write(os.environ["FAKE_GROUP"] + "\n")
sys.stdout.flush()
if os.environ.get("FAKE_MODE") == "signal":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    with open(os.environ["FAKE_READY"], "w") as ready:
        ready.write("ready\n")
    sys.exit(42 if signal.sigtimedwait({signal.SIGTERM}, 20) else 99)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
