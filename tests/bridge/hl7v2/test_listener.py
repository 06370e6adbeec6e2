"""The MLLP listener over a real TCP socket, its ACKs read by hl7apy as a second parser."""

from __future__ import annotations

import base64
import socket
import time
from datetime import UTC, datetime

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import parse_message

from bridge.errors import BridgeUnavailable, UnlinkedPatient
from bridge.hl7v2 import ListenerSettings
from tests.bridge.hl7v2.support import (
    PDF,
    MllpClient,
    RecordingPublisher,
    live_listener,
    mdm,
)


def second_parse(text: str, *, validate: bool = True) -> Message:
    """*text* parsed and (unless told not to) structure-validated by hl7apy."""
    message = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    if validate:
        message.validate()
    return message


def unescape(value: str) -> str:
    """HL7 escape sequences of the standard delimiters undone (hl7apy keeps them)."""
    for sequence, char in (("\\F\\", "|"), ("\\S\\", "^"), ("\\T\\", "&"), ("\\R\\", "~")):
        value = value.replace(sequence, char)
    return value.replace("\\E\\", "\\")


def ack_of(text: str, *, control_id_known: bool = True) -> tuple[str, str, str, Message]:
    """MSA-1, MSA-2, MSA-3 (unescaped) of an ACK, and the ACK, as hl7apy reads them.

    An ACK to a message whose control id could not be read has an empty MSA-2, which HL7
    requires: only its structure is not validated then.
    """
    ack = second_parse(text, validate=control_id_known)
    assert ack.msh.msh_9.to_er7().split("^")[0] == "ACK"
    assert [segment.name for segment in ack.children][:2] == ["MSH", "MSA"]
    msa = ack.msa
    return msa.msa_1.to_er7(), msa.msa_2.to_er7(), unescape(msa.msa_3.to_er7()), ack


def test_t02_is_published_and_acknowledged_aa() -> None:
    publisher = RecordingPublisher()
    message = mdm()
    sent = second_parse(message)  # the test message is valid MDM_T02 to hl7apy too
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        code, control_id, text, ack = ack_of(client.send(message))
        client.close()
    assert (code, control_id) == ("AA", "MSG0001")
    assert "published as record rec-1" in text
    # The ACK's MSH mirrors the sender and receiver of the message.
    assert ack.msh.msh_3.to_er7() == "EHRGATE"
    assert ack.msh.msh_4.to_er7() == "HOSP"
    assert ack.msh.msh_5.to_er7() == "ARIA"
    assert ack.msh.msh_6.to_er7() == "ONCO"
    assert ack.msh.msh_9.to_er7() == "ACK^T02^ACK"
    assert ack.msh.msh_12.to_er7() == "2.5"
    ((document, actor),) = publisher.published
    assert actor == "hospital-system"
    # What the listener published is what hl7apy reads in the message.
    assert document.mrn == sent.pid.pid_3.cx_1.to_er7() == "12345"
    assert document.unique_id == sent.txa.txa_12.to_er7() == "DOC-1"
    obx5 = sent.children[-1].obx.obx_5.to_er7().split("^")
    assert document.content == base64.b64decode(obx5[4]) == PDF
    assert document.category == "discharge-summary"
    assert document.created == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert document.title == "Discharge letter"
    assert document.replaces is None


def test_many_messages_per_connection_and_idempotent_on_txa12() -> None:
    publisher = RecordingPublisher()
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        first = ack_of(client.send(mdm(control_id="A1")))
        again = ack_of(client.send(mdm(control_id="A2")))
        other = ack_of(client.send(mdm(control_id="A3", unique_id="DOC-2")))
        client.close()
    assert [a[:2] for a in (first, again, other)] == [("AA", "A1"), ("AA", "A2"), ("AA", "A3")]
    assert "already published as record rec-1" in again[2]
    assert [d.unique_id for d, _ in publisher.published] == ["DOC-1", "DOC-2"]


