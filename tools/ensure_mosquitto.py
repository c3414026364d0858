"""Make sure a `mosquitto` binary exists for the test session; install it from the OS packages if not.

Installs only when missing, and only with apt-get available and root rights (CI and fresh machines).
Otherwise it prints how to install it and exits non-zero: the MQTT tests never skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto", path=SEARCH_PATH)


def main() -> int:
    found = find_mosquitto()
    if found:
        print(f"mosquitto: {found}")
        return 0
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("mosquitto is missing: installing it from the OS packages (apt-get)...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run([apt, "update", "-qq"], check=False, env=env)
        rc = subprocess.run(
            [apt, "install", "-y", "-qq", "--no-install-recommends", "mosquitto", "mosquitto-clients"],
            check=False,
            env=env,
        ).returncode
        if rc == 0 and find_mosquitto():
            print(f"mosquitto: {find_mosquitto()}")
            return 0
    print(
        "error: the MQTT tests need the mosquitto broker; install it "
        "(Debian/Ubuntu: sudo apt-get install mosquitto mosquitto-clients; macOS: brew install mosquitto)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
