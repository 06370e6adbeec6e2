"""The signed, tamper-evident metadata ledger: transactions, rules, Merkle log, state."""
