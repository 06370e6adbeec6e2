"""py-spy recordings of `bench.load --profile`, and their summary.

    ./dev python -m bench._load_profile PROFILE-gateway.txt [--top 15]

A recording is py-spy's raw format (one line per distinct stack, `thread;frame;...;frame
count`) of the threads that were running (not waiting on a lock, a socket or a queue),
sampled at 100 Hz without pausing the process, so a sample is about 10 ms of one thread's
CPU. The summary gives the running samples per thread kind (the event loop, the threadpool
workers, the ledger's committer, others) and the frames most often on top (self time) and
anywhere in the stack (total time), as shares of all running samples.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click


@contextmanager
def spying(pid: int, output: str, duration: float) -> Iterator[None]:
    """py-spy recording *pid* to *output* for *duration* seconds (waited for at the end)."""
    command = [
        str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
        "--output", output, "--format", "raw", "--threads", "--nonblocking", "--nolineno",
        "--duration", str(int(duration) + 1),
    ]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        child.wait(timeout=duration + 60)


def thread_kind(frames: list[str]) -> str:
    text = ";".join(frames)
    if "WorkerThread.run" in text:
        return "threadpool"
    if "Committer" in text:
        return "committer"
    if "Runner.run" in text or "<module>" in frames[0]:
        return "main/loop"
    return "other"


def summarise(path: Path, top: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    threads: dict[str, set[str]] = defaultdict(set)
    running = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        thread, *frames = [part.strip() for part in stack.split(";")]
        if not frames:
            continue
        samples = int(count)
        kind = thread_kind(frames)
        kinds[kind] += samples
        threads[kind].add(thread)
        running += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"{path.name}: {running} running samples (about {running / 100:.0f} CPU seconds)"]
    for kind, n in kinds.most_common():
        lines.append(f"  {kind:<11} {len(threads[kind]):>3} threads {n / max(1, running):6.1%}")
    lines.append(f"  top {top} frames by self time:")
    lines += [f"    {n / max(1, running):6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines.append(f"  top {top} frames by total time:")
    lines += [f"    {n / max(1, running):6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


@click.command()
@click.argument("recording", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--top", default=15, show_default=True)
def main(recording: Path, top: int) -> None:
    click.echo(summarise(recording, top))


if __name__ == "__main__":
    main()
