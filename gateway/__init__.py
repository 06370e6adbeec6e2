"""The HTTP gateway: authentication, permission enforcement, audit and proofs."""
