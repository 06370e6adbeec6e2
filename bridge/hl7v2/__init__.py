"""HL7 v2 front door: an MLLP listener for MDM^T02/T10 with the PDF in OBX-5 (DESIGN §10).

Wiring: `MllpListener(MdmReceiver(publisher, MdmRules(category_for_type=...), actor=...),
ListenerSettings(host=..., port=...))`, then `await listener.serve_forever()`.
"""

from bridge.hl7v2.listener import ListenerSettings, MllpListener
from bridge.hl7v2.mdm import SUPPORTED_VERSIONS, MdmRules
from bridge.hl7v2.receiver import MdmReceiver

__all__ = ["SUPPORTED_VERSIONS", "ListenerSettings", "MdmReceiver", "MdmRules", "MllpListener"]