def test_t10_replacement_names_the_parent_document() -> None:
    publisher = RecordingPublisher()
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        code, *_ = ack_of(client.send(mdm(event="T10", unique_id="DOC-9", parent="DOC-1")))
        missing = ack_of(client.send(mdm(event="T10", unique_id="DOC-10", control_id="B")))
        client.close()
    assert code == "AA"
    assert publisher.published[0][0].replaces == "DOC-1"
    assert missing[0] == "AE"
    assert "TXA-13" in missing[2]
    assert len(publisher.published) == 1


def test_mrn_from_the_configured_assigning_authority_else_the_first() -> None:
    pid3 = "999^^^OTHER^MR~12345^^^HOSP^MR"
    publisher = RecordingPublisher()
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        ack_of(client.send(mdm(pid3=pid3)))
        client.close()
    with live_listener(publisher, assigning_authorities=("NOWHERE", "2.16.840.1.9")) as listener:
        client = MllpClient(listener.port)
        ack_of(client.send(mdm(pid3=pid3, unique_id="DOC-2")))
        ack_of(client.send(mdm(pid3="777", unique_id="DOC-3")))
        ack_of(client.send(mdm(pid3="1^^^A&1.2.3&ISO~2^^^B&2.16.840.1.9&ISO", unique_id="DOC-4")))
        client.close()
    assert [d.mrn for d, _ in publisher.published] == ["12345", "999", "777", "2"]


BAD_CONTENT = [
    ("missing OBX", {"obx": False}, "no OBX segment", "100"),
    ("bad base64", {"obx5": "JVBERi0x*LjcK"}, "not valid base64", "102"),
    ("bad padding", {"obx5": "JVBERi0xLjcK="}, "not valid base64", "102"),
    ("not a PDF", {"obx5": base64.b64encode(b"<html>hello</html>").decode()}, "not a PDF", "102"),
    ("unknown type", {"txa2": "XYZ"}, "'XYZ' is not mapped", "103"),
    ("no unique id", {"unique_id": ""}, "TXA-12", "101"),
    ("no PID-3", {"pid3": ""}, "PID-3", "101"),
]


@pytest.mark.parametrize(
    ("name", "changes", "reason", "condition"), BAD_CONTENT, ids=[c[0] for c in BAD_CONTENT]
)
def test_wrong_content_is_ae_with_the_reason(
    name: str, changes: dict[str, object], reason: str, condition: str
) -> None:
    publisher = RecordingPublisher()
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        code, control_id, text, ack = ack_of(client.send(mdm(**changes)))  # type: ignore[arg-type]
        # The listener still serves the same connection afterwards.
        after = ack_of(client.send(mdm(control_id="NEXT", unique_id="OK-1")))
        client.close()
    assert (code, control_id) == ("AE", "MSG0001")
    assert reason in text
    assert ack.err.err_3.to_er7().split("^")[0] == condition
    assert reason in ack.err.err_8.to_er7()
    assert after[:2] == ("AA", "NEXT")
    assert [d.unique_id for d, _ in publisher.published] == ["OK-1"]


UNACCEPTABLE = [
    ("wrong message type", {"msh9": "ADT^A01^ADT_A01"}, "ADT is not accepted", "200"),
    ("wrong event", {"msh9": "MDM^T01^MDM_T01"}, "MDM^T01 is not accepted", "201"),
    ("unsupported version", {"version": "2.1"}, "2.1 is not supported", "203"),
    ("processing id", {"processing": "T"}, "processing id T", "202"),
    ("no control id", {"control_id": ""}, "MSH-10", "101"),
]


@pytest.mark.parametrize(
    ("name", "changes", "reason", "condition"), UNACCEPTABLE, ids=[c[0] for c in UNACCEPTABLE]
)
def test_unacceptable_messages_are_ar(
    name: str, changes: dict[str, str], reason: str, condition: str
) -> None:
    publisher = RecordingPublisher()
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        answer = client.send(mdm(**changes))  # type: ignore[arg-type]
        code, _, text, ack = ack_of(answer, control_id_known=bool(changes.get("control_id", 1)))
        client.close()
    assert code == "AR"
    assert reason in text
    assert ack.err.err_3.to_er7().split("^")[0] == condition
    assert publisher.published == []


