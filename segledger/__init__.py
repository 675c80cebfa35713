"""segledger's interfaces: the command line (and later the HTTP API), thin over ledger/."""

__version__ = "0.1.0"
