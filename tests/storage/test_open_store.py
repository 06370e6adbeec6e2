"""Opening stores by URL: bad configuration fails at start-up, saying what to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from storage import (
    ReplicatedStore,
    StoreMisconfigured,
    StoreUnavailable,
    open_store,
    schemes,
)
from storage.ipfs import IpfsStore
from storage.local import LocalStore
from storage.s3 import S3Store
from tests.ports import free_port
from tests.seaweedfs import SeaweedFS


def test_one_url_gives_that_backend(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    assert isinstance(store, LocalStore)


def test_several_urls_give_a_replicated_store(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/a?name=a, file://{tmp_path}/b?name=b", write_quorum=1)
    assert isinstance(store, ReplicatedStore)
    assert [member.name for member in store.stores] == ["a", "b"]
    assert store.write_quorum == 1


def test_write_quorum_defaults_to_every_store(tmp_path: Path) -> None:
    store = open_store([f"file://{tmp_path}/a?name=a", f"file://{tmp_path}/b?name=b"])
    assert isinstance(store, ReplicatedStore)
    assert store.write_quorum == 2


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(StoreMisconfigured, match=r"ftp://.*file://, ipfs\+http://"):
        open_store("ftp://archive/blobs")
    assert "s3" in schemes()


def test_a_bare_path_is_not_a_store_url() -> None:
    with pytest.raises(StoreMisconfigured, match="scheme must be one of"):
        open_store("/var/lib/ehrgate")


def test_no_url_at_all_is_refused() -> None:
    with pytest.raises(StoreMisconfigured, match="no blob store URL"):
        open_store(" ")


def test_a_misspelt_parameter_is_refused_with_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured, match=r"unknown parameter\(s\) nmae.*takes: name"):
        open_store(f"file://{tmp_path}?nmae=x")


def test_local_url_with_a_host_is_refused() -> None:
    with pytest.raises(StoreMisconfigured, match="three slashes"):
        open_store("file://server/var/blobs")


def test_local_directory_under_a_missing_parent_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured, match="does not exist"):
        open_store(f"file://{tmp_path}/missing/deeper")


def test_local_directory_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreMisconfigured, match="not a directory"):
        open_store(f"file://{tmp_path}/file")


def test_a_bad_store_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured, match="store name"):
        open_store(f"file://{tmp_path}?name=Site/A")


def test_two_stores_with_one_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured, match="distinct"):
        open_store([f"file://{tmp_path}/a", f"file://{tmp_path}/b"])


@pytest.mark.parametrize("quorum", [0, 3])
def test_write_quorum_out_of_range_is_refused(tmp_path: Path, quorum: int) -> None:
    with pytest.raises(StoreMisconfigured, match="write_quorum"):
        open_store(
            [f"file://{tmp_path}/a?name=a", f"file://{tmp_path}/b?name=b"], write_quorum=quorum
        )


def test_write_quorum_above_one_needs_several_stores(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured, match="one was given"):
        open_store(f"file://{tmp_path}", write_quorum=2)


# -- S3 -----------------------------------------------------------------------------------------


def test_s3_url_without_bucket_is_refused() -> None:
    with pytest.raises(StoreMisconfigured, match="no bucket"):
        open_store("s3://?endpoint_url=http://127.0.0.1:1", check=False)


def test_s3_part_size_below_the_s3_minimum_is_refused() -> None:
    with pytest.raises(StoreMisconfigured, match="too small"):
        open_store("s3://bucket?part_size=1MiB", check=False)


def test_s3_size_that_is_not_a_size_is_refused() -> None:
    with pytest.raises(StoreMisconfigured, match="not a size"):
        open_store("s3://bucket?multipart_threshold=big", check=False)


def test_s3_endpoint_without_http_is_refused() -> None:
    with pytest.raises(StoreMisconfigured, match="http://"):
        open_store("s3://bucket?endpoint_url=127.0.0.1:8333", check=False)


def test_s3_secrets_never_appear_in_messages() -> None:
    with pytest.raises(StoreMisconfigured) as caught:
        open_store("s3://bucket?secret_access_key=TOPSECRET&access_key_id=a&bogus=1", check=False)
    assert "TOPSECRET" not in str(caught.value)
    assert "bogus" in str(caught.value)


def test_s3_half_given_credentials_are_refused() -> None:
    with pytest.raises(StoreMisconfigured, match="both access_key_id and secret_access_key"):
        open_store("s3://bucket?access_key_id=a", check=False)


def test_s3_unreachable_endpoint_is_unavailable_and_says_so() -> None:
    url = (
        f"s3://bucket?endpoint_url=http://127.0.0.1:{free_port()}"
        "&access_key_id=a&secret_access_key=b&max_attempts=1&connect_timeout=1"
    )
    with pytest.raises(StoreUnavailable, match=r"cannot reach S3.*endpoint_url"):
        open_store(url)


@pytest.mark.seaweedfs
def test_s3_missing_bucket_fails_at_start_up(seaweedfs: SeaweedFS) -> None:
    with pytest.raises(StoreMisconfigured, match=r"bucket 'no-such-bucket' does not exist.*create"):
        open_store(seaweedfs.store_url("no-such-bucket"))


@pytest.mark.seaweedfs
def test_s3_wrong_credentials_fail_at_start_up(seaweedfs: SeaweedFS, seaweedfs_bucket: str) -> None:
    url = seaweedfs.store_url(seaweedfs_bucket).replace(seaweedfs.secret_key, "wrong-secret")
    with pytest.raises(StoreMisconfigured, match=r"access denied.*check the credentials") as caught:
        open_store(url)
    assert "wrong-secret" not in str(caught.value)


@pytest.mark.seaweedfs
def test_s3_store_opens_on_a_good_configuration(
    seaweedfs: SeaweedFS, seaweedfs_bucket: str
) -> None:
    store = open_store(seaweedfs.store_url(seaweedfs_bucket, name="site-a"))
    assert isinstance(store, S3Store)
    assert store.name == "site-a"
    store.close()


def test_missing_credentials_are_misconfigured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    url = f"s3://bucket?endpoint_url=http://127.0.0.1:{free_port()}&max_attempts=1"
    with pytest.raises(StoreMisconfigured, match="no usable S3 credentials"):
        open_store(url)


# -- IPFS -----------------------------------------------------------------------------------------


def test_ipfs_url_without_host_is_refused() -> None:
    with pytest.raises(StoreMisconfigured, match="no host"):
        open_store("ipfs+http://", check=False)


def test_ipfs_url_with_a_path_is_refused() -> None:
    with pytest.raises(StoreMisconfigured, match="only host and port"):
        open_store("ipfs+http://127.0.0.1:5001/api/v0", check=False)


def test_ipfs_unreachable_node_is_unavailable_and_says_so() -> None:
    url = f"ipfs+http://127.0.0.1:{free_port()}?connect_timeout=1"
    with pytest.raises(StoreUnavailable, match="cannot reach Kubo"):
        open_store(url)


def test_ipfs_url_pointing_at_something_else_is_misconfigured() -> None:
    def not_kubo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html>Not Found</html>")

    store = IpfsStore.from_url(
        "ipfs+http://127.0.0.1:8080", transport=httpx.MockTransport(not_kubo)
    )
    with pytest.raises(StoreMisconfigured, match=r"Kubo RPC API.*5001"):
        store.check()


def test_ipfs_user_and_password_in_the_url_are_sent_and_never_shown() -> None:
    seen: list[str] = []

    def kubo(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(200, json={"Version": "0.38.1"})

    store = IpfsStore.from_url(
        "ipfs+https://ehrgate:s3cret@kubo.example:5001", transport=httpx.MockTransport(kubo)
    )
    store.check()
    assert seen == ["Basic ZWhyZ2F0ZTpzM2NyZXQ="]
    assert "s3cret" not in repr(store)


# -- the registry imports a backend only when it is used -------------------------------


def test_backends_are_imported_only_when_used(tmp_path: Path) -> None:
    program = (
        "import sys, storage\n"
        f"storage.open_store('file://{tmp_path}')\n"
        "loaded = [m for m in ('boto3', 'botocore', 'httpx', 'storage.s3', 'storage.ipfs') "
        "if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, cwd=Path(__file__).parents[2])


def test_a_misconfigured_member_fails_the_replicated_check(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured, match="does not exist"):
        open_store([f"file://{tmp_path}/a?name=a", f"file://{tmp_path}/missing/b?name=b"])