@pytest.mark.parametrize(
    "payload",
    [
        b"this is not HL7",
        b"MSH|\x00\x01\x02",
        b"PID|1||123",
        b"MSH#^~\\&#A#B",
        b"\xff\xfe\x00garbage",
    ],
)
def test_garbage_inside_a_frame_is_ar_and_the_listener_serves_on(payload: bytes) -> None:
    publisher = RecordingPublisher()
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        code, control_id, text, _ = ack_of(client.send(payload), control_id_known=False)
        after = ack_of(client.send(mdm()))
        client.close()
    assert code == "AR"
    assert control_id == ""
    assert "MSH" in text or "HL7" in text
    assert after[0] == "AA"


def test_garbage_outside_a_frame_closes_only_that_connection() -> None:
    with live_listener(RecordingPublisher()) as listener:
        bad = MllpClient(listener.port)
        bad.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert bad.closed_by_peer()
        bad.close()
        good = MllpClient(listener.port)
        assert ack_of(good.send(mdm()))[0] == "AA"
        good.close()


def test_half_framed_message_then_close_leaves_the_listener_serving() -> None:
    publisher = RecordingPublisher()
    with live_listener(publisher) as listener:
        half = MllpClient(listener.port)
        half.send_raw(b"\x0b" + mdm().encode()[:200])
        half.sock.shutdown(socket.SHUT_WR)
        assert half.closed_by_peer()
        half.close()
        good = MllpClient(listener.port)
        assert ack_of(good.send(mdm(control_id="G")))[:2] == ("AA", "G")
        good.close()
    assert len(publisher.published) == 1


def test_a_stalled_frame_times_out_and_closes() -> None:
    with live_listener(RecordingPublisher(), frame_timeout=0.5) as listener:
        slow = MllpClient(listener.port)
        slow.send_raw(b"\x0bMSH|^~\\&|A")
        started = time.monotonic()
        assert slow.closed_by_peer()
        assert time.monotonic() - started < 4
        slow.close()
        good = MllpClient(listener.port)
        assert ack_of(good.send(mdm()))[0] == "AA"
        good.close()


def test_oversized_message_is_ar_mirroring_its_msh() -> None:
    publisher = RecordingPublisher()
    big = base64.b64encode(PDF + b"0" * 200_000).decode()
    with live_listener(publisher, max_message_bytes=64 * 1024) as listener:
        client = MllpClient(listener.port)
        code, control_id, text, ack = ack_of(client.send(mdm(obx5=big, control_id="BIG")))
        after = ack_of(client.send(mdm(control_id="SMALL")))
        client.close()
    assert (code, control_id) == ("AR", "BIG")
    assert "larger than 65536 bytes" in text
    assert ack.msh.msh_5.to_er7() == "ARIA"
    assert after[:2] == ("AA", "SMALL")
    assert [d.unique_id for d, _ in publisher.published] == ["DOC-1"]


def test_unlinked_patient_is_ae_with_the_publishers_reason() -> None:
    publisher = RecordingPublisher(
        fail_with=UnlinkedPatient("MRN 12345 is not linked: ask the patient to sign a link")
    )
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        code, _, text, ack = ack_of(client.send(mdm()))
        client.close()
    assert code == "AE"
    assert "ask the patient to sign a link" in text
    assert ack.err.err_3.to_er7().split("^")[0] == "204"


def test_unavailable_bridge_is_ae_retry_later() -> None:
    publisher = RecordingPublisher(fail_with=BridgeUnavailable("the gateway does not answer"))
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        code, _, text, _ = ack_of(client.send(mdm()))
        client.close()
    assert code == "AE"
    assert text.startswith("retry later")
    assert "gateway" in text


def test_a_crashing_publisher_is_ae_not_a_dead_listener() -> None:
    class Broken(RecordingPublisher):
        async def publish(self, document: object, *, actor: str) -> object:  # type: ignore[override]
            raise RuntimeError("boom")

    with live_listener(Broken()) as listener:
        client = MllpClient(listener.port)
        code, _, text, _ = ack_of(client.send(mdm()))
        again = ack_of(client.send(mdm()))
        client.close()
    assert code == "AE"
    assert "internal error" in text
    assert again[0] == "AE"


