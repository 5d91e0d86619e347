"""Voices for speakers: the ElevenLabs catalog, the voice map, and deterministic casting."""
