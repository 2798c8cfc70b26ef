"""Everything outside the domain: persistence settings, CLI, logging, import, demo data."""
