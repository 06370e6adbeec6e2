"""IHE MHD on FHIR R4 under `/fhir`: Document Recipient, Document Responder, audit and
consent as read views of the ledger, errors as OperationOutcome."""
