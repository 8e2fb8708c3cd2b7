"""slmbench: which model gives the most correct answers per dollar on your task."""

__version__ = "0.1.0"
