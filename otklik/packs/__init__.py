"""Packs: flows, intents, knowledge articles and texts for one business type, shipped as data."""
