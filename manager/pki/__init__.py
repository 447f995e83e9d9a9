"""The manager's PKI folder: its files, its live reload, server renewal and CA rotation."""
