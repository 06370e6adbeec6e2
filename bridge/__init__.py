"""The hospital bridge: IHE MHD (FHIR R4) and HL7 v2 in, the ehrgate SDK out (DESIGN §10).

A hospital runs it inside its network, next to its EHR and interface engine. It holds the
hospital system's and its clinicians' identities, seals and signs every upload and opens and
verifies every read itself, so that plaintext never leaves the hospital.
"""
