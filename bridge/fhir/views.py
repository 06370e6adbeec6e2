"""Read views of the ledger as FHIR: AuditEvent (IHE BALP shapes), Consent, List
(MHD SubmissionSet), and the CapabilityStatement."""

from __future__ import annotations

from typing import Any

from bridge.categories import LOINC, CategoryTable
from bridge.fhir.documents import fhir_instant
from bridge.store import SubmissionSet
from ehrgate.models import Permission

MHD_LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_AUTHZ = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
_IDENTITY = "urn:ehrgate:identity"
_RECORD_READS = {"record", "capsule", "body"}
_RIGHT_ACTIONS = {"read": "access", "write": "collect", "share": "disclose"}


def submission_set_code() -> dict[str, Any]:
    """The `List.code` that marks an MHD SubmissionSet."""
    return {"coding": [{"system": MHD_LIST_TYPES, "code": "submissionset"}]}


def _identifier(system: str, value: str) -> dict[str, Any]:
    return {"identifier": {"system": system, "value": value}}


def audit_event(entry: dict[str, Any], mrn: str, mrn_system: str) -> dict[str, Any]:
    """One ledger `access` entry as an AuditEvent: a read as the BALP RESTful read or
    search pattern, a denial as the authorization-decision pattern (outcome 8)."""
    body = entry["tx"]["body"]
    allowed = body.get("decision") == "allowed"
    action = str(body.get("action"))
    if allowed:
        kind = {"system": _EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
        interaction = "read" if action in _RECORD_READS else "search-type"
        subtype = {"system": _INTERACTION, "code": interaction}
        verb = "R" if interaction == "read" else "E"
    else:
        kind = {"system": _DCM, "code": "110113", "display": "Security Alert"}
        subtype = {
            "system": _AUTHZ,
            "code": "AuthZ-Consent",
            "display": "Authorization Decision using Roles and Consent",
        }
        verb = "E"
    entities: list[dict[str, Any]] = [
        {
            "what": _identifier(mrn_system, mrn),
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "1",
                "display": "Person",
            },
        }
    ]
    if body.get("record_id"):
        entities.append(
            {
                "what": {"reference": f"DocumentReference/{body['record_id']}"},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                    "display": "System Object",
                },
            }
        )
    return {
        "resourceType": "AuditEvent",
        "id": f"ledger-{entry['index']}",
        "type": kind,
        "subtype": [subtype],
        "action": verb,
        "recorded": fhir_instant(str(body.get("at"))),
        "outcome": "0" if allowed else "8",
        "outcomeDesc": f"{action}: {body.get('reason', '')}"[:1000],
        "agent": [{"who": _identifier(_IDENTITY, str(body.get("actor"))), "requestor": True}],
        "source": {"observer": {"display": "ehrgate ledger"}, "site": "ehrgate"},
        "entity": entities,
    }


def consent(
    permission: Permission, mrn: str, mrn_system: str, table: CategoryTable
) -> dict[str, Any]:
    """A grant as a Consent: provision permit, period, actor, actions, LOINC type codes."""
    names = table.names() if permission.categories == "all" else list(permission.categories)
    codes = [table.codes_for(name) for name in names if name in table.names()]
    provision: dict[str, Any] = {
        "type": "permit",
        "period": {
            "start": fhir_instant(permission.not_before),
            "end": fhir_instant(permission.not_after),
        },
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                            "display": "information recipient",
                        }
                    ]
                },
                "reference": _identifier(_IDENTITY, permission.grantee),
            }
        ],
        "action": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                        "code": _RIGHT_ACTIONS.get(right, "access"),
                    }
                ],
                "text": right,
            }
            for right in permission.rights
        ],
    }
    if codes:
        provision["code"] = [
            {"coding": [{"system": LOINC, "code": c.loinc, "display": c.display}]} for c in codes
        ]
    return {
        "resourceType": "Consent",
        "id": permission.permission_id,
        "status": "inactive" if permission.revoked else "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}
        ],
        "patient": _identifier(mrn_system, mrn),
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
            ]
        },
        "provision": provision,
    }


def submission_set(found: SubmissionSet, mrn_system: str, visible: set[str]) -> dict[str, Any]:
    """An ITI-65 SubmissionSet as an MHD List (with the documents the caller may see)."""
    return {
        "resourceType": "List",
        "id": found.id,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": found.unique_id}]
        if found.unique_id.startswith("urn:")
        else [{"value": found.unique_id}],
        "status": "current",
        "mode": "working",
        "code": submission_set_code(),
        "subject": _identifier(mrn_system, found.mrn),
        "date": fhir_instant(found.submitted_at),
        "entry": [
            {"item": {"reference": f"DocumentReference/{record_id}"}}
            for record_id in found.record_ids
            if record_id in visible
        ],
    }


def capability_statement(base: str, now: str) -> dict[str, Any]:
    def search(*names: str) -> list[dict[str, str]]:
        kinds = {"patient": "reference", "date": "date", "creation": "date"}
        return [{"name": n, "type": kinds.get(n, "token")} for n in names]

    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now,
        "kind": "instance",
        "software": {"name": "ehrgate bridge"},
        "implementation": {"description": "ehrgate hospital bridge (IHE MHD)", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                },
                "resource": [
                    {
                        "type": "DocumentReference",
                        "interaction": [
                            {"code": "create"},
                            {"code": "read"},
                            {"code": "search-type"},
                        ],
                        "searchParam": search(
                            "patient",
                            "patient.identifier",
                            "status",
                            "category",
                            "type",
                            "date",
                            "creation",
                        ),
                    },
                    {
                        "type": "List",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": search("patient", "patient.identifier", "code"),
                    },
                    {"type": "Binary", "interaction": [{"code": "read"}]},
                    {
                        "type": "AuditEvent",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": search("patient"),
                    },
                    {
                        "type": "Consent",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": search("patient"),
                    },
                ],
                "interaction": [{"code": "transaction"}],
            }
        ],
    }
