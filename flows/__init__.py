"""Lontar's pure conversation core: no I/O, no clock, no framework imports."""
