"""Platform names (architecture and operating system) as containerd normalizes them.

A cache built on ``x86_64`` serves an ``amd64`` pod: both are read through
:func:`normalize_arch` before they are compared (SPEC §3.3).  The table follows
containerd's ``platforms.Normalize``; names it does not know are kept, lower-cased.
"""

from __future__ import annotations

from fastmatch.errors import ValidationError

__all__ = ["normalize_arch", "normalize_os", "normalize_platform"]

_ARCH = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "amd64": "amd64",
    "i386": "386",
    "i686": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "armv7l": "arm",
}
_OS = {"macos": "darwin"}


def _text(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or (value and not value.strip()):
        raise ValidationError(f"{where}: expected a platform name, got {value!r}")
    return value.strip().lower() or None


def normalize_arch(value: object, where: str = "arch") -> str | None:
    """An architecture name as containerd writes it: ``x86_64`` -> ``amd64``.

    ``None`` or an empty string is unknown (``None``); a non-string is bad input.

    >>> normalize_arch("x86_64"), normalize_arch("AArch64"), normalize_arch("riscv64")
    ('amd64', 'arm64', 'riscv64')
    """
    text = _text(value, where)
    return None if text is None else _ARCH.get(text, text)


def normalize_os(value: object, where: str = "os") -> str | None:
    """An operating system name as containerd writes it: lower case, ``macos`` -> ``darwin``."""
    text = _text(value, where)
    return None if text is None else _OS.get(text, text)


def normalize_platform(value: object, where: str = "platform") -> str | None:
    """``os/arch[/variant]`` normalized part by part: ``Linux/x86_64`` -> ``linux/amd64``.

    >>> normalize_platform("Linux/aarch64/v8")
    'linux/arm64/v8'
    """
    text = _text(value, where)
    if text is None:
        return None
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise ValidationError(f"{where}: expected os/arch[/variant], got {value!r}")
    os_name, arch = normalize_os(parts[0], where), normalize_arch(parts[1], where)
    return "/".join([str(os_name), str(arch), *parts[2:]])