def test_delimiters_in_the_reason_are_escaped() -> None:
    reason = "MRN a|b^c~d&e\\f is not linked"
    with live_listener(RecordingPublisher(fail_with=UnlinkedPatient(reason))) as listener:
        client = MllpClient(listener.port)
        code, _, text, ack = ack_of(client.send(mdm()))
        client.close()
    assert code == "AE"
    assert text == reason
    assert len(ack.msa.children) == 3
    assert unescape(ack.err.err_8.to_er7()) == reason


def test_binds_only_where_told() -> None:
    assert ListenerSettings().host == "127.0.0.1"
    with live_listener(RecordingPublisher()) as listener:
        assert listener.address == ("127.0.0.1", listener.port)
        for address in _other_addresses():
            with (
                pytest.raises(OSError),
                socket.create_connection((address, listener.port), timeout=2),
            ):
                pass


def _other_addresses() -> list[str]:
    """An address of this machine other than 127.0.0.1: a loopback alias, so that the check
    needs no route lookup and sends nothing."""
    return ["127.0.0.2"]


def test_pipelined_frames_and_an_end_block_split_across_packets() -> None:
    publisher = RecordingPublisher()
    with live_listener(publisher) as listener:
        client = MllpClient(listener.port)
        two = b"".join(
            b"\x0b" + mdm(control_id=c, unique_id=u).encode() + b"\x1c\x0d"
            for c, u in (("P1", "D1"), ("P2", "D2"))
        )
        client.send_raw(two)
        answers = [ack_of(client.receive())[:2] for _ in range(2)]
        third = b"\x0b" + mdm(control_id="P3", unique_id="D3").encode() + b"\x1c"
        client.send_raw(third)
        time.sleep(0.2)
        client.send_raw(b"\x0d")
        answers.append(ack_of(client.receive())[:2])
        client.close()
    assert answers == [("AA", "P1"), ("AA", "P2"), ("AA", "P3")]
    assert [d.unique_id for d, _ in publisher.published] == ["D1", "D2", "D3"]


def test_an_idle_connection_is_closed() -> None:
    with live_listener(RecordingPublisher(), idle_timeout=0.5) as listener:
        idle = MllpClient(listener.port)
        assert ack_of(idle.send(mdm()))[0] == "AA"
        started = time.monotonic()
        assert idle.closed_by_peer()
        assert time.monotonic() - started < 4
        idle.close()


def test_connections_over_the_limit_are_closed() -> None:
    with live_listener(RecordingPublisher(), max_connections=1) as listener:
        first = MllpClient(listener.port)
        assert ack_of(first.send(mdm(control_id="F")))[0] == "AA"
        second = MllpClient(listener.port)
        assert second.closed_by_peer()
        second.close()
        first.close()
        time.sleep(0.2)
        third = MllpClient(listener.port)
        assert ack_of(third.send(mdm(control_id="T")))[:2] == ("AA", "T")
        third.close()


def test_acks_to_older_versions_use_their_layout() -> None:
    with live_listener(RecordingPublisher()) as listener:
        client = MllpClient(listener.port)
        v24 = client.send(mdm(version="2.4", obx=False))
        v23 = client.send(mdm(version="2.3", obx=False, control_id="OLD"))
        client.close()
    code, _, text, ack = ack_of(v24)
    assert (code, ack.msh.msh_12.to_er7(), ack.msh.msh_9.to_er7()) == ("AE", "2.4", "ACK^T02^ACK")
    # Before v2.5 the condition is in ERR-1 (segment^sequence^field^code&text&table).
    assert ack.err.err_1.to_er7().split("^")[3].split("&")[0] == "100"
    assert "no OBX" in text
    # v2.3's MSH-9 has two components (hl7apy cannot pick an ACK structure from them, so
    # this one is read without structure validation).
    old = second_parse(v23, validate=False)
    assert (old.msh.msh_9.to_er7(), old.msa.msa_1.to_er7(), old.msa.msa_2.to_er7()) == (
        "ACK^T02",
        "AE",
        "OLD",
    )
