"""Simulator-only data: stations, zones, schools, school holidays."""
