"""Wire facts of break-glass access shared by the rules, the gateway and the clients.

- `REASONS`: the fixed list a `break_glass` act names its reason from (free text goes in
  `details`).
- Which hospital an identity belongs to. Identities carry an id and a role, nothing more; a
  hospital is written into its identities' ids: an id of the form ``name@hospital`` belongs
  to ``hospital`` (the text after the last ``@``, e.g. ``dr-grey@st-mary`` and
  ``emergency@st-mary``). The administrator who enrols identities chooses their ids, so this
  is as trustworthy as enrolment itself. An id without ``@`` belongs to no hospital and can
  be neither an emergency identity nor a clinician invoking break-glass.
"""

from __future__ import annotations

REASONS: tuple[str, ...] = (
    "unconscious-patient",
    "life-threatening-emergency",
    "patient-unable-to-consent",
    "urgent-medication-check",
    "other-emergency",
)
"""Reasons a break-glass act may give."""

INVOKING_ROLES: tuple[str, ...] = ("clinician", "system")
"""Roles a patient's policy may allow to invoke break-glass."""

MAX_POLICY_MINUTES = 24 * 60
"""The longest single break-glass act any policy may allow."""


def hospital_of(identity_id: str) -> str | None:
    """The hospital of *identity_id* (after its last '@'), or None."""
    name, at, hospital = identity_id.rpartition("@")
    if not at or not name or not hospital:
        return None
    return hospital
