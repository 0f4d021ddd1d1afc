"""Behavioral profiles, RFM and segments (built in a later issue)."""
