"""Settings of the fault-injection suite: the seed and the number of kills.

    EHRGATE_FAULT_SEED   seed of every random choice the suite makes (kill moments, bodies,
                         which client uploads what); default 20261121
    EHRGATE_FAULT_KILLS  kills per crash test and database; default 6 (the short CI run)

The seed makes the *schedule* reproducible (when each kill is sent, what is uploaded); where
exactly the killed process was at that moment still depends on the machine.
"""

from __future__ import annotations

import os
import random

DEFAULT_SEED = 20261121
DEFAULT_KILLS = 6


def _int_setting(name: str, default: int, minimum: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def fault_seed() -> int:
    return _int_setting("EHRGATE_FAULT_SEED", DEFAULT_SEED, 0)


def fault_kills() -> int:
    return _int_setting("EHRGATE_FAULT_KILLS", DEFAULT_KILLS, 1)


def rng_for(test_name: str) -> random.Random:
    """A random generator for one test, derived from the suite's seed and the test's name,
    so that adding a test does not change the schedule of the others."""
    return random.Random(f"{fault_seed()}/{test_name}")
