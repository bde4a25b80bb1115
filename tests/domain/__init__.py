"""Tests for the pure domain code."""
