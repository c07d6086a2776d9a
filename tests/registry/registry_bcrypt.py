"""bcrypt hashes for htpasswd files, with what the machine has.

Python's ``crypt`` module (through Python 3.12) uses the system's libxcrypt,
which makes ``$2b$`` hashes on Debian; ``htpasswd`` from apache2-utils is the
fallback.  Cost 4, the least bcrypt allows: the registry checks the hash on
every request.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings


def bcrypt(password: str) -> str:
    """A bcrypt hash of ``password``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # removed in Python 3.13

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if hashed and hashed.startswith("$2"):
            return hashed
    except (ImportError, AttributeError, OSError):
        pass
    tool = shutil.which("htpasswd")
    if tool is None:
        raise RuntimeError("no bcrypt: need Python's crypt module or htpasswd (apache2-utils)")
    done = subprocess.run([tool, "-nbB", "-C", "4", "x", password], capture_output=True,
                          text=True, check=True)
    return done.stdout.strip().partition(":")[2]
