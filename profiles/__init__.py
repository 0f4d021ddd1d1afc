"""Behavioral profiles, RFM, identity stitching, rule and cluster segments."""
