"""Numbered SQL files for the ledger schema; applied in order by `ledger.py`."""
