"""Lesson tests. Shared helpers live in ``lesson_helpers`` (imported by name, so they never
clash with another folder's conftest)."""
