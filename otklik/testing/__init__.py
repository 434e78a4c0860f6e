"""Test helpers shipped with the package: fake provider servers for tests and offline demos."""
