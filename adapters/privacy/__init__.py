"""Citizens' personal data (DESIGN §7): sealed per citizen, erasable, kept no longer than needed.

- :mod:`adapters.privacy.vault`: AES-256-GCM sealing with a random data key per citizen
  reference (the implementation of :class:`domain.personal.PersonalData`)
- :mod:`adapters.privacy.keystore`: the key table beside the events (SQLite, PostgreSQL)
- :mod:`adapters.privacy.master`: the master keys that wrap the data keys (variable or key file)
- :mod:`adapters.privacy.erase`: erasing a case's or a citizen's contact (key, then record)
- :mod:`adapters.privacy.retention`: erasing contacts N days after their case closed
- :mod:`adapters.privacy.rotation`: re-wrapping every data key under a new master key
"""
