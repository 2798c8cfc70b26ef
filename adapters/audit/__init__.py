"""The tamper-evident log: verifying the chain, sealing it, backing the store up and restoring it.

The chain itself is written by :mod:`adapters.persistence`; this package reads it back.
"""
