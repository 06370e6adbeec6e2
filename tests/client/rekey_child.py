"""A patient's key rotation in a process of its own, killed (SIGKILL) at a chosen point.

    python -m tests.client.rekey_child URL KEYFILE PHASE DONE BATCH

runs `Client.rotate_keys` on the key file and kills its own process as soon as the
rotation reports *PHASE* with at least *DONE* done: the rotation stops there as a power cut
would stop it, with nothing cleaned up.
"""

from __future__ import annotations

import os
import signal
import sys

from ehrgate import Client
from ehrgate._client.rekey import RotationProgress
from envelope import PatientKeys, load_key_file


def main(url: str, key_file: str, phase: str, done: str, batch: str) -> None:
    keys = load_key_file(key_file)
    assert isinstance(keys, PatientKeys)

    def progress(step: RotationProgress) -> None:
        if step.phase == phase and step.done >= int(done):
            os.kill(os.getpid(), signal.SIGKILL)

    with Client(url, keys) as client:
        client.rotate_patient_key(key_file, progress=progress, batch=int(batch))


if __name__ == "__main__":
    main(*sys.argv[1:])
