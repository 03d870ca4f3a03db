"""plotboard: render matplotlib charts from data files into a static status board."""

__version__ = "0.2.0"
