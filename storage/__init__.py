"""Blob stores for sealed bodies: local directory, S3, IPFS, and replication across them."""
