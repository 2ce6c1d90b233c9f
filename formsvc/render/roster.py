"""Rosters moved to formsvc/roster.py (read by the print pack and by the service's known values alike)."""

from formsvc.roster import Person, Roster, RowError, read_roster

__all__ = ["Person", "Roster", "RowError", "read_roster"]
